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
        hardState == nil && entries.isEmpty && messages.isEmpty && committed.isEmpty
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
}
