/// The tunables of one Raft server. Time is counted in ticks; the driver decides how
/// long a tick is (nodes use 10 ms, so the defaults are H = 50 ms, T = 500 ms).
public struct RaftSettings: Sendable, Equatable {
    /// T: a follower that hears nothing for a randomized [T, 2T) ticks starts an election.
    public var electionTicks: Int = 50
    /// H: a leader sends heartbeats this often.
    public var heartbeatTicks: Int = 5
    /// The election timeout is drawn from [T, T + jitter); nil means T, the paper's [T, 2T).
    /// A narrower range shortens failover (the first survivor fires sooner) at the cost of
    /// more split votes (Raft paper §9.3, Figure 16).
    public var electionJitterTicks: Int? = nil
    /// A follower answers a heartbeat at least this often (and always when it carries a new
    /// read round or comes from a new leader); nil means T/4, at least H. Fewer answers cut an
    /// idle cluster's messages by a third while check-quorum still hears from every follower
    /// several times per election timeout.
    public var heartbeatAnswerTicks: Int? = nil
    /// Entries per AppendEntries: large enough to amortize a round trip, small enough to
    /// keep a message well under the transport's 1 MiB body limit with small commands.
    public var maxEntriesPerAppend: Int = 512
    /// Bytes per AppendEntries (at least one entry is always sent).
    public var maxBytesPerAppend: Int = 512 * 1024
    /// Unacknowledged appends per follower in replicate state: the pipelining window.
    public var maxInflightAppends: Int = 64
    /// Proposals appended but not yet resolved on this leader; beyond it proposals are
    /// refused (back pressure) instead of queueing without bound.
    public var maxPendingProposals: Int = 65_536
    /// Linearizable reads waiting for confirmation of leadership.
    public var maxPendingReads: Int = 4_096
    /// The driver snapshots the state machine once this many entries were applied since the
    /// last snapshot.
    public var snapshotThresholdEntries: Int = 10_000
    /// Entries kept in the log before a new snapshot's index, so a follower slightly behind
    /// still gets appends rather than a whole snapshot.
    public var compactionTrailingEntries: Int = 1_000
    /// Bytes per InstallSnapshot chunk (well under the transport's 1 MiB body limit).
    public var snapshotChunkBytes: Int = 256 * 1024
    /// Unacknowledged snapshot chunks per follower.
    public var maxInflightSnapshotChunks: Int = 4
    /// The largest snapshot a follower accepts.
    public var maxSnapshotBytes: Int = 512 * 1024 * 1024
    /// Pre-vote (thesis §9.6): a server first asks whether it could win before raising its term.
    public var isPreVoteEnabled: Bool = true
    /// Check-quorum (thesis §6.2): a leader that has not heard from a majority for T steps down,
    /// and followers that heard from a leader within T refuse to vote.
    public var isCheckQuorumEnabled: Bool = true
    /// Allows one tick of jitter (every server times out after exactly T): split votes may
    /// repeat for ever. Only for experiments that show why timeouts are randomized.
    public var allowsFixedElectionTimeout: Bool = false
    /// A cluster's first election without waiting an election timeout: while a server has
    /// never had a term, an entry or a snapshot, and knows no leader, the voter with the
    /// lowest ID campaigns after one tick and again every heartbeat interval (the others may
    /// not be up yet), for one election timeout at most; every other voter keeps its
    /// randomized timeout, so if that one is down they elect as usual. Hearing a higher term
    /// (a cluster that already ran) or a leader ends it. Elections are safe at any time; this only changes when the first one starts.
    public var isFastFirstElectionEnabled: Bool = false

    public init() {}

    /// Settings with the given timing and defaults for the rest.
    public init(electionTicks: Int, heartbeatTicks: Int) {
        self.electionTicks = electionTicks
        self.heartbeatTicks = heartbeatTicks
    }

    /// Refuses settings under which Raft cannot work.
    public func validate() throws(RaftSettingsError) {
        guard heartbeatTicks >= 1 else { throw RaftSettingsError("heartbeatTicks must be at least 1, got \(heartbeatTicks)") }
        guard electionTicks > heartbeatTicks else {
            throw RaftSettingsError("electionTicks (\(electionTicks)) must exceed heartbeatTicks (\(heartbeatTicks))")
        }
        if let jitter = electionJitterTicks, jitter < 2, !(allowsFixedElectionTimeout && jitter == 1) {
            // One tick of jitter is no randomness at all: every server times out together and
            // split votes can repeat for ever.
            throw RaftSettingsError("electionJitterTicks must be at least 2 (randomized timeouts avoid endless split votes), got \(jitter)")
        }
        guard maxEntriesPerAppend >= 1, maxBytesPerAppend >= 1, maxInflightAppends >= 1,
              maxPendingProposals >= 1, maxPendingReads >= 1, snapshotThresholdEntries >= 1,
              compactionTrailingEntries >= 0, snapshotChunkBytes >= 1, maxInflightSnapshotChunks >= 1,
              maxSnapshotBytes >= 1
        else { throw RaftSettingsError("every limit must be at least 1") }
    }
}

/// Settings that cannot work, with the reason.
public struct RaftSettingsError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
