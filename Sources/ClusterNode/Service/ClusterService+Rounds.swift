import Foundation
import Synchronization
import Raft
import Transport

/// What the core's events and outcomes mean to the node: its event log, its leader
/// history, and the answers to waiting clients.
extension ClusterService {
    /// Counts an event and remembers which leader this node knew in each term.
    func record(_ event: RaftEvent) {
        metrics.record(event)
        if let line = Self.logLine(for: event) { log.write(line) }
        switch event {
        case .becameLeader(let term):
            // The leader this node followed last: it went silent for an election timeout (or
            // its connections closed), or handed over; the wait after the election does not
            // wait for its answer (a paused leader never answers).
            formerLeader = leaderHistory.filter { $0.key < term.rawValue && $0.value != configuration.id }.max { $0.key < $1.key }?.value
            noteLeader(configuration.id, of: term.rawValue)
            contact.startLeading(term: term.rawValue)
            leadingSince = monotonicSeconds()
            leadingTerm.store(term.rawValue, ordering: .releasing)
            roleChangedAt = Date().timeIntervalSince1970
            leadership.becameLeader()
        case .becameFollower(let term, let leader):
            leadingTerm.store(0, ordering: .releasing)
            if let leader { noteLeader(leader.rawValue, of: term.rawValue) }
            roleChangedAt = Date().timeIntervalSince1970
        case .becameCandidate, .becamePreCandidate:
            leadingTerm.store(0, ordering: .releasing)
            roleChangedAt = Date().timeIntervalSince1970
        default: break
        }
        if leaderHistory.count > Self.maxLeaderHistory, let oldest = leaderHistory.keys.min() { leaderHistory[oldest] = nil }
    }

    /// Remembers `leader` as the leader of `term` (a node's terms only grow, so the newest
    /// term is the last of `recentLeaders` or a new one after it).
    private func noteLeader(_ leader: UInt64, of term: UInt64) {
        leaderHistory[term] = leader
        if recentLeaders.last?.term == term {
            recentLeaders[recentLeaders.count - 1].leader = leader
        } else {
            recentLeaders.append((term, leader))
            if recentLeaders.count > Self.recentLeaderCount { recentLeaders.removeFirst() }
        }
    }

    /// How an event reads in the node's log (nil: too frequent to log, e.g. pre-votes).
    static func logLine(for event: RaftEvent) -> String? {
        switch event {
        case .becameFollower(let term, let leader?): "term \(term): following leader \(address(leader.rawValue))"
        case .becameFollower(let term, nil): "term \(term): follower, no leader known"
        case .becamePreCandidate: nil
        case .becameCandidate(let term): "term \(term): election timeout, campaigning"
        case .becameLeader(let term): "term \(term): elected leader"
        case .lostQuorum(let term): "term \(term): stepped down, no majority heard within an election timeout"
        case .transferStarted(let target): "leadership transfer to \(address(target.rawValue)) started"
        case .transferAbandoned(let target): "leadership transfer to \(address(target.rawValue)) abandoned"
        case .membershipChanged(let membership):
            "membership now voters \(membership.voters.sorted().map { address($0.rawValue) }) learners \(membership.learners.sorted().map { address($0.rawValue) })"
        case .snapshotSendStarted(let peer, let index): "sending snapshot at index \(index) to \(address(peer.rawValue))"
        case .snapshotInstalled(let index): "installed the leader's snapshot at index \(index)"
        case .compacted(let index): "log compacted through index \(index)"
        case .leaderUnreachable(let leader, let term): "term \(term): the connection from leader \(address(leader.rawValue)) closed; campaigning within a heartbeat interval"
        }
    }

    /// A proposal's outcome for its waiter (under the lock, right after `output` applied):
    /// a client request's commit carries what it did (`AppliedRequest`).
    func result(of outcome: ProposalOutcome, in output: Output, for pending: PendingProposal) -> ProposalResult {
        switch outcome {
        case .committed(_, let index):
            // The entry's term from the output that committed it (consecutive indexes), or
            // from the core's log.
            let entries = output.committed
            let offset = entries.first.map { Int(truncatingIfNeeded: index.rawValue &- $0.index.rawValue) } ?? -1
            let term = offset >= 0 && offset < entries.count && entries[offset].index == index
                ? entries[offset].term.rawValue : withCore { $0.log.term(at: index)?.rawValue ?? 0 }
            return .committed(index: index.rawValue, term: term, applied: pending.requestID.map { AppliedRequest($0, in: state, namesServices: pending.namesServices) })
        case .failed(_, .notLeader(let leader)):
            return .notLeader(leader: leader?.rawValue)
        case .failed(_, .overwritten(let index)):
            return .failed("lost to a leadership change (another entry was committed at index \(index)); not applied, safe to retry")
        case .failed(_, .tooManyPending):
            return .failed("too many requests waiting for commit")
        case .failed(_, .leaderTransferInProgress):
            return .failed("leadership is being transferred; retry in a moment")
        case .failed(_, .membershipChangeInProgress):
            return .failed("another membership change is still being committed; retry in a moment")
        case .failed(_, .invalidMembershipChange(let reason)):
            return .rejected(reason)
        case .failed(_, .outcomeUnknown(let index)):
            return .failed("this node's log was replaced by the leader's snapshot before entry \(index) was known committed; retry with the same requestId to be sure it applies once")
        }
    }

    static func result(of outcome: ReadOutcome) -> (ReadID, ReadResult) {
        switch outcome {
        case .ready(let id, _):
            // Every entry up to the read index was committed in this or an earlier step and is
            // applied by now, so the read may be served.
            (id, .ready)
        case .failed(let id, .notLeader(let leader)):
            (id, .notLeader(leader: leader?.rawValue))
        case .failed(let id, .tooManyPending):
            (id, .failed("too many reads waiting"))
        }
    }
}
