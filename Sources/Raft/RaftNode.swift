/// One Raft server's consensus state machine: pure, deterministic and synchronous.
///
/// Feed it inputs with `step(_:)`; it returns an `Output` listing what must be made
/// durable, sent and applied, in that order. It performs no I/O, reads no clock and
/// keeps no global state: time enters as `.tick`, randomness from the seed given at
/// creation. The same inputs in the same order always give the same outputs.
public struct RaftNode: Sendable {
    /// What one step is asked to do.
    public enum Input: Sendable {
        /// One unit of time passed.
        case tick
        /// A message arrived from another server.
        case receive(Envelope)
        /// Commands to append to the log, as one batch.
        case propose([Proposal])
        /// A linearizable read is requested (answered with a ReadIndex).
        case read(ReadID)
        /// Hand leadership to `target` (thesis §3.10); ignored unless leading.
        case transferLeadership(to: NodeID)
        /// Change the membership by one server, through the log (thesis §4.1).
        case changeMembership(ProposalID, MembershipChange)
        /// The driver durably stored a snapshot of the state machine at an applied index:
        /// keep it for followers that fall behind, and compact the log up to it.
        case snapshotTaken(Snapshot)
        /// The transport saw the connection `peer` sends on close: its process most likely
        /// died (kill -9 and crashes close every socket at once; pauses and partitions close
        /// nothing). See `peerUnreachable(_:)`.
        case peerUnreachable(NodeID)
    }

    /// A command to replicate, with the caller's identifier for its outcome.
    public struct Proposal: Sendable, Hashable {
        public var id: ProposalID
        public var data: [UInt8]
        public init(id: ProposalID, data: [UInt8]) {
            self.id = id
            self.data = data
        }
    }

    /// The role a server plays (§5.1, plus the pre-candidate of thesis §9.6).
    public enum Role: String, Sendable {
        case follower, preCandidate, candidate, leader
    }

    enum RoleState: Sendable {
        case follower
        case preCandidate(votes: [NodeID: Bool])
        case candidate(votes: [NodeID: Bool])
        case leader
    }

    /// What only a leader keeps. Stored beside `roleState` rather than inside its case so
    /// that the hot path mutates it in place; `checkInvariants` ties the two together.
    struct LeaderState: Sendable {
        var progress: [NodeID: Progress]
        var readContext: UInt64 = 0
        var isReadHeartbeatDue = false
        var pendingReads: [(id: ReadID, index: LogIndex, context: UInt64)] = []
        var readsAwaitingTermCommit: [ReadID] = []
        /// The server leadership is being handed to, and ticks since the transfer began.
        var transferTarget: NodeID?
        var transferElapsed = 0
        /// Snapshots being sent, by follower; each keeps the snapshot it started with.
        var snapshotTransfers: [NodeID: SnapshotTransfer] = [:]
    }

    /// One follower's snapshot transfer: the snapshot is pinned until the follower has it,
    /// however many newer ones are taken meanwhile (so a slow transfer is never restarted
    /// with a newer snapshot, the loop of etcd #4055 and hashicorp/raft #212).
    struct SnapshotTransfer: Sendable {
        var snapshot: Snapshot
        /// The snapshot's CRC32C, computed once (not per chunk: that cost the leader a pass
        /// over the whole snapshot for every answer).
        let checksum: UInt32
        /// The next byte to send, and the first byte the follower has not confirmed.
        var nextOffset = 0
        var acknowledgedOffset = 0
        var isLastSent = false
        /// Ticks since the follower last confirmed progress.
        var idleTicks = 0
        /// The acknowledged offset the window was last resent from on a repeated answer
        /// (fast retransmit: once per offset, so that repeats cannot multiply the traffic).
        var fastResentFrom: Int?

        init(snapshot: Snapshot) {
            self.snapshot = snapshot
            self.checksum = snapshot.checksum
        }
    }

    /// A snapshot arriving in chunks.
    struct IncomingSnapshot: Sendable {
        var metadata: SnapshotMetadata
        var totalBytes: UInt64
        var checksum: UInt32
        var data: [UInt8]
    }

    /// This server's ID.
    public let id: NodeID
    /// The servers of the cluster: the latest membership in the log, committed or not.
    public var membership: Membership { configurations[configurations.count - 1].membership }
    /// The latest snapshot taken here or installed from the leader.
    public internal(set) var snapshot: Snapshot?
    /// Every membership the log holds, oldest first; the first is the one in force at
    /// `log.snapshotIndex` (from the snapshot, or the initial one).
    var configurations: [(index: LogIndex, membership: Membership)]
    var incomingSnapshot: IncomingSnapshot?
    public let settings: RaftSettings
    /// The latest term this server has seen (Figure 2, persistent).
    public internal(set) var currentTerm: Term
    /// The candidate this server voted for in `currentTerm` (Figure 2, persistent).
    public internal(set) var votedFor: NodeID?
    /// This server's log (its durable copy is the driver's to keep).
    public internal(set) var log: RaftLog
    /// The highest index known to be committed.
    public internal(set) var commitIndex: LogIndex
    /// The leader this server currently follows (itself when leading), if known.
    public internal(set) var leaderID: NodeID?

    var roleState: RoleState = .follower
    var leaderState: LeaderState?
    var random: SplitMix64
    var electionElapsed = 0
    var heartbeatElapsed = 0
    /// Follower: ticks since it last answered a heartbeat, and the read round it answered.
    var ticksSinceHeartbeatAnswer = 0
    var answeredReadContext: UInt64 = 0
    var answeredLeader: NodeID?
    var randomizedElectionTimeout = 0
    /// True until this server, started with nothing (no term, entry or snapshot), learns of
    /// a leader or of a term it has not reached (`isFastFirstElectionEnabled`).
    public internal(set) var isFreshStart = false
    /// Ticks left of eager first campaigns (one election timeout).
    var freshTicksLeft = 0
    /// Ticks left in which this follower, having heard its leader's connection close,
    /// retries its campaign within a heartbeat interval rather than an election timeout.
    var leaderLostTicks = 0
    /// Entries up to here have been handed out as committed.
    var emittedCommitIndex: LogIndex
    /// The lowest log index changed during the current step, to hand out for persisting.
    var firstChangedIndex: LogIndex?
    /// Proposals appended by this server as leader and not yet resolved, in index order.
    var pendingProposals: [(id: ProposalID, index: LogIndex, term: Term)] = []
    var pendingProposalsHead = 0
    var output = Output()

    /// Creates a server, restoring the durable state it had (empty for a new server).
    /// `membership` is the cluster's initial membership; a snapshot's, and membership
    /// entries in the log, take precedence over it.
    public init(id: NodeID, membership: Membership, settings: RaftSettings = RaftSettings(),
                randomSeed: UInt64, hardState: HardState = HardState(), log: RaftLog = RaftLog(),
                snapshot: Snapshot? = nil)
    {
        precondition((try? settings.validate()) != nil, "invalid settings: \(settings)")
        if let snapshot {
            precondition(log.snapshotIndex <= snapshot.metadata.index && log.matches(index: snapshot.metadata.index, term: snapshot.metadata.term),
                         "log (\(log.snapshotIndex)...\(log.lastIndex)) does not continue the snapshot at \(snapshot.metadata.index)")
        } else {
            precondition(log.snapshotIndex == 0, "a log compacted through \(log.snapshotIndex) needs its snapshot")
        }
        self.id = id
        self.snapshot = snapshot
        self.configurations = [(log.snapshotIndex, snapshot?.metadata.membership ?? membership)]
        self.settings = settings
        self.random = SplitMix64(seed: randomSeed ^ (id.rawValue &* 0x9E37_79B9_7F4A_7C15))
        self.currentTerm = hardState.currentTerm
        self.votedFor = hardState.votedFor
        self.log = log
        // Everything a snapshot covers is applied already. The stored commit index is a hint:
        // never beyond the entries actually stored.
        self.emittedCommitIndex = max(log.snapshotIndex, snapshot?.metadata.index ?? 0)
        self.commitIndex = max(emittedCommitIndex, min(hardState.commitIndex, log.lastIndex))
        updateConfigurations(from: log.firstIndex)
        isFreshStart = settings.isFastFirstElectionEnabled && hardState.currentTerm == 0 && log.lastIndex == 0 && snapshot == nil
        freshTicksLeft = settings.electionTicks
        resetElectionTimer()
        if isFirstCandidate { randomizedElectionTimeout = 1 }
        checkInvariants()
    }

    /// The role this server plays now.
    public var role: Role {
        switch roleState {
        case .follower: .follower
        case .preCandidate: .preCandidate
        case .candidate: .candidate
        case .leader: .leader
        }
    }

    /// True while this server leads.
    public var isLeader: Bool { leaderState != nil }

    /// The server leadership is being handed to, while a transfer is under way.
    public var leaderTransferTarget: NodeID? { leaderState?.transferTarget }

    /// The durable part of this server's state.
    public var hardState: HardState {
        HardState(currentTerm: currentTerm, votedFor: votedFor, commitIndex: commitIndex)
    }

    /// What the leader knows of `peer`'s log; nil unless leading.
    public func progress(of peer: NodeID) -> Progress? { leaderState?.progress[peer] }

    /// Ticks until this server's next timer event (a leader's heartbeat or quorum check, or
    /// another server's election timeout) if no message arrives first. A driver may sleep
    /// that long and then deliver the ticks that passed, instead of waking for every tick.
    public var ticksUntilNextTimerEvent: Int {
        if leaderState != nil {
            return max(1, min(settings.heartbeatTicks - heartbeatElapsed, settings.electionTicks - electionElapsed))
        }
        guard isPromotable else { return settings.electionTicks }
        return max(1, randomizedElectionTimeout - electionElapsed)
    }

    /// Proposals appended on this server and not yet resolved.
    public var pendingProposalCount: Int { pendingProposals.count - pendingProposalsHead }

    /// Advances the state machine by one input and returns what the driver must do.
    public mutating func step(_ input: Input) -> Output {
        let before = hardState
        switch input {
        case .tick: tick()
        case .receive(let envelope): receive(envelope)
        case .propose(let proposals): propose(proposals)
        case .read(let readID): read(readID)
        case .transferLeadership(let target): transferLeadership(to: target)
        case .changeMembership(let id, let change): changeMembership(id, change)
        case .snapshotTaken(let snapshot): snapshotTaken(snapshot)
        case .peerUnreachable(let peer): peerUnreachable(peer)
        }
        return finishStep(before: before)
    }

    // MARK: - Step plumbing

    private mutating func finishStep(before: HardState) -> Output {
        if leaderState?.isReadHeartbeatDue == true {
            leaderState?.isReadHeartbeatDue = false
            broadcastHeartbeat()
        }
        if let first = firstChangedIndex {
            if first <= log.lastIndex { output.entries = Array(log.entries(in: first...log.lastIndex)) }
            firstChangedIndex = nil
        }
        let after = hardState
        if after != before { output.hardState = after }
        output.mustSync = !output.entries.isEmpty || output.snapshot != nil
            || after.currentTerm != before.currentTerm || after.votedFor != before.votedFor
        emitCommitted()
        checkInvariants()
        defer { output = Output() }
        return output
    }

    /// Hands out newly committed entries and resolves the proposals they decide.
    private mutating func emitCommitted() {
        guard commitIndex > emittedCommitIndex else { return }
        output.committed.append(contentsOf: log.entries(in: (emittedCommitIndex + 1)...commitIndex))
        emittedCommitIndex = commitIndex
        while pendingProposalsHead < pendingProposals.count,
              pendingProposals[pendingProposalsHead].index <= commitIndex
        {
            let pending = pendingProposals[pendingProposalsHead]
            pendingProposalsHead += 1
            if log.term(at: pending.index) == pending.term {
                output.proposals.append(.committed(pending.id, index: pending.index))
            } else {
                output.proposals.append(.failed(pending.id, .overwritten(index: pending.index)))
            }
        }
        if pendingProposalsHead > 1024, pendingProposalsHead * 2 > pendingProposals.count {
            pendingProposals.removeFirst(pendingProposalsHead)
            pendingProposalsHead = 0
        }
    }

    mutating func send(_ message: Message, to peer: NodeID) {
        output.messages.append(Envelope(from: id, to: peer, message: message))
    }

    mutating func noteLogChanged(from index: LogIndex) {
        firstChangedIndex = min(firstChangedIndex ?? index, index)
        updateConfigurations(from: index)
    }

    mutating func resetElectionTimer() {
        electionElapsed = 0
        randomizedElectionTimeout = settings.electionTicks + random.next(below: settings.electionJitterTicks ?? settings.electionTicks)
        if isFirstCandidate {
            randomizedElectionTimeout = settings.heartbeatTicks
        } else if leaderLostTicks > 0, leaderID == nil {
            // Two survivors may ask each other before either heard of the close, and both be
            // refused: they retry within a heartbeat interval, not an election timeout.
            randomizedElectionTimeout = 1 + random.next(below: max(1, settings.heartbeatTicks))
        }
    }

    /// The voter that starts a fresh cluster's first election at once.
    var isFirstCandidate: Bool { isFreshStart && leaderID == nil && membership.voters.min() == id }

    /// True when this server may start elections: a voter, or a voter whose removal is not
    /// committed yet. The second may have to lead once more to commit its own removal: the
    /// remaining voters may all lack the entry and, lacking it, never win their votes.
    var isPromotable: Bool {
        if membership.voters.contains(id) { return true }
        guard configurations.count > 1, membershipIndex > commitIndex else { return false }
        return configurations[configurations.count - 2].membership.voters.contains(id)
    }

    // MARK: - Ticks

    private mutating func tick() {
        guard leaderState != nil else {
            if leaderLostTicks > 0 { leaderLostTicks -= 1 }
            if isFreshStart {
                // Eager campaigns last one election timeout: a server that still hears nobody
                // (the others down, or its answers cut) falls back to its ordinary timeout.
                freshTicksLeft -= 1
                if freshTicksLeft < 0 { isFreshStart = false }
            }
            electionElapsed += 1
            ticksSinceHeartbeatAnswer += 1
            if isPromotable, electionElapsed >= randomizedElectionTimeout {
                campaign(isPreVote: settings.isPreVoteEnabled)
            }
            return
        }
        heartbeatElapsed += 1
        electionElapsed += 1
        tickSnapshotTransfers()
        if let target = leaderState?.transferTarget {
            leaderState?.transferElapsed += 1
            if (leaderState?.transferElapsed ?? 0) >= settings.electionTicks {
                // The target did not take over within an election timeout: keep leading.
                leaderState?.transferTarget = nil
                output.events.append(.transferAbandoned(target: target))
            }
        }
        if electionElapsed >= settings.electionTicks {
            electionElapsed = 0
            if settings.isCheckQuorumEnabled, !checkQuorum() { return }
        }
        if heartbeatElapsed >= settings.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }

    /// Thesis §6.2: a leader that has not heard from a majority within an election timeout
    /// steps down, so a minority leader cannot linger. Returns false when it stepped down.
    private mutating func checkQuorum() -> Bool {
        guard var leader = leaderState else { return false }
        var active = 0
        for voter in membership.voters where voter == id || leader.progress[voter]?.isRecentlyActive == true {
            active += 1
        }
        for peer in leader.progress.keys where peer != id { leader.progress[peer]?.isRecentlyActive = false }
        leaderState = leader
        if active < membership.quorum {
            output.events.append(.lostQuorum(term: currentTerm))
            becomeFollower(term: currentTerm, leader: nil)
            return false
        }
        return true
    }

    // MARK: - Receiving

    private mutating func receive(_ envelope: Envelope) {
        let message = envelope.message
        let from = envelope.from
        // Misaddressed messages are ignored (ignoring is always safe). Messages from servers
        // not in our membership are not: a leader may know of members this server has not
        // heard of yet, and only voters' votes are ever counted.
        guard envelope.to == id, from != id else { return }

        if message.term > currentTerm {
            // Others have run a term this server has not: not a first start (a granted
            // pre-vote only carries the term this server would campaign in).
            if case .requestVoteResponse(let response) = message, response.isPreVote, response.isGranted {} else { isFreshStart = false }
            switch message {
            case .requestVote(let request):
                // Thesis §4.2.3 / §9.6: a server that heard from a live leader within the
                // minimum election timeout neither votes nor raises its term.
                let isInLease = settings.isCheckQuorumEnabled && leaderID != nil
                    && electionElapsed < settings.electionTicks
                if isInLease && !request.isLeaderTransfer { return }
                if !request.isPreVote { becomeFollower(term: message.term, leader: nil) }
            case .requestVoteResponse(let response) where response.isPreVote && response.isGranted:
                break  // A granted pre-vote carries the term we would campaign in; ours is unchanged.
            default:
                becomeFollower(term: message.term, leader: message.isFromLeader ? from : nil)
            }
        } else if message.term < currentTerm {
            answerStaleMessage(message, from: from)
            return
        }

        switch message {
        case .requestVote(let request): handleRequestVote(request, from: from)
        case .requestVoteResponse(let response): handleVoteResponse(response, from: from)
        case .appendEntries(let request): handleAppendEntries(request, from: from)
        case .appendEntriesResponse(let response): handleAppendEntriesResponse(response, from: from)
        case .heartbeat(let heartbeat): handleHeartbeat(heartbeat, from: from)
        case .heartbeatResponse(let response): handleHeartbeatResponse(response, from: from)
        case .timeoutNow: handleTimeoutNow(from: from)
        case .installSnapshot(let request): handleInstallSnapshot(request, from: from)
        case .installSnapshotResponse(let response): handleInstallSnapshotResponse(response, from: from)
        }
    }

    /// §5.1: a stale request is rejected. A stale leader is told our term so it steps down
    /// (with pre-vote and check-quorum it might otherwise never hear a higher term), and a
    /// stale pre-candidate is told our term so it can catch up.
    private mutating func answerStaleMessage(_ message: Message, from: NodeID) {
        switch message {
        case .appendEntries, .heartbeat, .installSnapshot:
            send(.appendEntriesResponse(AppendEntriesResponse(term: currentTerm, isSuccess: false)), to: from)
        case .requestVote(let request) where request.isPreVote:
            send(.requestVoteResponse(RequestVoteResponse(term: currentTerm, isGranted: false, isPreVote: true)), to: from)
        default:
            break
        }
    }

    /// Moves to follower in `term` (raising the term clears the vote, §5.1).
    mutating func becomeFollower(term: Term, leader: NodeID?) {
        precondition(term >= currentTerm, "becomeFollower(\(term)) below current term \(currentTerm)")
        if term > currentTerm {
            currentTerm = term
            votedFor = nil
        }
        let wasFollowing = role == .follower && leaderID == leader
        if leaderState != nil { stepDownAsLeader(newLeader: leader) }
        roleState = .follower
        leaderID = leader
        if leader != nil {
            isFreshStart = false
            leaderLostTicks = 0
        }
        resetElectionTimer()
        if !wasFollowing { output.events.append(.becameFollower(term: currentTerm, leader: leader)) }
    }
}
