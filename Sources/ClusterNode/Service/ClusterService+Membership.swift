import Foundation
import Raft
import Transport

/// Membership changes through the log, one server at a time: a new node joins as a
/// learner, is promoted to voter once it has caught up, and a node is removed in one step.
extension ClusterService {
    /// The membership as `GET /members` shows it.
    public struct MembershipView: Codable, Sendable {
        public var voters: [String]
        public var learners: [String]
        /// The index of the membership entry in force, and whether it is committed.
        public var index: UInt64
        public var isCommitted: Bool
        public var leader: String?
        /// This node's term when it answered.
        public var term: UInt64
        /// Milliseconds the change took (for a change just made).
        public var milliseconds: Double?
    }

    /// This node's current term.
    var currentTerm: UInt64 { withCore { $0.currentTerm.rawValue } }

    func membershipView(milliseconds: Double? = nil) -> MembershipView {
        withCore { core in
            MembershipView(voters: core.membership.voters.sorted().map { address($0.rawValue) },
                           learners: core.membership.learners.sorted().map { address($0.rawValue) },
                           index: core.membershipIndex.rawValue, isCommitted: core.membershipIndex <= core.commitIndex,
                           leader: core.leaderID.map { address($0.rawValue) }, term: core.currentTerm.rawValue, milliseconds: milliseconds)
        }
    }

    /// Adds `node`: as a learner, then, once it holds everything committed when it joined,
    /// as a voter. Idempotent: a learner is only promoted, a voter left as it is.
    func addMember(_ node: UInt64) async throws(NodeError) -> MembershipView {
        let started = monotonicSeconds()
        let membership = withCore { $0.membership }
        if !membership.members.contains(NodeID(node)) {
            try await changeMembership(.addLearner(NodeID(node)))
        }
        if !withCore({ $0.membership.voters.contains(NodeID(node)) }) {
            try await waitUntilCaughtUp(node)
            try await changeMembership(.promote(NodeID(node)))
        }
        return membershipView(milliseconds: (monotonicSeconds() - started) * 1_000)
    }

    /// Removes `node` (a voter or a learner). A leader that removes itself keeps leading until
    /// the removal commits, then hands over at once; callers usually move leadership first.
    func removeMember(_ node: UInt64) async throws(NodeError) -> MembershipView {
        let started = monotonicSeconds()
        if withCore({ $0.membership.members.contains(NodeID(node)) }) {
            try await changeMembership(.remove(NodeID(node)))
        }
        return membershipView(milliseconds: (monotonicSeconds() - started) * 1_000)
    }

    /// Waits until the leader knows `node` holds its commit index as it was when the wait
    /// began (by appends, or by a snapshot first when the log is compacted).
    private func waitUntilCaughtUp(_ node: UInt64) async throws(NodeError) {
        let deadline = monotonicSeconds() + configuration.commitTimeoutSeconds * 4
        let target = withCore { $0.commitIndex }
        while monotonicSeconds() < deadline {
            let (isLeader, leader, match) = withCore { core in (core.isLeader, core.leaderID?.rawValue, core.progress(of: NodeID(node))?.matchIndex) }
            guard isLeader else { throw .notLeader(leader: leader) }
            if let match, match >= target { return }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        throw .timedOut("learner \(node) did not catch up within \(Int(configuration.commitTimeoutSeconds * 4)) s (is it running?); it stays a learner", mayHaveApplied: false)
    }

    /// Proposes one membership change and waits for its commit.
    private func changeMembership(_ change: MembershipChange) async throws(NodeError) {
        let waiter = Waiter<ProposalResult>()
        let id = lock.withLock { () -> ProposalID in
            let id = nextID
            nextID += 1
            proposalWaiters[id] = PendingProposal(waiter: waiter, requestID: nil)
            return id
        }
        _ = try await submitAndWait(.changeMembership(id, change), waiter: waiter,
                              timeoutMessage: "membership change (\(change)) not committed within \(configuration.commitTimeoutSeconds) s; it may still commit: check GET /members") { _ in
            _ = lock.withLock { proposalWaiters.removeValue(forKey: id) }
        }
    }
}
