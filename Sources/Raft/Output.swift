/// Everything one step of the core asks the driver to do, in this order:
/// 1. make `hardState` and `entries` durable (fsync when `mustSync`),
/// 2. send `messages`,
/// 3. apply `committed` entries, then act on `proposals` and `reads`.
public struct Output: Sendable {
    /// The new hard state, when it changed.
    public var hardState: HardState?
    /// Entries to append durably; the first one's index may be at or below the last stored
    /// index, in which case the stored entries from there on are replaced.
    public var entries: [Entry] = []
    /// True when the hard state's term or vote changed or entries were written: the
    /// driver must fsync before sending (a commit-only change need not be synced).
    public var mustSync: Bool = false
    /// A snapshot received from the leader: store it durably with the writes above (it
    /// replaces the stored log up to its index, and the whole log when the entry there has
    /// another term), then restore the state machine from it before applying `committed`.
    public var snapshot: Snapshot?
    /// The log's entries up to here were dropped (a snapshot covers them): the driver may
    /// discard its stored copies.
    public var compactedThrough: LogIndex?
    /// Messages to send, once the writes above are durable.
    public var messages: [Envelope] = []
    /// Entries newly known to be committed, in order, to apply to the state machine.
    public var committed: [Entry] = []
    /// What became of proposals (each reported once).
    public var proposals: [ProposalOutcome] = []
    /// Reads that may now be served, or that failed.
    public var reads: [ReadOutcome] = []
    /// Role changes and the like, for logs and metrics.
    public var events: [RaftEvent] = []

    public init() {}

    /// True when the step produced nothing to do.
    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && compactedThrough == nil && messages.isEmpty && committed.isEmpty
            && proposals.isEmpty && reads.isEmpty && events.isEmpty
    }
}

/// What became of a proposal.
public enum ProposalOutcome: Hashable, Sendable {
    /// The proposal is committed at `index`.
    case committed(ProposalID, index: LogIndex)
    /// The proposal was not (or will never be) committed.
    case failed(ProposalID, ProposalFailure)

    public var id: ProposalID {
        switch self {
        case .committed(let id, _), .failed(let id, _): id
        }
    }
}

/// Why a proposal failed; each case is definite (the command is not in the committed log).
public enum ProposalFailure: Hashable, Sendable {
    /// This server is not the leader; `leader` is the one it knows of, if any.
    case notLeader(leader: NodeID?)
    /// The entry was appended but another leader's entry was committed at its index.
    case overwritten(index: LogIndex)
    /// Too many proposals are waiting already.
    case tooManyPending
    /// Leadership is being handed to another server; retry shortly (with the new leader).
    case leaderTransferInProgress
    /// A membership change is still uncommitted (or this leader has not yet committed an
    /// entry of its term); retry once it is.
    case membershipChangeInProgress
    /// The membership change does not apply to the current membership.
    case invalidMembershipChange(String)
    /// A snapshot from another leader replaced this server's log before the entry at `index`
    /// was known committed or not: it may or may not have been applied.
    case outcomeUnknown(index: LogIndex)
}

/// What became of a linearizable read request.
public enum ReadOutcome: Hashable, Sendable {
    /// Safe to serve once the state machine has applied `index` (ReadIndex, thesis §6.4).
    case ready(ReadID, index: LogIndex)
    case failed(ReadID, ReadFailure)
}

/// Why a read could not be served here.
public enum ReadFailure: Hashable, Sendable {
    case notLeader(leader: NodeID?)
    case tooManyPending
}

/// Something that happened, for logs, metrics and tests. Never needed for correctness.
public enum RaftEvent: Hashable, Sendable {
    case becameFollower(term: Term, leader: NodeID?)
    case becamePreCandidate(term: Term)
    case becameCandidate(term: Term)
    case becameLeader(term: Term)
    /// A leader stepped down because it had not heard from a majority for an election timeout.
    case lostQuorum(term: Term)
    /// A leadership transfer to `target` started, or was given up after an election timeout.
    case transferStarted(target: NodeID)
    case transferAbandoned(target: NodeID)
    /// The log now holds a new membership (it takes effect when appended, thesis §4.1).
    case membershipChanged(Membership)
    /// The leader began sending the snapshot at `index` to `peer`, which is behind its log.
    case snapshotSendStarted(peer: NodeID, index: LogIndex)
    /// A snapshot from the leader was installed.
    case snapshotInstalled(index: LogIndex)
    /// The log was compacted through `index`.
    case compacted(through: LogIndex)
    /// This follower heard that its leader's connection closed and no longer trusts it.
    case leaderUnreachable(leader: NodeID, term: Term)
}
