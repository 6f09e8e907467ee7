import ClusterNode
import Raft
import RaftStorage

/// One simulated server: the node's own replica layer (`Replica`: core, write-ahead log and
/// snapshot store, round order) and state machine (`ClusterState`) while running, its disk,
/// a model of what is durable (what has been fsync'd: the checker's view, reset from what
/// recovery finds after each crash), and the inputs waiting for the round in flight.
struct SimulatedServer {
    let id: NodeID
    /// Its disk: survives crashes as a real one does (unsynced writes lost or torn).
    let disk = SimulatedDisk()
    /// The write-ahead log on `disk`, open while running (and kept from a crash's recovery
    /// check to the restart).
    var wal: WriteAheadLog?
    /// Where the node's data lives on its disk.
    static let directory = "/data/raft"
    /// The initial membership it starts with (the log's membership entries override it).
    let membership: Membership
    var replica: Replica?
    /// The replicated state machine, as the node's cluster-service layer holds it.
    var state: ClusterState
    var durableHardState = HardState()
    /// The durable snapshot, and the durable log entries after `durableBase`.
    var durableSnapshot: Snapshot?
    var durableBase: LogIndex = 0
    var durableEntries: [Entry] = []
    /// The round whose fsync is in flight (its first half done, its messages not yet sent).
    var round: Replica.Round?
    /// Inputs that arrived meanwhile: the next round (group commit), as the node's inbox.
    var inbox: [RaftNode.Input] = []
    /// Bumped at every crash so that events of the old incarnation are ignored.
    var generation = 0
    var restarts = 0
    var pausedUntil: UInt64?
    var isSnapshotDue = false
    /// Removed from the cluster and taken out of service for good. Its ID is never used
    /// again: servers still holding an old membership would count a fresh server's vote
    /// under that ID as the old one's.
    var isRetired = false

    init(id: NodeID, membership: Membership) {
        self.id = id
        self.membership = membership
        self.state = Self.emptyState(membership)
    }

    /// The state machine before any entry: every initial member offering one node's resources.
    static func emptyState(_ membership: Membership) -> ClusterState {
        ClusterState(members: membership.members.map(\.rawValue).sorted(), nodeResources: .standard(slots: 4))
    }

    var isRunning: Bool { replica != nil }

    /// Reads the core in place (nil while crashed); rounds go through the replica.
    func withCore<T>(_ body: (borrowing RaftNode) -> T) -> T? { replica?.withCore(body) }

    var isLeader: Bool { withCore { $0.isLeader } ?? false }

    /// The last index applied to the state machine.
    var appliedIndex: LogIndex { LogIndex(state.appliedIndex) }

    /// The last durable index (of an entry, or of the snapshot when no entry follows).
    var durableLastIndex: LogIndex { durableBase + durableEntries.count }

    /// Applies an output's writes to the durable store, as the node's write-ahead log and
    /// snapshot file would: the snapshot replaces the log up to its index (all of it when
    /// the entry there has another term), then entries replace from their first index on.
    mutating func persist(_ output: Output) {
        if let hardState = output.hardState { durableHardState = hardState }
        if let snapshot = output.snapshot {
            let metadata = snapshot.metadata
            if durableTerm(at: metadata.index) == metadata.term {
                compactDurable(through: metadata.index)
            } else {
                durableEntries = []
                durableBase = metadata.index
            }
            durableSnapshot = snapshot
        }
        if let first = output.entries.first {
            precondition(first.index > durableBase, "\(id): entries from \(first.index) at or before durable base \(durableBase)")
            let keep = Int(first.index.rawValue - durableBase.rawValue) - 1
            precondition(keep <= durableEntries.count, "\(id): entries from \(first.index) after durable end \(durableLastIndex)")
            durableEntries.removeSubrange(keep...)
            durableEntries.append(contentsOf: output.entries)
        }
    }

    /// Makes the durable model what recovery found on the disk.
    mutating func resetDurable(to recovered: WriteAheadLog.Recovered) {
        durableHardState = recovered.hardState
        durableSnapshot = recovered.snapshot
        durableBase = recovered.log.snapshotIndex
        durableEntries = recovered.log.entries
    }

    /// Drops stored entries a durable snapshot covers.
    mutating func compactDurable(through index: LogIndex) {
        guard index > durableBase else { return }
        let drop = min(durableEntries.count, Int(index.rawValue - durableBase.rawValue))
        durableEntries.removeFirst(drop)
        durableBase = index
    }

    /// The term of the durable entry at `index`, if stored.
    func durableTerm(at index: LogIndex) -> Term? {
        if index == durableBase { return durableBase == durableSnapshot?.metadata.index ? durableSnapshot?.metadata.term : (index == 0 ? 0 : nil) }
        guard index > durableBase, index <= durableLastIndex else { return nil }
        return durableEntries[Int(index.rawValue - durableBase.rawValue) - 1].term
    }

    /// The latest membership on disk: of the last membership entry stored, else the
    /// snapshot's, else the initial one.
    var durableMembership: Membership {
        if let entry = durableEntries.last(where: { $0.kind == .membership }), let decoded = Membership(encoded: entry.data) {
            return decoded
        }
        return durableSnapshot?.metadata.membership ?? membership
    }

    /// True when the durable store holds `entry` (a snapshot holds only committed entries,
    /// which the simulation checks when it is installed).
    func durablyHolds(_ entry: Entry) -> Bool {
        if let snapshot = durableSnapshot, entry.index <= snapshot.metadata.index { return true }
        return durableTerm(at: entry.index) == entry.term && entry.index > durableBase
    }
}
