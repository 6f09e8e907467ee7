/// Leader election (§5.2) with pre-vote (thesis §9.6).
extension RaftNode {
    /// Starts a pre-vote round or an election for the next term.
    mutating func campaign(isPreVote: Bool, isLeaderTransfer: Bool = false) {
        let electionTerm: Term
        if isPreVote {
            roleState = .preCandidate(votes: [id: true])
            electionTerm = currentTerm.next
            output.events.append(.becamePreCandidate(term: currentTerm))
        } else {
            currentTerm = currentTerm.next
            votedFor = id
            roleState = .candidate(votes: [id: true])
            electionTerm = currentTerm
            output.events.append(.becameCandidate(term: currentTerm))
        }
        leaderID = nil
        resetElectionTimer()
        if Quorum.voteResult(voters: membership.voters, votes: [id: true]) == .won {
            if isPreVote { campaign(isPreVote: false) } else { becomeLeader() }
            return
        }
        let request = RequestVote(term: electionTerm, lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm,
                                  isPreVote: isPreVote, isLeaderTransfer: isLeaderTransfer)
        for voter in membership.voters.sorted() where voter != id {
            send(.requestVote(request), to: voter)
        }
    }

    /// §5.2, §5.4.1: grant at most one vote per term, only to a candidate whose log is at
    /// least as up-to-date as ours. A pre-vote is granted on the same log rule without
    /// recording anything.
    mutating func handleRequestVote(_ request: RequestVote, from candidate: NodeID) {
        let canVote = votedFor == candidate
            || (votedFor == nil && leaderID == nil)
            || (request.isPreVote && request.term > currentTerm)
        if canVote && log.isUpToDate(lastIndex: request.lastLogIndex, lastTerm: request.lastLogTerm) {
            send(.requestVoteResponse(RequestVoteResponse(term: request.term, isGranted: true,
                                                          isPreVote: request.isPreVote)), to: candidate)
            if !request.isPreVote {
                votedFor = candidate
                // Its vote given to another, a follower that heard its leader's connection close
                // waits for that candidate as usual instead of campaigning against it.
                if candidate != id { leaderLostTicks = 0 }
                resetElectionTimer()
            }
        } else {
            send(.requestVoteResponse(RequestVoteResponse(term: currentTerm, isGranted: false,
                                                          isPreVote: request.isPreVote)), to: candidate)
        }
    }

    mutating func handleVoteResponse(_ response: RequestVoteResponse, from voter: NodeID) {
        switch roleState {
        case .preCandidate(var votes) where response.isPreVote:
            // A grant is for the term we would campaign in; anything else is from an older round.
            if response.isGranted && response.term != currentTerm.next { return }
            votes[voter] = response.isGranted
            roleState = .preCandidate(votes: votes)
            switch Quorum.voteResult(voters: membership.voters, votes: votes) {
            case .won: campaign(isPreVote: false)
            case .lost: becomeFollower(term: currentTerm, leader: nil)
            case .pending: break
            }
        case .candidate(var votes) where !response.isPreVote:
            votes[voter] = response.isGranted
            roleState = .candidate(votes: votes)
            switch Quorum.voteResult(voters: membership.voters, votes: votes) {
            case .won: becomeLeader()
            case .lost: becomeFollower(term: currentTerm, leader: nil)
            case .pending: break
            }
        default:
            break
        }
    }

    /// A follower whose leader's connection closed stops trusting that leader and campaigns
    /// within one heartbeat interval instead of an election timeout: failover after a crash
    /// the network announces. Only with pre-vote (thesis §9.6): a follower wrong about its
    /// leader (a connection closed for another reason) then asks, is refused by the others
    /// that still hear the leader inside their lease (§6.2), raises no term and disrupts
    /// nothing; the leader's next message restores it. Followers that saw the close too are
    /// no longer inside a lease, so they grant the first campaign's pre-votes at once.
    mutating func peerUnreachable(_ peer: NodeID) {
        guard settings.isPreVoteEnabled, leaderState == nil, leaderID == peer else { return }
        leaderID = nil
        output.events.append(.leaderUnreachable(leader: peer, term: currentTerm))
        guard isPromotable else { return }
        leaderLostTicks = settings.electionTicks
        resetElectionTimer()  // within a heartbeat interval, while `leaderLostTicks` lasts
    }

    /// §5.2, §8: takes office, and appends a no-op of the new term so that entries of
    /// earlier terms can be committed (and reads served) as soon as possible.
    mutating func becomeLeader() {
        guard case .candidate = roleState else {
            preconditionFailure("becomeLeader from \(role) in term \(currentTerm)")
        }
        roleState = .leader
        leaderID = id
        isFreshStart = false
        leaderLostTicks = 0
        heartbeatElapsed = 0
        electionElapsed = 0
        var progress: [NodeID: Progress] = [:]
        for member in membership.members.union([id]) {
            var peer = Progress(nextIndex: log.lastIndex + 1, maxInflight: settings.maxInflightAppends)
            // It just heard from a majority; give every follower one full round before check-quorum.
            peer.isRecentlyActive = true
            progress[member] = peer
        }
        leaderState = LeaderState(progress: progress)
        output.events.append(.becameLeader(term: currentTerm))
        appendToOwnLog([Entry(term: currentTerm, index: log.lastIndex + 1, kind: .noop)])
        broadcastAppend(allowEmpty: true)
    }

    /// Clears what only a leader keeps; its reads fail, since it can no longer confirm them.
    mutating func stepDownAsLeader(newLeader: NodeID?) {
        guard let leader = leaderState else { return }
        for read in leader.pendingReads {
            output.reads.append(.failed(read.id, .notLeader(leader: newLeader)))
        }
        for readID in leader.readsAwaitingTermCommit {
            output.reads.append(.failed(readID, .notLeader(leader: newLeader)))
        }
        leaderState = nil
    }
}
