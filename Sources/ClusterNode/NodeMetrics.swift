import Foundation
import Raft
import Transport

/// Counters of one node, for `/metrics` and `/stats`. Thread-safe: every change is one
/// locked increment.
final class NodeMetrics: @unchecked Sendable {
    /// The counted things.
    enum Counter: String, CaseIterable {
        case messagesSent, messagesReceived, messagesFailed, messagesRejected, messagesDroppedByLinks, inputsDropped
        /// Frames on a peer's stream this node refused (malformed, not addressed to it): the
        /// stream was closed, and the peer opens a new one.
        case framesRefused
        case appliedEntries, fsyncs, commits, leaderships, elections, preVotes, quorumLosses
        case proposals, proposalsFailed, forwardedRequests, leaderTransfers
        case membershipChanges, snapshotsSent, snapshotsInstalled, snapshotsTaken, compactions, leadersUnreachable
        /// Reconcile passes that did not search for room for pending replicas: nothing that decides
        /// whether one fits had changed since a search that placed none.
        case pendingSearchesSkipped
        /// Rounds an event loop began itself on a nearly idle node, instead of waking the
        /// round thread for them (`ReplicaDriver.submit(_:mayBeginRound:)`).
        case roundsBegunOnEventLoops
        /// A follower's rounds that came far apart, synced by the event loop that began them
        /// instead of the round thread (`ReplicaDriver.syncsWhereBegun`).
        case roundsSyncedOnEventLoops
        /// Times this node, as leader, stepped no ticks (sent no heartbeats) for at least an
        /// election timeout: a long fdatasync, a pause, a starved CPU (`ReplicaDriver`).
        case heartbeatStalls
    }

    private let lock = AdaptiveLock()
    private var counters: [Counter: Int] = [:]
    private var fsyncSeconds = 0.0
    private var commitSeconds = 0.0
    var recoveredEntries: UInt64 = 0
    var truncatedBytes = 0
    /// From a client's proposal to its commit (as the leader saw it).
    let commitLatency = Histogram()
    /// Each fdatasync of the write-ahead log.
    let fsyncDuration = Histogram()
    /// Each Raft round on the round thread, whole (step, write, fdatasync, send, apply), and
    /// its apply alone: a round that stalls holds every commit behind it.
    let roundDuration = Histogram()
    let applyDuration = Histogram()
    /// From this node's first campaign (pre-vote or vote) after losing its leader until it
    /// knows a leader again, itself or another.
    let electionDuration = Histogram()
    /// Every HTTP request this node answered.
    let requests = RequestMetrics()
    private var electionStartedAt: Double?

    func increment(_ counter: Counter, by amount: Int = 1) { lock.withLock { counters[counter, default: 0] += amount } }
    subscript(counter: Counter) -> Int { lock.withLock { counters[counter] ?? 0 } }

    func recordSync(seconds: Double) {
        lock.withLock {
            counters[.fsyncs, default: 0] += 1
            fsyncSeconds += seconds
        }
        fsyncDuration.observe(seconds)
    }

    func recordCommit(seconds: Double) {
        lock.withLock {
            counters[.commits, default: 0] += 1
            commitSeconds += seconds
        }
        commitLatency.observe(seconds)
    }

    func record(_ event: RaftEvent, now: Double = monotonicSeconds()) {
        switch event {
        case .becamePreCandidate, .becameCandidate:
            lock.withLock { if electionStartedAt == nil { electionStartedAt = now } }
        case .becameLeader, .becameFollower(_, _?):
            if let started = lock.withLock({ () -> Double? in defer { electionStartedAt = nil }; return electionStartedAt }) {
                electionDuration.observe(now - started)
            }
        default: break
        }
        switch event {
        case .becameLeader: increment(.leaderships)
        case .becameCandidate: increment(.elections)
        case .becamePreCandidate: increment(.preVotes)
        case .lostQuorum: increment(.quorumLosses)
        case .transferStarted: increment(.leaderTransfers)
        case .membershipChanged: increment(.membershipChanges)
        case .snapshotSendStarted: increment(.snapshotsSent)
        case .snapshotInstalled: increment(.snapshotsInstalled)
        case .compacted: increment(.compactions)
        case .leaderUnreachable: increment(.leadersUnreachable)
        case .becameFollower, .transferAbandoned: break
        }
    }

    /// Total seconds spent in fdatasync and waiting for commits.
    var durations: (fsync: Double, commit: Double) { lock.withLock { (fsyncSeconds, commitSeconds) } }
}
