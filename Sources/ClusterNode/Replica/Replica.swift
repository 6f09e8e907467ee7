import Foundation
import Transport
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
///    snapshot written to the write-ahead log as one batch, not yet synced; a leader's
///    AppendEntries and heartbeats sent at once (below);
/// 2. `finish`: one fdatasync when any output requires it (group commit), segments a stored
///    snapshot covers removed, and only then the other messages sent (votes, answers). Its
///    outputs then go to the cluster-service layer to apply
///    (`ClusterState.apply(_:decode:each:)`), and after that the leader's replication that
///    did not go ahead is sent (`sendReplication`): in a round with nothing to sync the
///    clients are answered before the followers hear of the new commit index.
///
/// Sending ahead (thesis §10.2.1): the leader replicates its new entries while its own
/// fdatasync runs, so a commit waits for one disk, not the leader's and then a follower's.
/// It is safe because the leader counts itself towards a quorum only for what is durable:
/// a follower's acknowledgement is stepped in a later round, and a later round begins only
/// after this one's fdatasync. The one way a round can commit its own unsynced entries is a
/// configuration whose only voter is the leader; a round that commits past what was durable
/// when it began therefore sends nothing ahead (its commit index would travel in the
/// messages). Everything else waits for the sync: votes, answers to AppendEntries (a follower
/// acknowledges only what is on its disk), TimeoutNow, snapshots.
///
/// Applying before the sync: a leader's round that commits only entries durable before it
/// began (followers' answers to earlier rounds) while it also appends new ones may apply
/// the commits and answer their clients before its fdatasync (`mayApplyBeforeSync`): what
/// it answers is on a majority of disks already, and the fdatasync makes durable only the
/// new entries and hard state, which no answer depends on. Under load most of a leader's
/// rounds are of this kind, and their answers no longer wait for a disk they do not need.
/// Followers (whose committed entries may have been rewritten in the same round) and rounds
/// that commit anything newer apply after the sync, as before.
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
        /// A leader's round whose commits were all durable before it began: its outputs may
        /// be applied (and their clients answered) before its fdatasync (see the type's notes).
        public let mayApplyBeforeSync: Bool
        /// The proposals the round took into the log or refused (no longer queued).
        public let takenProposals: [ProposalID]
        /// Log segments wholly covered by the stored snapshot, once the round is durable.
        let compactedThrough: LogIndex?
        /// The messages that wait for the round's sync, grouped by peer (see `finish`).
        let messagesAfterSync: [(peer: UInt64, envelopes: [Envelope])]
        /// The leader's replication that did not go ahead (see `sendReplication`).
        let replicationAfterApply: [(peer: UInt64, envelopes: [Envelope])]
        /// How many messages went before the sync (`begin`).
        public let sentAhead: Int
        /// The node was the leader when the round began.
        public let beganAsLeader: Bool
    }

    private let lock = AdaptiveLock()
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

    /// The round's first half: steps every input (adjacent proposals merged into one batch),
    /// writes what they made durable-to-be, unsynced, and sends through `network` what may
    /// go before the sync (a leader's replication, see the type's notes).
    public func begin(_ inputs: [RaftNode.Input], sendingAheadThrough network: some ReplicaNetwork) throws(StorageError) -> Round {
        let batch = Self.coalesced(inputs)
        var outputs: [Output] = []
        var taken: [ProposalID] = []
        outputs.reserveCapacity(batch.count)
        lock.lock()
        // Every earlier round that wrote was synced before the next began.
        let durableLastIndex = core.log.lastIndex
        let beganAsLeader = core.isLeader
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
        // Each peer's messages keep the core's order: a prefix of replication may go ahead,
        // and what remains waits for the apply only when it is all replication.
        let commitsOnlyDurable = outputs.allSatisfy { ($0.committed.last?.index ?? 0) <= durableLastIndex }
        let mayGoAhead = recorded.mustSync && commitsOnlyDurable
        var ahead: [(peer: UInt64, envelopes: [Envelope])] = []
        var afterSync: [(peer: UInt64, envelopes: [Envelope])] = []
        var afterApply: [(peer: UInt64, envelopes: [Envelope])] = []
        for (peer, envelopes) in Self.groupedByPeer(outputs) {
            let aheadCount = mayGoAhead ? envelopes.prefix { Self.isReplication($0.message) }.count : 0
            if aheadCount > 0 { ahead.append((peer, Array(envelopes.prefix(aheadCount)))) }
            let rest = envelopes.dropFirst(aheadCount)
            if rest.isEmpty { continue }
            if rest.allSatisfy({ Self.isReplication($0.message) }) {
                afterApply.append((peer, Array(rest)))
            } else {
                afterSync.append((peer, Array(rest)))
            }
        }
        if !ahead.isEmpty { network.send(ahead) }
        let mayApplyBeforeSync = mayGoAhead && beganAsLeader && outputs.allSatisfy { $0.snapshot == nil }
        return Round(outputs: outputs, mustSync: recorded.mustSync, mayApplyBeforeSync: mayApplyBeforeSync,
                     takenProposals: taken, compactedThrough: recorded.compactedThrough,
                     messagesAfterSync: afterSync, replicationAfterApply: afterApply,
                     sentAhead: ahead.reduce(0) { $0 + $1.envelopes.count }, beganAsLeader: beganAsLeader)
    }

    /// A leader's replication (AppendEntries and heartbeats): it asks nothing of the leader's
    /// own disk, and a few microseconds' wait costs no one an answer.
    static func isReplication(_ message: Message) -> Bool {
        switch message {
        case .appendEntries, .heartbeat: true
        default: false
        }
    }

    /// The outputs' messages grouped by peer: peers in the order of their first message,
    /// each peer's in the order the core made them.
    static func groupedByPeer(_ outputs: [Output]) -> [(peer: UInt64, envelopes: [Envelope])] {
        var messages: [(peer: UInt64, envelopes: [Envelope])] = []
        messages.reserveCapacity(4)  // a few peers: one allocation
        for output in outputs {
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
        return messages
    }

    /// The round's second half: makes it durable, then sends through `network` the messages
    /// that waited for the sync (a follower's answers leave before it applies). Returns the
    /// outputs for the state machine to apply.
    public func finish(_ round: Round, sendingThrough network: some ReplicaNetwork) throws(StorageError) -> [Output] {
        if round.mustSync { try wal.flush(sync: isFsyncEnabled) }
        // Segments wholly covered by the stored snapshot may go.
        if let through = round.compactedThrough { try wal.compact(through: through) }
        if !round.messagesAfterSync.isEmpty { network.send(round.messagesAfterSync) }
        return round.outputs
    }

    /// After the round's outputs were applied: the leader's replication that did not go
    /// ahead (a round with nothing to sync, typically one that only moved the commit index).
    /// The clients whose entries that round committed were answered first; the followers
    /// learn the new commit index a moment later, which delays only their own apply.
    public func sendReplication(of round: Round, through network: some ReplicaNetwork) {
        if !round.replicationAfterApply.isEmpty { network.send(round.replicationAfterApply) }
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
        // The run of adjacent proposals being gathered: built in one array, not copied into a
        // new one per proposal (which made a round of n proposals copy n * n / 2 of them).
        var proposals: [RaftNode.Proposal] = []
        for input in batch {
            if case .propose(let more) = input {
                proposals.append(contentsOf: more)
                continue
            }
            if !proposals.isEmpty {
                result.append(.propose(proposals))
                proposals = []
            }
            result.append(input)
        }
        if !proposals.isEmpty { result.append(.propose(proposals)) }
        return result
    }
}
