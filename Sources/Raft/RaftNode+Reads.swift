/// Linearizable reads by ReadIndex (thesis §6.4): the leader records its commit index,
/// confirms with a round of heartbeats that it is still the leader, and the read may be
/// served once that index is applied. A leader serves none before it has committed an
/// entry of its own term, since until then its commit index may lag the true one.
extension RaftNode {
    mutating func read(_ readID: ReadID) {
        guard var leader = leaderState else {
            output.reads.append(.failed(readID, .notLeader(leader: leaderID)))
            return
        }
        guard leader.pendingReads.count + leader.readsAwaitingTermCommit.count < settings.maxPendingReads else {
            output.reads.append(.failed(readID, .tooManyPending))
            return
        }
        guard log.term(at: commitIndex) == currentTerm else {
            leader.readsAwaitingTermCommit.append(readID)
            leaderState = leader
            return
        }
        leaderState = leader
        registerRead(readID)
    }

    /// Reads waiting for this term's first commit may proceed now.
    mutating func releaseReadsAwaitingTermCommit() {
        guard let waiting = leaderState?.readsAwaitingTermCommit, !waiting.isEmpty else { return }
        leaderState?.readsAwaitingTermCommit = []
        for readID in waiting { registerRead(readID) }
    }

    private mutating func registerRead(_ readID: ReadID) {
        guard var leader = leaderState else { return }
        if membership.voters == [id] {
            output.reads.append(.ready(readID, index: commitIndex))
            return
        }
        // Reads registered in one step share one heartbeat round.
        if !leader.isReadHeartbeatDue {
            leader.readContext += 1
            leader.isReadHeartbeatDue = true
        }
        leader.pendingReads.append((readID, commitIndex, leader.readContext))
        leaderState = leader
    }

    /// Serves, in order, every read whose heartbeat round a majority has answered.
    mutating func confirmReads() {
        guard var leader = leaderState, !leader.pendingReads.isEmpty else { return }
        var served = 0
        for read in leader.pendingReads {
            var acknowledged = 0
            for voter in membership.voters {
                if voter == id || (leader.progress[voter]?.acknowledgedReadContext ?? 0) >= read.context {
                    acknowledged += 1
                }
            }
            guard acknowledged >= membership.quorum else { break }
            output.reads.append(.ready(read.id, index: read.index))
            served += 1
        }
        leader.pendingReads.removeFirst(served)
        leaderState = leader
    }
}
