import Foundation
import Synchronization
import Raft
import RaftStorage
import Transport

/// The cluster-service layer: the replicated state machine and everything the node keeps
/// about it. It applies what the replica layer's rounds commit, holds the leader's view of
/// what its unapplied entries will place (the resource ledger placement reads), turns client
/// requests into proposals and waits for their outcomes, runs the leader's reconcile loop,
/// snapshots the state, and renders the node's views. It speaks in domain values and
/// `NodeError`; the HTTP API (`NodeAPI`) is a thin adapter over it.
///
/// Ownership: `lock` guards every stored `var` below. The replica's core is read through
/// `driver.replica.withCore` (its own lock), possibly while `lock` is held: the order is
/// always this layer's lock first, never the other way (the replica layer never calls up
/// while holding the core).
public final class ClusterService: RoundConsumer, @unchecked Sendable {
    /// How a proposal ended, for the client waiting on it.
    enum ProposalResult: Sendable {
        /// `applied`: for a client request, what it did, read as it applied.
        case committed(index: UInt64, term: UInt64, applied: AppliedRequest?)
        case notLeader(leader: UInt64?)
        case failed(String)
        /// The request cannot succeed as asked (an invalid membership change).
        case rejected(String)
    }

    /// What a committed client request did, read under the lock the apply holds as the
    /// request's entry applied: the request's record (nil only if a snapshot from the leader
    /// replaced the state meanwhile), and the services it names as they were then (none for
    /// a container request, whose record names containers). The task waiting for the commit
    /// answers from it without taking the lock again.
    struct AppliedRequest: Sendable {
        var record: ClusterState.RequestRecord?
        var services: [ServiceRecord]

        /// Read from `state` (under the lock).
        init(_ requestID: String, in state: borrowing ClusterState, namesServices: Bool = true) {
            record = state.record(ofRequest: requestID)
            services = namesServices ? (record?.services ?? []).compactMap { state.services[$0] } : []
        }
    }

    /// A proposal waiting for its outcome, and the client request it carries (nil for the
    /// node's own proposals: reconciling, autoscaling, membership changes).
    struct PendingProposal {
        let waiter: Waiter<ProposalResult>
        let requestID: String?
        /// The request's record names services (not containers).
        var namesServices = true
    }

    enum ReadResult: Sendable {
        case ready
        case notLeader(leader: UInt64?)
        case failed(String)
    }

    let configuration: NodeConfiguration
    let log: EventLog
    let metrics: NodeMetrics
    let containers: ContainerRuntime
    /// The replica layer: rounds, and the core to read.
    let driver: ReplicaDriver

    let lock = AdaptiveLock()
    /// Requests suspend rather than block while a round holds `lock`.
    let roundGate = RoundLockGate()
    var state: ClusterState
    /// What request handling needs of the core, as of the last round (each round's
    /// `logWritten` refreshes it): read under this lock, so a request holding it never waits
    /// for the core's lock, which the round thread holds while it steps a round's inputs.
    var coreView: CoreView
    /// Decoded commands of log entries not yet applied, by index (each entry is decoded once).
    var decodedCommands: [UInt64: ClusterCommand] = [:]
    /// Resources that unapplied log entries will place, by index then node.
    var speculativeUsage = UsageLedger<UInt64>()
    /// Resources of proposals queued but not yet in the log, by proposal.
    var queuedUsage = UsageLedger<ProposalID>()
    var proposalWaiters: [ProposalID: PendingProposal] = [:]
    var readWaiters: [ReadID: Waiter<ReadResult>] = [:]
    var nextID: UInt64 = 1
    /// Recent service calls handled here by request ID, and their order, newest last (for `/state`).
    var serviceCalls: [String: ServiceCall] = [:]
    var serviceCallOrder: [String] = []
    /// Services changed by entries applied in the current round (their containers follow).
    var changedServices: [Int] = []
    /// Containers (seed 001/004) changed by the entries applied in this round.
    var changedContainers: [Int] = []
    /// Who answered this node, when, and whose connections closed (its own lock: see there).
    let contact = PeerContact()
    /// Wakes the leader-only loops when this node becomes leader (its own lock).
    let leadership = LeadershipSignal()
    /// The leader of the latest term before this node's leadership, if another node.
    var formerLeader: UInt64?
    var leadingSince = 0.0
    /// The term of this node's current leadership (0: not leading), set with `leadingSince`,
    /// and the leadership whose wait after its election is over: while they match, a request
    /// skips `settleAfterElection`'s look under the state lock (atomics: read without it).
    let leadingTerm = Atomic<UInt64>(0)
    let settledTerm = Atomic<UInt64>(0)
    /// This node's commit index over the last grace period, oldest first (monotonic seconds),
    /// to tell whether a follower's log keeps up.
    var commitSamples: [(time: Double, index: UInt64)] = []
    /// The last situation in which a look for room for pending replicas placed none: the
    /// next look waits for a change (guarded by `lock`).
    var fruitlessPendingSituation: PendingSituation?
    /// The term in which the reconcile loop last found this node leading.
    var leadingSinceTerm: UInt64 = 0
    /// The leader this node knew in each term (term → leader), newest terms kept.
    var leaderHistory: [UInt64: UInt64] = [:]
    /// The latest terms of `leaderHistory`, oldest first (at most `recentLeaderCount`): what
    /// `GET /` reports, so that whoever polls it learns of a leadership even when that leader
    /// died before it was asked.
    var recentLeaders: [(term: UInt64, leader: UInt64)] = []
    static let recentLeaderCount = 16
    /// When this node's role or term last changed (Unix seconds), for timing elections from outside.
    var roleChangedAt = Date().timeIntervalSince1970
    /// True while a snapshot of the state machine is being written in the background.
    var isSnapshotting = false
    /// The last snapshot this node stored, which its core may not have taken in yet (the
    /// next one counts from it: without this, a round between storing and the core's taking
    /// it in found a snapshot due again and took a second one at once).
    var storedSnapshot: (index: UInt64, bytes: Int)?
    /// Terms of leader history kept: enough for any experiment's reports, bounded.
    static let maxLeaderHistory = 10_000

    /// The state machine as the replica recovered it (its snapshot's state, or empty), on
    /// top of `driver`; it attaches itself to receive the replica's rounds.
    init(driver: ReplicaDriver, containers: ContainerRuntime) throws {
        let configuration = driver.configuration
        self.configuration = configuration
        self.log = driver.log
        self.metrics = driver.metrics
        self.containers = containers
        self.driver = driver
        if let snapshot = driver.recovered.snapshot {
            do {
                self.state = try ClusterState(snapshotData: snapshot.data)
            } catch {
                throw StorageError("snapshot in \(configuration.dataDirectory)/raft at index \(snapshot.metadata.index) holds no valid state: \(error); refusing to start")
            }
        } else {
            self.state = ClusterState(members: configuration.members, nodeResources: .standard(slots: configuration.capacity))
        }
        coreView = driver.replica.withCore { CoreView($0) }
        driver.consumer = self
    }

    /// Reads the Raft core (see the lock order above).
    func withCore<T>(_ body: (borrowing RaftNode) throws -> T) rethrows -> T { try driver.replica.withCore(body) }

    /// The leader as this service knows it (its view of the core, taken once a round's log
    /// write is done). It trails the core by that part of a round: a node whose core already
    /// leads refuses client requests until then, so waiting for a leader reads this view.
    var knownLeader: UInt64? { lock.withLock { coreView.leaderID } }

    /// The members in this node's log (voters and learners), sorted.
    var currentMembers: [UInt64] { withCore { $0.membership.members.map(\.rawValue).sorted() } }

    /// Queues an input for the replica layer and runs it; false when the inbox is full.
    @discardableResult
    func submit(_ input: RaftNode.Input, mayBeginRound: Bool = false) -> Bool { driver.submit(input, mayBeginRound: mayBeginRound) }

    /// True once the node is stopping.
    var isStoppedNow: Bool { driver.isStoppedNow }
}

/// The core's facts a leader decides requests by, and a node reports (see
/// `ClusterService.coreView`).
struct CoreView {
    let role: RaftNode.Role
    let term: UInt64
    let leaderID: UInt64?
    /// Each member's match index (leader only; the leader's own is its last index).
    private(set) var matchIndexes: [UInt64: UInt64] = [:]

    var isLeader: Bool { role == .leader }

    init(_ core: borrowing RaftNode) {
        role = core.role
        term = core.currentTerm.rawValue
        leaderID = core.leaderID?.rawValue
        if role == .leader {
            // Sized at once: built every round, grown from empty it reallocated as it filled.
            let membership = core.membership
            matchIndexes.reserveCapacity(membership.voters.count + membership.learners.count)
            func note(_ members: Set<NodeID>) {
                for member in members { matchIndexes[member.rawValue] = core.progress(of: member)?.matchIndex.rawValue ?? 0 }
            }
            note(membership.voters)
            note(membership.learners)
        }
    }
}
