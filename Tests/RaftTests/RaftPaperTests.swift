import Raft
import Testing

/// One test per claim of the Raft paper's §5 (after etcd's raft_paper_test), run with
/// pre-vote off where the claim is about the plain election of §5.2.
@Suite struct RaftPaperTests {
    private func envelope(_ from: NodeID, _ to: NodeID, _ message: Message) -> RaftNode.Input {
        .receive(Envelope(from: from, to: to, message: message))
    }

    // §5.1: "If one server's current term is smaller than the other's, then it updates its
    // current term to the larger value. If a candidate or leader discovers that its term is
    // out of date, it immediately reverts to follower state."
    @Test(arguments: [RaftNode.Role.follower, .candidate, .leader])
    func serverAdoptsHigherTermAndBecomesFollower(role: RaftNode.Role) {
        var node = makeNode(peers: 3, settings: plainSettings)
        if role != .follower { for _ in 0..<20 where node.role == .follower { _ = node.step(.tick) } }
        if role == .leader {
            _ = node.step(envelope(2, 1, .requestVoteResponse(RequestVoteResponse(term: node.currentTerm, isGranted: true, isPreVote: false))))
        }
        #expect(node.role == role)
        let output = node.step(envelope(2, 1, .appendEntries(AppendEntries(term: 9, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0))))
        #expect(node.role == .follower)
        #expect(node.currentTerm == 9)
        #expect(node.leaderID == 2)
        #expect(output.hardState?.currentTerm == 9 && output.mustSync)
    }

    // §5.1: "If a server receives a request with a stale term number, it rejects the request."
    @Test func staleTermRequestIsRejected() {
        var node = makeNode(term: 5)
        let output = node.step(envelope(2, 1, .appendEntries(AppendEntries(term: 4, prevLogIndex: 0, prevLogTerm: 0, entries: entries(terms: [4]), leaderCommit: 1))))
        #expect(node.log.lastIndex == 0)
        #expect(node.currentTerm == 5)
        #expect(output.appendResponses.map(\.isSuccess) == [false])
        #expect(output.appendResponses.first?.term == 5)
    }

    // §5.2: "When servers start up, they begin as followers."
    @Test func serversStartAsFollowers() {
        let node = makeNode()
        #expect(node.role == .follower && node.currentTerm == 0 && node.leaderID == nil)
    }

    // §5.2: "Leaders send periodic heartbeats to all followers."
    @Test func leaderSendsHeartbeatToEveryFollowerEachInterval() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        #expect(cluster.leader == 1)
        cluster.inFlight.removeAll()
        let output = cluster.nodes[1]!.step(.tick)
        #expect(Set(output.heartbeats.map(\.to)) == [2, 3])
        #expect(output.heartbeats.allSatisfy { $0.message.term == cluster.node(1).currentTerm })
    }

    // §5.2: "To begin an election, a follower increments its current term and transitions
    // to candidate state. It then votes for itself and issues RequestVote RPCs in parallel."
    @Test func followerTimesOutAndStartsElection() {
        var node = makeNode(peers: 3, term: 1, settings: plainSettings)
        var output = Output()
        for _ in 0..<20 where node.role == .follower { output = node.step(.tick) }
        #expect(node.role == .candidate)
        #expect(node.currentTerm == 2 && node.votedFor == 1)
        #expect(Set(output.voteRequests.map(\.to)) == [2, 3])
        #expect(output.voteRequests.allSatisfy { $0.message.term == 2 && !$0.message.isPreVote })
        #expect(output.hardState == HardState(currentTerm: 2, votedFor: 1, commitIndex: 0) && output.mustSync)
    }

    // §5.2: "If many followers become candidates at the same time, votes could be split...
    // each candidate will time out and start a new election by incrementing its term."
    @Test func candidateStartsNewElectionAfterTimeout() {
        var node = makeNode(peers: 3, settings: plainSettings)
        for _ in 0..<20 where node.role == .follower { _ = node.step(.tick) }
        let firstTerm = node.currentTerm
        for _ in 0..<20 where node.currentTerm == firstTerm { _ = node.step(.tick) }
        #expect(node.role == .candidate && node.currentTerm == firstTerm.next)
    }

    // §5.2: "A candidate wins an election if it receives votes from a majority of the servers
    // in the full cluster for the same term."
    @Test(arguments: [
        (3, [2: true], RaftNode.Role.leader), (3, [2: false, 3: false], .follower), (3, [:], .candidate),
        (5, [2: true], .candidate), (5, [2: true, 3: true], .leader), (5, [2: false, 3: false, 4: false], .follower),
        (1, [:], .leader),
    ] as [(Int, [UInt64: Bool], RaftNode.Role)])
    func candidateWinsOnlyWithMajority(size: Int, votes: [UInt64: Bool], expected: RaftNode.Role) {
        var node = makeNode(peers: size, settings: plainSettings)
        for _ in 0..<20 where node.role == .follower { _ = node.step(.tick) }
        for (voter, granted) in votes.sorted(by: { $0.key < $1.key }) {
            _ = node.step(envelope(NodeID(voter), 1, .requestVoteResponse(RequestVoteResponse(term: node.currentTerm, isGranted: granted, isPreVote: false))))
        }
        #expect(node.role == expected)
    }

    // §5.2: "Each server will vote for at most one candidate in a given term, on a
    // first-come-first-served basis."
    @Test func followerVotesAtMostOncePerTerm() {
        var node = makeNode(peers: 3, term: 1)
        let first = node.step(envelope(2, 1, .requestVote(RequestVote(term: 2, lastLogIndex: 0, lastLogTerm: 0, isPreVote: false))))
        let second = node.step(envelope(3, 1, .requestVote(RequestVote(term: 2, lastLogIndex: 0, lastLogTerm: 0, isPreVote: false))))
        let again = node.step(envelope(2, 1, .requestVote(RequestVote(term: 2, lastLogIndex: 0, lastLogTerm: 0, isPreVote: false))))
        #expect(first.voteResponses.map(\.isGranted) == [true])
        #expect(first.mustSync && first.hardState?.votedFor == 2)
        #expect(second.voteResponses.map(\.isGranted) == [false])
        #expect(again.voteResponses.map(\.isGranted) == [true])
        #expect(node.votedFor == 2)
    }

    // §5.2: "If the leader's term is at least as large as the candidate's current term, then
    // the candidate recognizes the leader as legitimate and returns to follower state."
    @Test func candidateStepsDownForLeaderOfSameTerm() {
        var node = makeNode(peers: 3, settings: plainSettings)
        for _ in 0..<20 where node.role == .follower { _ = node.step(.tick) }
        let term = node.currentTerm
        _ = node.step(envelope(2, 1, .heartbeat(Heartbeat(term: term, leaderCommit: 0, readContext: 0))))
        #expect(node.role == .follower && node.leaderID == 2 && node.currentTerm == term)
    }

    // §5.2: "Raft uses randomized election timeouts ... chosen randomly from a fixed interval."
    // Here [T, 2T): never before T, never at or after 2T, and not all the same.
    @Test func electionTimeoutIsRandomizedWithinTToTwoT() {
        var timeouts = Set<Int>()
        for seed in 0..<200 {
            var node = RaftNode(id: 1, membership: Membership(voters: [1, 2, 3]), settings: plainSettings, randomSeed: UInt64(seed))
            var ticks = 0
            while node.role == .follower {
                _ = node.step(.tick)
                ticks += 1
            }
            timeouts.insert(ticks)
        }
        #expect(timeouts.min()! >= 10 && timeouts.max()! < 20)
        #expect(timeouts.count >= 8)
    }

    // §5.3: "The leader appends the command to its log as a new entry, then issues
    // AppendEntries RPCs in parallel to each of the other servers."
    @Test func leaderAppendsProposalAndSendsItToEveryFollower() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.tickAll()
        let before = cluster.node(1).log.lastIndex
        let output = cluster.nodes[1]!.step(.propose([RaftNode.Proposal(id: 1, data: Array("x".utf8))]))
        #expect(cluster.node(1).log.lastIndex == before + 1)
        #expect(output.entries.map(\.index) == [before + 1] && output.mustSync)
        #expect(Set(output.appendEntries.map(\.to)) == [2, 3])
        #expect(output.appendEntries.allSatisfy { $0.message.entries.map(\.data) == [Array("x".utf8)] && $0.message.prevLogIndex == before })
    }

    // §5.3: "A log entry is committed once the leader that created the entry has replicated
    // it on a majority of the servers", and the leader answers the client then.
    @Test func leaderCommitsOnceMajorityHasEntry() {
        var cluster = ScriptedCluster(size: 5)
        cluster.elect(1)
        cluster.tickAll()
        for id: NodeID in [3, 4, 5] { cluster.cut(1, id) }
        cluster.propose(1, ["a"])
        cluster.deliverAll()
        let index = cluster.node(1).log.lastIndex
        #expect(cluster.node(1).commitIndex < index)
        #expect(cluster.proposalOutcomes.isEmpty)
        cluster.heal()
        cluster.tickAll()
        #expect(cluster.node(1).commitIndex == index)
        #expect(cluster.proposalOutcomes == [.committed(1, index: index)])
    }

    // §5.3: "This also commits all preceding entries in the leader's log."
    @Test func committingAnEntryCommitsEveryPrecedingOne() {
        var node = makeNode(peers: 3, term: 2, logTerms: [1, 1, 2], settings: plainSettings)
        for _ in 0..<20 where node.role == .follower { _ = node.step(.tick) }
        _ = node.step(envelope(2, 1, .requestVoteResponse(RequestVoteResponse(term: 3, isGranted: true, isPreVote: false))))
        #expect(node.isLeader)
        let output = node.step(envelope(2, 1, .appendEntriesResponse(AppendEntriesResponse(term: 3, isSuccess: true, matchIndex: 4))))
        #expect(node.commitIndex == 4)
        #expect(output.committed.map(\.index) == [1, 2, 3, 4])
    }

    // §5.3: "Once a follower learns that a log entry is committed, it applies the entry."
    @Test func followerCommitsWhatLeaderCommitted() {
        var node = makeNode(peers: 3, term: 1)
        let output = node.step(envelope(2, 1, .appendEntries(AppendEntries(term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: entries(terms: [1, 1, 1]), leaderCommit: 2))))
        #expect(node.commitIndex == 2)
        #expect(output.committed.map(\.index) == [1, 2])
        // Never beyond the entries this message proved to match (§5.3).
        var other = makeNode(peers: 3, term: 1, logTerms: [1, 1, 1, 1])
        _ = other.step(envelope(2, 1, .appendEntries(AppendEntries(term: 1, prevLogIndex: 1, prevLogTerm: 1, entries: [], leaderCommit: 4))))
        #expect(other.commitIndex == 1)
    }

    // §5.3: "If the follower does not find an entry in its log with the same index and term,
    // then it refuses the new entries."
    @Test(arguments: [
        (0 as UInt64, 0 as UInt64, true), (2, 2, true), (3, 2, false), (2, 1, false), (4, 2, false),
    ])
    func followerChecksPreviousEntryBeforeAppending(prevIndex: UInt64, prevTerm: UInt64, accepted: Bool) {
        var node = makeNode(peers: 3, term: 2, logTerms: [1, 2])
        let output = node.step(envelope(2, 1, .appendEntries(AppendEntries(term: 2, prevLogIndex: LogIndex(prevIndex), prevLogTerm: Term(prevTerm), entries: [], leaderCommit: 0))))
        #expect(output.appendResponses.map(\.isSuccess) == [accepted])
        if !accepted { #expect(output.appendResponses.first?.rejectedIndex == LogIndex(prevIndex)) }
    }

    // §5.3: "If an existing entry conflicts with a new one (same index but different terms),
    // delete the existing entry and all that follow it; append any new entries."
    @Test func followerReplacesConflictingSuffix() {
        var node = makeNode(peers: 3, term: 3, logTerms: [1, 2, 2, 2])
        let output = node.step(envelope(2, 1, .appendEntries(AppendEntries(term: 3, prevLogIndex: 2, prevLogTerm: 2, entries: entries(terms: [3], startingAt: 3), leaderCommit: 0))))
        #expect(node.log.entries.map(\.term) == [1, 2, 3])
        #expect(output.entries.map(\.index) == [3])
        // Entries it already has are kept, and a stale, shorter message truncates nothing.
        _ = node.step(envelope(2, 1, .appendEntries(AppendEntries(term: 3, prevLogIndex: 1, prevLogTerm: 1, entries: entries(terms: [2], startingAt: 2), leaderCommit: 0))))
        #expect(node.log.entries.map(\.term) == [1, 2, 3])
    }

    // §5.3, Figure 7: a new leader brings every kind of divergent follower into line.
    @Test(arguments: [
        [1, 1, 1, 4, 4, 5, 5, 6, 6],                     // (a) missing entries
        [1, 1, 1, 4],                                    // (b) missing many
        [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],               // (c) an extra uncommitted entry
        [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],            // (d) extra entries of a later term
        [1, 1, 1, 4, 4, 4, 4],                           // (e) missing and extra
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],               // (f) extra entries of old terms
    ] as [[UInt64]])
    func newLeaderMakesFollowerLogMatch(followerTerms: [UInt64]) {
        let leaderTerms: [UInt64] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
        var settings = ScriptedCluster.settings
        settings.isPreVoteEnabled = false
        let membership = Membership(voters: [1, 2, 3])
        var cluster = ScriptedCluster(size: 3, settings: settings)
        cluster.nodes[1] = RaftNode(id: 1, membership: membership, settings: settings, randomSeed: 1,
                                    hardState: HardState(currentTerm: 8), log: RaftLog(entries: entries(terms: leaderTerms)))
        cluster.nodes[2] = RaftNode(id: 2, membership: membership, settings: settings, randomSeed: 2,
                                    hardState: HardState(currentTerm: 8), log: RaftLog(entries: entries(terms: followerTerms)))
        cluster.nodes[3] = RaftNode(id: 3, membership: membership, settings: settings, randomSeed: 3,
                                    hardState: HardState(currentTerm: 8), log: RaftLog(entries: entries(terms: leaderTerms)))
        cluster.elect(1)
        #expect(cluster.leader == 1)
        cluster.tickAll(times: 3)
        #expect(cluster.node(2).log.entries.map(\.term) == cluster.node(1).log.entries.map(\.term))
        #expect(cluster.node(2).commitIndex == cluster.node(1).log.lastIndex)
    }

    // §5.4.1: "the RPC includes information about the candidate's log, and the voter denies
    // its vote if its own log is more up-to-date": last term first, then length.
    @Test(arguments: [
        (2 as UInt64, 3 as UInt64, true),   // higher last term, shorter log: up to date
        (3, 2, true), (4, 2, true),          // same last term, as long or longer
        (2, 2, false),                       // same last term, shorter
        (9, 1, false),                       // longer but lower last term: liferaft's bug
    ])
    func voterRefusesCandidateWithLessUpToDateLog(lastIndex: UInt64, lastTerm: UInt64, granted: Bool) {
        var node = makeNode(peers: 3, term: 3, logTerms: [1, 2, 2])
        let output = node.step(envelope(2, 1, .requestVote(RequestVote(term: 4, lastLogIndex: LogIndex(lastIndex), lastLogTerm: Term(lastTerm), isPreVote: false))))
        #expect(output.voteResponses.map(\.isGranted) == [granted])
        #expect(node.currentTerm == 4)
    }

    // §5.4.2, Figure 8: "Raft never commits log entries from previous terms by counting
    // replicas. Only log entries from the leader's current term are committed by counting."
    @Test func leaderCommitsOldTermEntriesOnlyThroughAnEntryOfItsOwnTerm() {
        var node = makeNode(id: 1, peers: 3, term: 2, logTerms: [1, 2], settings: plainSettings)
        for _ in 0..<20 where node.role == .follower { _ = node.step(.tick) }
        _ = node.step(envelope(2, 1, .requestVoteResponse(RequestVoteResponse(term: 3, isGranted: true, isPreVote: false))))
        #expect(node.isLeader && node.currentTerm == 3 && node.log.lastIndex == 3)  // index 3: the no-op of term 3
        // A majority now holds the term-2 entry at index 2, but not the no-op.
        _ = node.step(envelope(2, 1, .appendEntriesResponse(AppendEntriesResponse(term: 3, isSuccess: true, matchIndex: 2))))
        #expect(node.commitIndex == 0)
        _ = node.step(envelope(2, 1, .appendEntriesResponse(AppendEntriesResponse(term: 3, isSuccess: true, matchIndex: 3))))
        #expect(node.commitIndex == 3)
    }

    // §8: "a leader must have the latest information on which entries are committed ...
    // each leader commit a blank no-op entry into the log at the start of its term."
    @Test func newLeaderAppendsNoopOfItsTerm() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(2)
        let log = cluster.node(2).log
        #expect(log.entry(at: log.lastIndex)?.kind == .noop)
        #expect(log.lastTerm == cluster.node(2).currentTerm)
    }
}
