import Foundation
import Raft
import RaftStorage

/// Where a replica's messages go: the node's per-peer channels, or the simulation's network.
public protocol ReplicaNetwork: AnyObject {
    /// Sends one round's messages, grouped by peer (peers in the order of their first
    /// message, each peer's messages in the order the core produced them: deterministic, for
    /// the simulation). Must not block.
    func send(_ messages: [(peer: UInt64, envelopes: [Envelope])])
}

/// The replica layer: the Raft core and its durable storage, carrying out the core's outputs
/// in the order Raft requires. The node's driver and the simulation both run rounds through
/// this type, so the order they are checked in is the order the node runs.
///
/// A round has two halves with the fsync between them:
/// 1. `begin`: every input stepped (under `lock`), the round's entries, hard state and
///    snapshot written to the write-ahead log as one batch, not yet synced;
/// 2. `finish`: one fdatasync when any output requires it (group commit), segments a stored
///    snapshot covers removed, and only then the messages sent. Its outputs then go to the
///    cluster-service layer to apply (`ClusterState.apply(_:decode:each:)`).
///
/// The node runs both halves back to back; the simulation lets virtual time pass between
/// them, so that a crash can land while the fsync is in flight.
///
/// Ownership: `lock` guards `core` (rounds step it, views read it); the write-ahead log is
/// used only by whoever runs rounds, one at a time (the node's round thread, the
/// simulation's single thread).
public final class Replica: @unchecked Sendable {
    /// A round between its two halves.
    public struct Round {
        /// Every step's output, in order.
        public let outputs: [Output]
        /// Whether the round's writes must be fsync'd before its messages go out.
        public let mustSync: Bool
        /// The proposals the round took into the log or refused (no longer queued).
        public let takenProposals: [ProposalID]
        /// Log segments wholly covered by the stored snapshot, once the round is durable.
        let compactedThrough: LogIndex?
    }

    private let lock = NSLock()
    private var core: RaftNode
    /// The node's write-ahead log and snapshot store; used by the round's runner only.
    public let wal: WriteAheadLog
    /// False only for benchmarks of the page cache (`--no-fsync`): writes are not synced.
    private let isFsyncEnabled: Bool

    public init(core: RaftNode, wal: WriteAheadLog, isFsyncEnabled: Bool = true) {
        self.core = core
        self.wal = wal
        self.isFsyncEnabled = isFsyncEnabled
    }

    /// Reads the core under the lock (views, leader checks).
    public func withCore<T>(_ body: (borrowing RaftNode) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        // Through an exclusive access: a plain read of the stored property made the compiler
        // copy the whole core (a retain per field) for every call.
        return try Self.borrow(&core, body)
    }

    private static func borrow<T>(_ core: inout RaftNode, _ body: (borrowing RaftNode) throws -> T) rethrows -> T {
        try body(core)
    }

    /// The round's first half: steps every input (adjacent proposals merged into one batch)
    /// and writes what they made durable-to-be, unsynced. Nothing is sent yet.
    public func begin(_ inputs: [RaftNode.Input]) throws(StorageError) -> Round {
        let batch = Self.coalesced(inputs)
        var outputs: [Output] = []
        var taken: [ProposalID] = []
        outputs.reserveCapacity(batch.count)
        lock.lock()
        for input in batch {
            outputs.append(core.step(input))
            if case .propose(let proposals) = input { taken += proposals.map(\.id) }
        }
        lock.unlock()
        let recorded = try wal.record(outputs)
        // Only a round that syncs writes: what needs no sync (a commit index that moved)
        // waits in memory for the next one. So at most one unsynced batch is ever on disk,
        // and a crash can tear only the last: were several written, one torn ahead of a
        // whole one would read as corruption and the node could not restart (the
        // simulation found this once it ran this code).
        if recorded.mustSync { try wal.flush(sync: false) }
        return Round(outputs: outputs, mustSync: recorded.mustSync,
                     takenProposals: taken, compactedThrough: recorded.compactedThrough)
    }

    /// The round's second half: makes it durable, then sends its messages through `network`.
    /// Returns its outputs for the state machine to apply (after the messages: a leader's
    /// followers start their own fsync while the leader applies).
    public func finish(_ round: Round, sendingThrough network: some ReplicaNetwork) throws(StorageError) -> [Output] {
        if round.mustSync { try wal.flush(sync: isFsyncEnabled) }
        // Segments wholly covered by the stored snapshot may go.
        if let through = round.compactedThrough { try wal.compact(through: through) }
        var messages: [(peer: UInt64, envelopes: [Envelope])] = []
        for output in round.outputs {
            for envelope in output.messages {
                let peer = envelope.to.rawValue
                // A linear search: a cluster has at most a few peers.
                if let at = messages.firstIndex(where: { $0.peer == peer }) {
                    messages[at].envelopes.append(envelope)
                } else {
                    messages.append((peer, [envelope]))
                }
            }
        }
        if !messages.isEmpty { network.send(messages) }
        return round.outputs
    }

    /// Where a snapshot of a state machine that applied through `appliedIndex` would go, when
    /// enough entries were applied since the last one (nil: not due): the threshold
    /// (`snapshotEveryEntries`), or as many entries as it takes for the log to grow about as
    /// large as the last snapshot (`snapshotBytesPerEntry` bytes an entry), whichever is more.
    /// A large state is then not copied, encoded and written again every few thousand small
    /// entries: the work of snapshotting stays proportional to the log's growth, and the log
    /// on disk stays within about the snapshot's size (thesis §5.1).
    /// `stored`: a snapshot already stored whose `.snapshotTaken` the core may not have
    /// stepped yet (counted from, so that it is not taken twice).
    public func snapshotDue(appliedIndex: UInt64, stored: (index: UInt64, bytes: Int)? = nil) -> SnapshotMetadata? {
        withCore { core in
            var last = core.snapshot?.metadata.index.rawValue ?? 0
            var lastBytes = core.snapshot?.data.count ?? 0
            if let stored, stored.index > last { (last, lastBytes) = stored }
            let interval = Self.snapshotInterval(threshold: core.settings.snapshotThresholdEntries, lastSnapshotBytes: lastBytes)
            guard appliedIndex >= last + UInt64(interval) else { return nil }
            return core.snapshotMetadata(at: LogIndex(appliedIndex))
        }
    }

    /// What a log entry is taken to weigh when the last snapshot's size sets the interval
    /// (a service command encodes to 100 to 200 bytes).
    static let snapshotBytesPerEntry = 128

    /// Entries between snapshots (see `snapshotDue`).
    public static func snapshotInterval(threshold: Int, lastSnapshotBytes: Int) -> Int {
        max(threshold, lastSnapshotBytes / snapshotBytesPerEntry)
    }

    /// Stores a snapshot of the state machine (temporary file, fsync, rename) before the
    /// core may hear of it: the caller then submits `.snapshotTaken`, and the core compacts.
    public func store(_ snapshot: Snapshot) throws(StorageError) {
        try wal.snapshots.save(snapshot)
    }

    /// Merges adjacent proposals into one input, so a round's proposals become one batch of
    /// entries and one AppendEntries per follower, not one each.
    static func coalesced(_ batch: [RaftNode.Input]) -> [RaftNode.Input] {
        var result: [RaftNode.Input] = []
        result.reserveCapacity(batch.count)
        for input in batch {
            if case .propose(let more) = input, case .propose(let earlier)? = result.last {
                result[result.count - 1] = .propose(earlier + more)
            } else {
                result.append(input)
            }
        }
        return result
    }
}
