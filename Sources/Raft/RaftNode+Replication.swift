/// Log replication (§5.3) and commitment (§5.4.2).
extension RaftNode {
    mutating func propose(_ proposals: [Proposal]) {
        guard !proposals.isEmpty else { return }
        guard leaderState != nil else {
            for proposal in proposals { output.proposals.append(.failed(proposal.id, .notLeader(leader: leaderID))) }
            return
        }
        guard leaderState?.transferTarget == nil else {
            for proposal in proposals { output.proposals.append(.failed(proposal.id, .leaderTransferInProgress)) }
            return
        }
        guard pendingProposalCount + proposals.count <= settings.maxPendingProposals else {
            for proposal in proposals { output.proposals.append(.failed(proposal.id, .tooManyPending)) }
            return
        }
        appendProposals(proposals.map { ($0.id, EntryKind.command, $0.data) })
    }

    /// Appends proposed entries of the current term, tracks them until they resolve, and
    /// sends them.
    mutating func appendProposals(_ proposals: [(id: ProposalID, kind: EntryKind, data: [UInt8])]) {
        var entries: [Entry] = []
        entries.reserveCapacity(proposals.count)
        var index = log.lastIndex
        let isBehindStalePending = (pendingProposals.last?.index ?? 0) > index
        for proposal in proposals {
            index += 1
            entries.append(Entry(term: currentTerm, index: index, kind: proposal.kind, data: proposal.data))
            pendingProposals.append((proposal.id, index, currentTerm))
        }
        if isBehindStalePending {
            // Proposals from an earlier leadership of ours, since truncated here, may still sit
            // at higher indexes (they may yet commit through another server). Keep the pending
            // list in index order so resolution at commit never stalls behind them.
            pendingProposals[pendingProposalsHead...].sort { $0.index < $1.index }
        }
        appendToOwnLog(entries)
        broadcastAppend(allowEmpty: false)
    }

    /// Appends entries of the current term as leader. The driver persists them before it
    /// sends anything of this step, so counting ourselves in the match is safe.
    mutating func appendToOwnLog(_ entries: [Entry]) {
        guard let first = entries.first else { return }
        log.append(entries)
        noteLogChanged(from: first.index)
        leaderState?.progress[id]?.setOwn(lastIndex: log.lastIndex)
        if maybeCommit() { broadcastCommit() }
    }

    /// Tells every follower of a commit index that moved: with the entries it is missing, if
    /// its window allows; a follower being probed gets an (empty) AppendEntries, whose answer
    /// tells where its log ends; one being replicated to gets a heartbeat that asks for no
    /// answer. (An empty AppendEntries to every follower was answered by each: at one client
    /// that was two answers per commit, each waking the leader's event loop and round thread
    /// for nothing.)
    mutating func broadcastCommit() {
        guard let peers = leaderState?.progress.keys.sorted() else { return }
        for peer in peers where peer != id { sendAppendsOrCommitNotice(to: peer) }
    }

    /// What `peer` is missing, as far as its window allows (an empty AppendEntries when it is
    /// being probed), or else the commit index, if that tells it something new.
    mutating func sendAppendsOrCommitNotice(to peer: NodeID) {
        let sentBefore = output.messages.count
        var mayBeEmpty = leaderState?.progress[peer]?.state == .probe
        while sendAppend(to: peer, allowEmpty: mayBeEmpty) { mayBeEmpty = false }
        if output.messages.count == sentBefore { sendCommitNotice(to: peer) }
    }

    /// A heartbeat that asks for no answer, carrying the commit index as far as `peer` is
    /// known to hold the log (as every heartbeat does), to a follower being replicated to.
    /// Sent only when it tells the follower something new.
    mutating func sendCommitNotice(to peer: NodeID) {
        guard let leader = leaderState, var progress = leader.progress[peer], progress.state == .replicate else { return }
        let commit = min(progress.matchIndex, commitIndex)
        guard commit > progress.commitSent else { return }
        send(.heartbeat(Heartbeat(term: currentTerm, leaderCommit: commit, readContext: leader.readContext, isAnswerRequested: false)), to: peer)
        progress.commitSent = commit
        leaderState?.progress[peer] = progress
    }

    /// Sends every follower what it is missing, as far as its window allows.
    mutating func broadcastAppend(allowEmpty: Bool) {
        guard let peers = leaderState?.progress.keys.sorted() else { return }
        for peer in peers where peer != id {
            var mayBeEmpty = allowEmpty
            while sendAppend(to: peer, allowEmpty: mayBeEmpty) { mayBeEmpty = false }
        }
    }

    /// Sends one AppendEntries to `peer` unless its progress is paused. Returns true when
    /// it sent entries and more may follow.
    @discardableResult
    mutating func sendAppend(to peer: NodeID, allowEmpty: Bool) -> Bool {
        guard var progress = leaderState?.progress[peer], !progress.isPaused else { return false }
        let prevLogIndex = progress.nextIndex - 1
        guard let prevLogTerm = log.term(at: prevLogIndex) else {
            // The entries this follower needs are compacted: it gets the snapshot instead.
            startSnapshotTransfer(to: peer)
            return false
        }
        let entries = log.entries(from: progress.nextIndex, maxCount: settings.maxEntriesPerAppend,
                                  maxBytes: settings.maxBytesPerAppend)
        if entries.isEmpty && !allowEmpty { return false }
        let lastIndex = prevLogIndex + entries.count
        send(.appendEntries(AppendEntries(term: currentTerm, prevLogIndex: prevLogIndex, prevLogTerm: prevLogTerm,
                                          entries: entries, leaderCommit: commitIndex)), to: peer)
        progress.didSend(lastIndex: lastIndex, entryCount: entries.count)
        progress.commitSent = max(progress.commitSent, min(commitIndex, lastIndex))
        leaderState?.progress[peer] = progress
        return !entries.isEmpty && progress.state == .replicate
    }

    /// A message from this term's leader arrived: follow it and restart the election timer.
    /// Two leaders in one term would break Election Safety, so that traps.
    mutating func followCurrentLeader(_ leader: NodeID) {
        if leaderState != nil {
            preconditionFailure("two leaders in term \(currentTerm): \(id) and \(leader)")
        }
        if role != .follower || leaderID != leader { becomeFollower(term: currentTerm, leader: leader) }
        electionElapsed = 0
    }

    mutating func handleAppendEntries(_ request: AppendEntries, from leader: NodeID) {
        followCurrentLeader(leader)

        // Everything up to our commit index is committed, so it matches the leader's log.
        if request.prevLogIndex < commitIndex {
            send(.appendEntriesResponse(AppendEntriesResponse(term: currentTerm, isSuccess: true,
                                                              matchIndex: commitIndex)), to: leader)
            return
        }
        guard log.matches(index: request.prevLogIndex, term: request.prevLogTerm) else {
            // §5.3 optimization: answer with the last index whose term is at most the
            // leader's prevLogTerm, so the leader skips a whole conflicting term per round trip.
            let hintIndex = log.lastIndex(atOrBelow: min(request.prevLogIndex, log.lastIndex),
                                          withTermAtMost: request.prevLogTerm)
            send(.appendEntriesResponse(AppendEntriesResponse(
                term: currentTerm, isSuccess: false, rejectedIndex: request.prevLogIndex,
                hintIndex: hintIndex, hintTerm: log.term(at: hintIndex) ?? 0)), to: leader)
            return
        }
        let lastNewIndex = request.prevLogIndex + request.entries.count
        if let conflict = log.firstConflict(in: request.entries) {
            // §5.3: delete a conflicting entry and all that follow it; never a committed one.
            precondition(conflict > commitIndex, "entry \(conflict) from \(leader) conflicts with committed \(commitIndex)")
            log.truncate(from: conflict)
            log.append(request.entries[Int(conflict.rawValue - request.entries[0].index.rawValue)...])
            noteLogChanged(from: conflict)
        }
        // Only entries known to match the leader's may be committed: up to lastNewIndex.
        commit(to: min(request.leaderCommit, lastNewIndex))
        send(.appendEntriesResponse(AppendEntriesResponse(term: currentTerm, isSuccess: true,
                                                          matchIndex: lastNewIndex)), to: leader)
    }

    mutating func handleAppendEntriesResponse(_ response: AppendEntriesResponse, from follower: NodeID) {
        guard leaderState != nil, var progress = leaderState?.progress[follower] else { return }
        progress.isRecentlyActive = true
        if response.isSuccess {
            let isNews = progress.didAcknowledge(response.matchIndex)
            leaderState?.progress[follower] = progress
            if progress.state != .snapshot { leaderState?.snapshotTransfers[follower] = nil }
            guard isNews else { return }
            if follower == leaderState?.transferTarget { sendTimeoutNowIfCaughtUp() }
            if maybeCommit() {
                broadcastCommit()
            } else {
                // If the commit moved while this follower lagged, it was told the commit only as
                // far as it then held the log. (Acknowledged, it is not being probed.)
                sendAppendsOrCommitNotice(to: follower)
            }
        } else {
            var probeIndex = response.hintIndex
            if response.hintTerm > 0 {
                probeIndex = log.lastIndex(atOrBelow: response.hintIndex, withTermAtMost: response.hintTerm)
            }
            let isCurrent = progress.didReject(rejectedIndex: response.rejectedIndex, probeIndex: probeIndex)
            leaderState?.progress[follower] = progress
            if isCurrent { sendAppend(to: follower, allowEmpty: true) }
        }
    }

    /// §5.3, §5.4.2: the commit index moves to the highest index a majority holds, but only
    /// when that entry is of the current term (older entries commit indirectly with it).
    mutating func maybeCommit() -> Bool {
        guard let leader = leaderState else { return false }
        let candidate = Quorum.committedIndex(voters: membership.voters) { leader.progress[$0]?.matchIndex ?? 0 }
        guard candidate > commitIndex, log.term(at: candidate) == currentTerm else { return false }
        commit(to: candidate)
        releaseReadsAwaitingTermCommit()
        return true
    }

    mutating func commit(to index: LogIndex) {
        if index > commitIndex { commitIndex = index }
        stepDownIfRemoved()
    }

    mutating func broadcastHeartbeat() {
        guard let leader = leaderState else { return }
        for peer in leader.progress.keys.sorted() where peer != id {
            // Never tell a follower to commit beyond what it is known to hold.
            let progress = leader.progress[peer]
            let commit = min(progress?.matchIndex ?? 0, commitIndex)
            let isBehind = (progress?.matchIndex ?? 0) < log.lastIndex || progress?.state == .probe
            send(.heartbeat(Heartbeat(term: currentTerm, leaderCommit: commit, readContext: leader.readContext,
                                      isAnswerRequested: isBehind)), to: peer)
            if var told = progress {
                told.commitSent = max(told.commitSent, commit)
                leaderState?.progress[peer] = told
            }
        }
    }

    mutating func handleHeartbeat(_ heartbeat: Heartbeat, from leader: NodeID) {
        followCurrentLeader(leader)
        commit(to: min(heartbeat.leaderCommit, log.lastIndex))
        // Answer when the leader needs it (it asks when this follower is behind, or it starts a
        // read round that ReadIndex waits on), to a new leader, and often enough for
        // check-quorum and stall detection; not every heartbeat of an idle cluster.
        let answerEvery = settings.heartbeatAnswerTicks ?? max(settings.heartbeatTicks, settings.electionTicks / 4)
        guard heartbeat.isAnswerRequested || heartbeat.readContext > answeredReadContext || answeredLeader != leader
            || ticksSinceHeartbeatAnswer >= answerEvery
        else { return }
        ticksSinceHeartbeatAnswer = 0
        answeredReadContext = heartbeat.readContext
        answeredLeader = leader
        send(.heartbeatResponse(HeartbeatResponse(term: currentTerm, readContext: heartbeat.readContext)), to: leader)
    }

    mutating func handleHeartbeatResponse(_ response: HeartbeatResponse, from follower: NodeID) {
        guard var progress = leaderState?.progress[follower] else { return }
        progress.didAnswerHeartbeat(leaderLastIndex: log.lastIndex)
        progress.acknowledgedReadContext = max(progress.acknowledgedReadContext, response.readContext)
        leaderState?.progress[follower] = progress
        if progress.matchIndex < log.lastIndex {
            while sendAppend(to: follower, allowEmpty: false) {}
        }
        confirmReads()
    }
}
