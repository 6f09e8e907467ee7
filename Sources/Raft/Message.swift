/// RequestVote (§5.2), also used for pre-vote (thesis §9.6) when `isPreVote` is set:
/// a pre-vote asks "would you vote for me in `term`?" without anyone changing term.
public struct RequestVote: Hashable, Sendable {
    public var term: Term
    public var lastLogIndex: LogIndex
    public var lastLogTerm: Term
    public var isPreVote: Bool
    /// Set when the current leader asked for this election (TimeoutNow); a follower then
    /// votes even though it heard from a leader recently (thesis §3.10).
    public var isLeaderTransfer: Bool

    public init(term: Term, lastLogIndex: LogIndex, lastLogTerm: Term, isPreVote: Bool, isLeaderTransfer: Bool = false) {
        self.term = term
        self.lastLogIndex = lastLogIndex
        self.lastLogTerm = lastLogTerm
        self.isPreVote = isPreVote
        self.isLeaderTransfer = isLeaderTransfer
    }
}

/// The answer to a RequestVote.
public struct RequestVoteResponse: Hashable, Sendable {
    public var term: Term
    public var isGranted: Bool
    public var isPreVote: Bool

    public init(term: Term, isGranted: Bool, isPreVote: Bool) {
        self.term = term
        self.isGranted = isGranted
        self.isPreVote = isPreVote
    }
}

/// AppendEntries (§5.3): entries after (`prevLogIndex`, `prevLogTerm`) and the leader's commit.
public struct AppendEntries: Hashable, Sendable {
    public var term: Term
    public var prevLogIndex: LogIndex
    public var prevLogTerm: Term
    public var entries: [Entry]
    public var leaderCommit: LogIndex

    public init(term: Term, prevLogIndex: LogIndex, prevLogTerm: Term, entries: [Entry], leaderCommit: LogIndex) {
        self.term = term
        self.prevLogIndex = prevLogIndex
        self.prevLogTerm = prevLogTerm
        self.entries = entries
        self.leaderCommit = leaderCommit
    }
}

/// The answer to an AppendEntries. On success `matchIndex` is the last index now known to
/// match the leader. On rejection `rejectedIndex` echoes the request's `prevLogIndex` (so
/// stale answers can be recognised) and (`hintIndex`, `hintTerm`) let the leader skip a
/// whole term of conflicting entries per round trip (§5.3, "optimization").
public struct AppendEntriesResponse: Hashable, Sendable {
    public var term: Term
    public var isSuccess: Bool
    public var matchIndex: LogIndex
    public var rejectedIndex: LogIndex
    public var hintIndex: LogIndex
    public var hintTerm: Term

    public init(term: Term, isSuccess: Bool, matchIndex: LogIndex = 0, rejectedIndex: LogIndex = 0,
                hintIndex: LogIndex = 0, hintTerm: Term = 0) {
        self.term = term
        self.isSuccess = isSuccess
        self.matchIndex = matchIndex
        self.rejectedIndex = rejectedIndex
        self.hintIndex = hintIndex
        self.hintTerm = hintTerm
    }
}

/// A leader's heartbeat. `leaderCommit` is never beyond what the follower is known to
/// hold; `readContext` numbers the leader's latest ReadIndex round (thesis §6.4).
public struct Heartbeat: Hashable, Sendable {
    public var term: Term
    public var leaderCommit: LogIndex
    public var readContext: UInt64
    /// The leader needs this follower's answer now (it is behind, or being probed); otherwise
    /// a follower answers only every few heartbeats.
    public var isAnswerRequested: Bool

    public init(term: Term, leaderCommit: LogIndex, readContext: UInt64, isAnswerRequested: Bool = true) {
        self.term = term
        self.leaderCommit = leaderCommit
        self.readContext = readContext
        self.isAnswerRequested = isAnswerRequested
    }
}

/// The answer to a Heartbeat, echoing its read context.
public struct HeartbeatResponse: Hashable, Sendable {
    public var term: Term
    public var readContext: UInt64

    public init(term: Term, readContext: UInt64) {
        self.term = term
        self.readContext = readContext
    }
}

/// Leader transfer (thesis §3.10): the leader tells an up-to-date follower to start an
/// election at once, without waiting for its timeout or asking for pre-votes.
public struct TimeoutNow: Hashable, Sendable {
    public var term: Term
    public init(term: Term) { self.term = term }
}

/// InstallSnapshot (§7), one chunk at a time: `data` is the snapshot's bytes from `offset`;
/// the last chunk has `isLast` set. `totalBytes` and `checksum` describe the whole snapshot
/// so the follower can check what it assembled.
public struct InstallSnapshot: Hashable, Sendable {
    public var term: Term
    public var metadata: SnapshotMetadata
    public var offset: UInt64
    public var totalBytes: UInt64
    public var checksum: UInt32
    public var data: [UInt8]
    public var isLast: Bool

    public init(term: Term, metadata: SnapshotMetadata, offset: UInt64, totalBytes: UInt64, checksum: UInt32,
                data: [UInt8], isLast: Bool) {
        self.term = term
        self.metadata = metadata
        self.offset = offset
        self.totalBytes = totalBytes
        self.checksum = checksum
        self.data = data
        self.isLast = isLast
    }
}

/// The answer to one InstallSnapshot chunk: the follower holds the bytes of the snapshot
/// at `snapshotIndex` before `nextOffset` (0 after it lost them, so the leader starts over).
/// A finished install is answered with an AppendEntriesResponse at the snapshot's index.
public struct InstallSnapshotResponse: Hashable, Sendable {
    public var term: Term
    public var snapshotIndex: LogIndex
    public var nextOffset: UInt64

    public init(term: Term, snapshotIndex: LogIndex, nextOffset: UInt64) {
        self.term = term
        self.snapshotIndex = snapshotIndex
        self.nextOffset = nextOffset
    }
}

/// One Raft message; one case per RPC.
public enum Message: Hashable, Sendable {
    case requestVote(RequestVote)
    case requestVoteResponse(RequestVoteResponse)
    case appendEntries(AppendEntries)
    case appendEntriesResponse(AppendEntriesResponse)
    case heartbeat(Heartbeat)
    case heartbeatResponse(HeartbeatResponse)
    case timeoutNow(TimeoutNow)
    case installSnapshot(InstallSnapshot)
    case installSnapshotResponse(InstallSnapshotResponse)

    /// The sender's term, which every Raft message carries (§5.1).
    public var term: Term {
        switch self {
        case .requestVote(let m): m.term
        case .requestVoteResponse(let m): m.term
        case .appendEntries(let m): m.term
        case .appendEntriesResponse(let m): m.term
        case .heartbeat(let m): m.term
        case .heartbeatResponse(let m): m.term
        case .timeoutNow(let m): m.term
        case .installSnapshot(let m): m.term
        case .installSnapshotResponse(let m): m.term
        }
    }

    /// True for the messages only a leader sends.
    public var isFromLeader: Bool {
        switch self {
        case .appendEntries, .heartbeat, .timeoutNow, .installSnapshot: true
        default: false
        }
    }
}

/// A message with its sender and addressee.
public struct Envelope: Hashable, Sendable {
    public var from: NodeID
    public var to: NodeID
    public var message: Message

    public init(from: NodeID, to: NodeID, message: Message) {
        self.from = from
        self.to = to
        self.message = message
    }
}
