import Raft

/// One simulated server: its core while running, its durable store (what has been
/// fsync'd), and the outputs waiting on the fsync in flight.
struct SimulatedServer {
    let id: NodeID
    let membership: Membership
    var core: RaftNode?
    var durableHardState = HardState()
    var durableEntries: [Entry] = []
    /// Outputs in the batch being fsync'd now.
    var syncing: [Output] = []
    /// Outputs that arrived during that fsync: the next batch (group commit).
    var waiting: [Output] = []
    /// Bumped at every crash so that events of the old incarnation are ignored.
    var generation = 0
    var restarts = 0
    var appliedIndex: LogIndex = 0
    var pausedUntil: UInt64?

    init(id: NodeID, membership: Membership) {
        self.id = id
        self.membership = membership
    }

    var isRunning: Bool { core != nil }

    /// Applies an output's writes to the durable store, as the write-ahead log would.
    mutating func persist(_ output: Output) {
        if let hardState = output.hardState { durableHardState = hardState }
        if let first = output.entries.first {
            let keep = Int(first.index.rawValue) - 1
            precondition(keep <= durableEntries.count, "\(id): entries from \(first.index) after durable end \(durableEntries.count)")
            durableEntries.removeSubrange(keep...)
            durableEntries.append(contentsOf: output.entries)
        }
    }

    /// True when the durable log holds `entry`.
    func durablyHolds(_ entry: Entry) -> Bool {
        let position = Int(entry.index.rawValue) - 1
        return position < durableEntries.count && durableEntries[position].term == entry.term
    }
}
