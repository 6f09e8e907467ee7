/// Membership changes one server at a time (thesis §4.1). A membership entry takes effect
/// on every server as soon as it is in its log, committed or not; a leader proposes the
/// next change only after the previous one committed and after it committed an entry of
/// its own term (the fix for the single-server change bug, thesis §4.1 and the raft-dev
/// erratum of 2015).
extension RaftNode {
    mutating func changeMembership(_ proposalID: ProposalID, _ change: MembershipChange) {
        guard leaderState != nil else {
            output.proposals.append(.failed(proposalID, .notLeader(leader: leaderID)))
            return
        }
        guard leaderState?.transferTarget == nil else {
            output.proposals.append(.failed(proposalID, .leaderTransferInProgress))
            return
        }
        guard pendingProposalCount < settings.maxPendingProposals else {
            output.proposals.append(.failed(proposalID, .tooManyPending))
            return
        }
        guard let latest = configurations.last, latest.index <= commitIndex, log.term(at: commitIndex) == currentTerm else {
            output.proposals.append(.failed(proposalID, .membershipChangeInProgress))
            return
        }
        switch change.applied(to: membership) {
        case .failure(let error):
            output.proposals.append(.failed(proposalID, .invalidMembershipChange(error.description)))
        case .success(let next):
            appendProposals([(proposalID, .membership, next.encoded)])
        }
    }

    /// The membership in force at `index` (the latest membership entry at or before it).
    public func membership(at index: LogIndex) -> Membership {
        var result = configurations[0].membership
        for configuration in configurations where configuration.index <= index { result = configuration.membership }
        return result
    }

    /// The index of the latest membership entry in the log (or of the snapshot holding it).
    public var membershipIndex: LogIndex { configurations.last?.index ?? 0 }

    /// Re-reads the membership entries from `index` on after the log changed there: entries
    /// dropped by a truncation no longer count, new ones do. `previous` is the membership in
    /// force before the change (by default the current one).
    mutating func updateConfigurations(from index: LogIndex, previous: Membership? = nil) {
        let previous = previous ?? membership
        while configurations.count > 1, let last = configurations.last, last.index >= index {
            configurations.removeLast()
        }
        if index <= log.lastIndex, index > log.snapshotIndex {
            for entry in log.entries(in: index...log.lastIndex) where entry.kind == .membership {
                // Only a leader writes these, from a validated change; a malformed one is ignored.
                if let decoded = Membership(encoded: entry.data) { configurations.append((entry.index, decoded)) }
            }
        }
        let current = membership
        guard current != previous else { return }
        output.events.append(.membershipChanged(current))
        guard var leader = leaderState else { return }
        for member in current.members where leader.progress[member] == nil {
            var progress = Progress(nextIndex: log.lastIndex + 1, maxInflight: settings.maxInflightAppends)
            progress.isRecentlyActive = true
            leader.progress[member] = progress
        }
        for peer in leader.progress.keys where !current.members.contains(peer) && peer != id {
            leader.progress[peer] = nil
            leader.snapshotTransfers[peer] = nil
            if leader.transferTarget == peer { leader.transferTarget = nil }
        }
        leaderState = leader
    }

    /// Collapses membership entries at or before a new compaction point into the base.
    mutating func compactConfigurations(through index: LogIndex) {
        let base = membership(at: index)
        configurations.removeAll { $0.index <= index }
        configurations.insert((index, base), at: 0)
    }

    /// Thesis §4.2.2: a leader whose removal has committed steps down. It first tells the
    /// most up-to-date remaining voter to campaign at once, so the cluster is without a
    /// leader for a round trip rather than an election timeout.
    mutating func stepDownIfRemoved() {
        guard let leader = leaderState, !membership.voters.contains(id), membershipIndex <= commitIndex else { return }
        let successor = membership.voters.sorted().max { (leader.progress[$0]?.matchIndex ?? 0) < (leader.progress[$1]?.matchIndex ?? 0) }
        if let successor, leader.progress[successor]?.matchIndex == log.lastIndex {
            send(.timeoutNow(TimeoutNow(term: currentTerm)), to: successor)
        }
        becomeFollower(term: currentTerm, leader: nil)
    }
}
