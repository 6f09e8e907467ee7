/// Leader transfer (thesis §3.10): the leader stops taking proposals, brings the target's
/// log up to date, then sends TimeoutNow; the target campaigns at once, and its vote
/// requests say so, so followers that heard from the leader recently still vote.
extension RaftNode {
    mutating func transferLeadership(to target: NodeID) {
        guard leaderState != nil, target != id, membership.voters.contains(target) else { return }
        leaderState?.transferTarget = target
        leaderState?.transferElapsed = 0
        output.events.append(.transferStarted(target: target))
        sendTimeoutNowIfCaughtUp()
        if leaderState?.transferTarget != nil { sendAppend(to: target, allowEmpty: true) }
    }

    /// Sends TimeoutNow once the target holds every entry of the leader's log.
    mutating func sendTimeoutNowIfCaughtUp() {
        guard let target = leaderState?.transferTarget, leaderState?.progress[target]?.matchIndex == log.lastIndex else { return }
        send(.timeoutNow(TimeoutNow(term: currentTerm)), to: target)
    }

    mutating func handleTimeoutNow(from leader: NodeID) {
        guard leaderState == nil, isPromotable else { return }
        campaign(isPreVote: false, isLeaderTransfer: true)
    }
}
