/// What the leader knows about one follower's log and how it is sending to it.
///
/// In `probe` the leader sends one append at a time and waits for the answer, moving
/// `next` back on rejection; in `replicate` it streams appends optimistically, at most
/// `maxInflight` unacknowledged at once; in `snapshot` the entries it needs are compacted
/// away, so it is sent a snapshot and nothing else until that is installed.
public struct Progress: Sendable, Equatable {
    /// How the leader is currently sending to this follower.
    public enum State: String, Sendable {
        case probe, replicate, snapshot
    }

    /// The highest index known to be replicated on the follower.
    public private(set) var matchIndex: LogIndex
    /// The next index to send.
    public private(set) var nextIndex: LogIndex
    public private(set) var state: State
    /// In probe: an append is out and unanswered.
    public private(set) var isProbeSent: Bool
    /// In replicate: the last index of each unacknowledged append, oldest first.
    public private(set) var inflight: [LogIndex]
    /// In snapshot: the index of the snapshot being sent.
    public private(set) var pendingSnapshotIndex: LogIndex = 0
    /// Heard from since the last check-quorum round.
    public var isRecentlyActive: Bool
    /// `matchIndex` when the previous heartbeat answer arrived, to spot a lost append.
    var matchIndexAtLastHeartbeat: LogIndex
    /// The highest read context this follower has acknowledged.
    var acknowledgedReadContext: UInt64
    /// The highest commit index this follower was sent, as far as it applies it (an append's
    /// up to the append's last entry, a heartbeat's up to `matchIndex`): a commit notice that
    /// would tell it nothing new is not sent.
    var commitSent: LogIndex = 0
    let maxInflight: Int

    public init(nextIndex: LogIndex, maxInflight: Int) {
        precondition(maxInflight > 0, "maxInflight must be positive, got \(maxInflight)")
        self.matchIndex = 0
        self.nextIndex = nextIndex
        self.state = .probe
        self.isProbeSent = false
        self.inflight = []
        self.isRecentlyActive = false
        self.matchIndexAtLastHeartbeat = 0
        self.acknowledgedReadContext = 0
        self.maxInflight = maxInflight
    }

    /// True when nothing more may be sent until an answer arrives.
    public var isPaused: Bool {
        switch state {
        case .probe: isProbeSent
        case .replicate: inflight.count >= maxInflight
        case .snapshot: true
        }
    }

    /// Records that an append ending at `lastIndex` was sent (`lastIndex` is `nextIndex - 1`
    /// for an empty append).
    public mutating func didSend(lastIndex: LogIndex, entryCount: Int) {
        switch state {
        case .probe:
            isProbeSent = true
        case .replicate:
            guard entryCount > 0 else { return }
            nextIndex = lastIndex + 1
            inflight.append(lastIndex)
        case .snapshot:
            break
        }
    }

    /// Records a successful answer; returns false when it told nothing new.
    public mutating func didAcknowledge(_ index: LogIndex) -> Bool {
        guard index > matchIndex else {
            if state == .probe { isProbeSent = false }
            return false
        }
        matchIndex = index
        nextIndex = max(nextIndex, index + 1)
        isProbeSent = false
        if let cut = inflight.firstIndex(where: { $0 > index }) {
            inflight.removeFirst(cut)
        } else {
            inflight.removeAll()
        }
        switch state {
        case .probe: becomeReplicate()
        case .snapshot where index >= pendingSnapshotIndex: becomeProbe()
        default: break
        }
        return true
    }

    /// Records a rejection of the append after `rejectedIndex`; `probeIndex` is where the
    /// hint says the logs may match. Returns false when the rejection is stale.
    public mutating func didReject(rejectedIndex: LogIndex, probeIndex: LogIndex) -> Bool {
        switch state {
        case .replicate:
            // An append we sent before the follower matched: already superseded.
            guard rejectedIndex > matchIndex else { return false }
            becomeProbe()
            nextIndex = max(matchIndex + 1, min(probeIndex, rejectedIndex) + 1)
        case .probe:
            guard rejectedIndex == nextIndex - 1 else { return false }
            if rejectedIndex == matchIndex, matchIndex > 0 {
                // The follower refuses the very entry it acknowledged: it lost its log (its
                // disk was wiped or replaced). Raft assumes this never happens; without this
                // the leader would probe at `matchIndex + 1` forever. Start again from where
                // its log may match, which is safe: the commit index never moves back.
                matchIndex = min(probeIndex, rejectedIndex - 1)
                matchIndexAtLastHeartbeat = min(matchIndexAtLastHeartbeat, matchIndex)
            }
            nextIndex = max(matchIndex + 1, min(probeIndex, rejectedIndex) + 1)
            isProbeSent = false
        case .snapshot:
            return false
        }
        return true
    }

    /// Falls back to probing from just after the last known match (a lost append).
    public mutating func becomeProbe() {
        state = .probe
        isProbeSent = false
        inflight.removeAll()
        nextIndex = matchIndex + 1
    }

    /// Stops appending: the follower needs the snapshot at `index` first.
    public mutating func becomeSnapshot(index: LogIndex) {
        state = .snapshot
        isProbeSent = false
        inflight.removeAll()
        pendingSnapshotIndex = index
    }

    /// Starts streaming from just after the last known match.
    public mutating func becomeReplicate() {
        state = .replicate
        isProbeSent = false
        inflight.removeAll()
        nextIndex = matchIndex + 1
    }

    /// A heartbeat answer arrived: unpause a probe whose append may have been lost, and
    /// fall back to probing when a replicating follower made no progress for a whole
    /// heartbeat interval although appends were outstanding (one was lost on the way).
    public mutating func didAnswerHeartbeat(leaderLastIndex: LogIndex) {
        isRecentlyActive = true
        switch state {
        case .probe:
            isProbeSent = false
        case .replicate:
            if matchIndex < leaderLastIndex, matchIndex == matchIndexAtLastHeartbeat, !inflight.isEmpty {
                becomeProbe()
            }
        case .snapshot:
            break
        }
        matchIndexAtLastHeartbeat = matchIndex
    }

    /// The leader itself: its own log is its match.
    mutating func setOwn(lastIndex: LogIndex) {
        matchIndex = lastIndex
        nextIndex = lastIndex + 1
        state = .replicate
    }
}
