import ClusterNode
import Raft
import RaftStorage
import Testing

/// The replica layer's round order on a crash-modelling disk: a round's writes are not
/// durable after `begin`, and only a leader's replication has been sent; after `finish` they
/// are durable and the rest is sent. The simulation checks the same at scale; these say it
/// directly.
@Suite struct ReplicaTests {
    final class RecordingNetwork: ReplicaNetwork {
        var sent: [(peer: UInt64, envelopes: [Envelope])] = []
        func send(_ messages: [(peer: UInt64, envelopes: [Envelope])]) { sent += messages }
    }

    /// A fixed crash for the disk: every draw is the smallest, so no unsynced byte is kept.
    /// (1, not 0: the standard library's bounded draw rejects 0 for most bounds, forever.)
    struct LoseEverything: RandomNumberGenerator {
        mutating func next() -> UInt64 { 1 }
    }

    static func replica(on disk: SimulatedDisk) throws -> Replica {
        let wal = try WriteAheadLog(directory: "/data/raft", fileSystem: disk)
        var settings = RaftSettings(electionTicks: 10, heartbeatTicks: 2)
        settings.isPreVoteEnabled = false  // the first campaign changes the term at once
        let core = RaftNode(id: 1, membership: Membership(voters: [1, 2, 3]), settings: settings,
                            randomSeed: 7, hardState: wal.recovered.hardState, log: wal.recovered.log, snapshot: wal.recovered.snapshot)
        return Replica(core: core, wal: wal)
    }

    /// Ticks until the core campaigns: the round that starts the election.
    static func campaign(_ replica: Replica) throws -> Replica.Round {
        for _ in 0..<100 {
            let round = try replica.begin([.tick], sendingAheadThrough: RecordingNetwork())
            if round.mustSync { return round }
            _ = try replica.finish(round, sendingThrough: RecordingNetwork())
        }
        Issue.record("no campaign within 100 ticks")
        throw StorageError("no campaign")
    }

    /// A snapshot is due after the threshold's entries, or, when the last snapshot is large,
    /// after as many entries as make a log about its size (128 bytes an entry).
    @Test func snapshotsOfALargeStateComeLessOften() {
        #expect(Replica.snapshotInterval(threshold: 20, lastSnapshotBytes: 0) == 20)
        #expect(Replica.snapshotInterval(threshold: 20, lastSnapshotBytes: 1_000) == 20)
        #expect(Replica.snapshotInterval(threshold: 20, lastSnapshotBytes: 128 * 500) == 500)
        #expect(Replica.snapshotInterval(threshold: 10_000, lastSnapshotBytes: 5_000_000) == 39_062)
    }

    /// A snapshot stored but not yet taken in by the core counts as the last one: the next is
    /// due an interval after it, not again at once (a node took two snapshots 1,500 entries
    /// apart because its round ran before the core heard of the first).
    @Test func aStoredSnapshotTheCoreHasNotTakenInIsNotTakenAgain() throws {
        let wal = try WriteAheadLog(directory: "/data/raft", fileSystem: SimulatedDisk())
        var settings = RaftSettings(electionTicks: 10, heartbeatTicks: 2)
        settings.snapshotThresholdEntries = 20
        let replica = Replica(core: RaftNode(id: 1, membership: Membership(voters: [1]), settings: settings, randomSeed: 7,
                                             hardState: wal.recovered.hardState, log: wal.recovered.log, snapshot: nil), wal: wal)
        for _ in 0..<100 where !replica.withCore({ $0.isLeader }) {
            _ = try replica.finish(try replica.begin([.tick], sendingAheadThrough: RecordingNetwork()), sendingThrough: RecordingNetwork())
        }
        try #require(replica.withCore { $0.isLeader })
        let proposals = (1...50).map { RaftNode.Proposal(id: ProposalID($0), data: [UInt8($0)]) }
        _ = try replica.finish(try replica.begin([.propose(proposals)], sendingAheadThrough: RecordingNetwork()), sendingThrough: RecordingNetwork())
        let committed = replica.withCore { $0.commitIndex.rawValue }
        try #require(committed >= 50)
        #expect(replica.snapshotDue(appliedIndex: committed) != nil)
        #expect(replica.snapshotDue(appliedIndex: committed, stored: (committed - 5, 100)) == nil)
        #expect(replica.snapshotDue(appliedIndex: committed, stored: (committed - 20, 100)) != nil)
        // A large stored snapshot sets the interval too (128 bytes an entry).
        #expect(replica.snapshotDue(appliedIndex: committed, stored: (committed - 20, 128 * 40)) == nil)
    }

    @Test func aCrashBetweenTheHalvesLosesTheTermAndNothingWasSent() throws {
        let disk = SimulatedDisk()
        let replica = try Self.replica(on: disk)
        let round = try Self.campaign(replica)
        #expect(round.sentAhead == 0)  // votes are asked for only once the term is durable
        let term = replica.withCore { $0.currentTerm }
        #expect(term >= 1)
        #expect(round.outputs.contains { output in output.messages.contains { if case .requestVote = $0.message { true } else { false } } })
        var lose = LoseEverything()
        _ = disk.crash(using: &lose)  // the fsync never happened; neither did the sending
        #expect(try WriteAheadLog(directory: "/data/raft", fileSystem: disk).recovered.hardState.currentTerm < term)
    }

    @Test func afterTheSecondHalfTheTermIsDurableAndTheVotesWentOut() throws {
        let disk = SimulatedDisk()
        let replica = try Self.replica(on: disk)
        let network = RecordingNetwork()
        let round = try Self.campaign(replica)
        let term = replica.withCore { $0.currentTerm }
        #expect(network.sent.isEmpty)
        let outputs = try replica.finish(round, sendingThrough: network)
        #expect(outputs.count == round.outputs.count)
        #expect(Set(network.sent.map(\.peer)) == [2, 3])
        var lose = LoseEverything()
        _ = disk.crash(using: &lose)
        let recovered = try WriteAheadLog(directory: "/data/raft", fileSystem: disk).recovered
        #expect(recovered.hardState.currentTerm == term)
        #expect(recovered.hardState.votedFor == 1)
    }

    @Test func aTickThatChangesNothingNeitherWritesNorSyncs() throws {
        let disk = SimulatedDisk()
        let replica = try Self.replica(on: disk)
        let (syncs, bytes) = (disk.syncCount, replica.wal.bytesWritten)
        let round = try replica.begin([.tick], sendingAheadThrough: RecordingNetwork())
        #expect(!round.mustSync)
        _ = try replica.finish(round, sendingThrough: RecordingNetwork())
        #expect(disk.syncCount == syncs)
        #expect(replica.wal.bytesWritten == bytes)
    }

    @Test func messagesAreGroupedByPeerInTheOrderTheCoreMadeThem() throws {
        let disk = SimulatedDisk()
        let replica = try Self.replica(on: disk)
        let network = RecordingNetwork()
        let round = try Self.campaign(replica)
        _ = try replica.finish(round, sendingThrough: network)
        let order = round.outputs.flatMap(\.messages).map(\.to.rawValue)
        var firstSeen: [UInt64] = []
        for peer in order where !firstSeen.contains(peer) { firstSeen.append(peer) }
        #expect(network.sent.map(\.peer) == firstSeen)
    }

    /// Steps answers from `peers` acknowledging the leader's whole log (so that it replicates
    /// to them without probing first).
    static func acknowledge(_ replica: Replica, from peers: [UInt64]) throws {
        let (term, last) = replica.withCore { ($0.currentTerm, $0.log.lastIndex) }
        let answers: [RaftNode.Input] = peers.map { peer in
            .receive(Envelope(from: NodeID(peer), to: 1, message: .appendEntriesResponse(AppendEntriesResponse(term: term, isSuccess: true, matchIndex: last))))
        }
        _ = try replica.finish(try replica.begin(answers, sendingAheadThrough: RecordingNetwork()), sendingThrough: RecordingNetwork())
    }

    /// A replica of a three-voter cluster that won its election (votes from 2 and 3 stepped)
    /// and whose followers acknowledged its first entry.
    static func leader(on disk: SimulatedDisk) throws -> Replica {
        let replica = try replica(on: disk)
        let campaign = try Self.campaign(replica)
        _ = try replica.finish(campaign, sendingThrough: RecordingNetwork())
        let term = replica.withCore { $0.currentTerm }
        let votes: [RaftNode.Input] = [2, 3].map { voter in
            .receive(Envelope(from: NodeID(voter), to: 1, message: .requestVoteResponse(RequestVoteResponse(term: term, isGranted: true, isPreVote: false))))
        }
        _ = try replica.finish(try replica.begin(votes, sendingAheadThrough: RecordingNetwork()), sendingThrough: RecordingNetwork())
        try #require(replica.withCore { $0.isLeader })
        try acknowledge(replica, from: [2, 3])
        return replica
    }

    /// Thesis §10.2.1: the leader's AppendEntries leave before its own fdatasync (the entries
    /// are not yet on its disk when they are sent), and a crash then loses them on the leader
    /// only; the followers' answers are stepped in a later round, after the sync.
    @Test func aLeadersAppendEntriesGoOutBeforeItsSync() throws {
        let disk = SimulatedDisk()
        let replica = try Self.leader(on: disk)
        let ahead = RecordingNetwork()
        let proposals = (1...3).map { RaftNode.Proposal(id: ProposalID($0), data: [UInt8($0)]) }
        let round = try replica.begin([.propose(proposals)], sendingAheadThrough: ahead)
        #expect(round.mustSync)
        #expect(Set(ahead.sent.map(\.peer)) == [2, 3])
        #expect(round.sentAhead == ahead.sent.reduce(0) { $0 + $1.envelopes.count })
        let sentEntries = ahead.sent.flatMap(\.envelopes).flatMap { envelope -> [Entry] in
            if case .appendEntries(let append) = envelope.message { append.entries } else { [] }
        }
        #expect(sentEntries.contains { $0.data == [3] })
        let lastIndex = replica.withCore { $0.log.lastIndex }
        var lose = LoseEverything()
        _ = disk.crash(using: &lose)  // the leader's sync never happened
        #expect(try WriteAheadLog(directory: "/data/raft", fileSystem: disk).recovered.log.lastIndex < lastIndex)
    }

    /// A follower acknowledges only what is on its disk: its answer waits for the sync.
    @Test func aFollowersAnswerWaitsForItsSync() throws {
        let disk = SimulatedDisk()
        let replica = try Self.replica(on: disk)
        let append = AppendEntries(term: 5, prevLogIndex: 0, prevLogTerm: 0, entries: [Entry(term: 5, index: 1, data: [1])], leaderCommit: 0)
        let ahead = RecordingNetwork()
        let round = try replica.begin([.receive(Envelope(from: 2, to: 1, message: .appendEntries(append)))], sendingAheadThrough: ahead)
        #expect(round.mustSync)
        #expect(!round.mayApplyBeforeSync)
        #expect(ahead.sent.isEmpty)
        let after = RecordingNetwork()
        _ = try replica.finish(round, sendingThrough: after)
        #expect(after.sent.flatMap(\.envelopes).contains { if case .appendEntriesResponse(let answer) = $0.message { answer.isSuccess } else { false } })
    }

    /// A leader's round that commits entries written (and synced) by earlier rounds while it
    /// appends new ones may apply before its sync: a crash that loses the new entries keeps
    /// every committed one. (A follower's round and a single voter's round that commits its
    /// own new entries do not qualify: the tests before and after this one.)
    @Test func aLeaderAppliesBeforeItsSyncOnlyWhatWasDurableBefore() throws {
        let disk = SimulatedDisk()
        let replica = try Self.leader(on: disk)
        let first = try replica.begin([.propose([RaftNode.Proposal(id: 1, data: [1])])], sendingAheadThrough: RecordingNetwork())
        _ = try replica.finish(first, sendingThrough: RecordingNetwork())
        let (term, durable) = replica.withCore { ($0.currentTerm, $0.log.lastIndex) }
        let answer = RaftNode.Input.receive(Envelope(from: 2, to: 1, message: .appendEntriesResponse(AppendEntriesResponse(term: term, isSuccess: true, matchIndex: durable))))
        let round = try replica.begin([answer, .propose([RaftNode.Proposal(id: 2, data: [2])])], sendingAheadThrough: RecordingNetwork())
        #expect(round.mustSync)
        #expect(round.mayApplyBeforeSync)
        let committed = round.outputs.flatMap(\.committed)
        #expect(committed.contains { $0.data == [1] })
        #expect(committed.allSatisfy { $0.index <= durable })
        #expect(round.outputs.flatMap(\.proposals).contains(.committed(1, index: durable)))
        var lose = LoseEverything()
        _ = disk.crash(using: &lose)  // this round's sync never happened
        let recovered = try WriteAheadLog(directory: "/data/raft", fileSystem: disk).recovered.log
        #expect(recovered.lastIndex == durable, "the new entry is lost, every committed one kept")
        #expect(recovered.entries(in: durable...durable).first?.data == [1])
    }

    /// A leader that is its configuration's only voter commits its entries in the round that
    /// appends them, before they are on its disk: that round sends nothing ahead (the commit
    /// index would reach the learner before the entries are durable anywhere it counts).
    @Test func aRoundThatCommitsUnsyncedEntriesSendsNothingAhead() throws {
        let disk = SimulatedDisk()
        let wal = try WriteAheadLog(directory: "/data/raft", fileSystem: disk)
        let core = RaftNode(id: 1, membership: Membership(voters: [1], learners: [2]), settings: RaftSettings(electionTicks: 10, heartbeatTicks: 2),
                            randomSeed: 7, hardState: wal.recovered.hardState, log: wal.recovered.log, snapshot: nil)
        let replica = Replica(core: core, wal: wal)
        for _ in 0..<100 where !replica.withCore({ $0.isLeader }) {
            _ = try replica.finish(try replica.begin([.tick], sendingAheadThrough: RecordingNetwork()), sendingThrough: RecordingNetwork())
        }
        try #require(replica.withCore { $0.isLeader })
        try Self.acknowledge(replica, from: [2])
        let ahead = RecordingNetwork()
        let round = try replica.begin([.propose([RaftNode.Proposal(id: 1, data: [9])])], sendingAheadThrough: ahead)
        #expect(round.outputs.contains { $0.committed.contains { $0.data == [9] } })
        #expect(!round.mayApplyBeforeSync, "its commit is not on any disk yet")
        #expect(ahead.sent.isEmpty)
        let after = RecordingNetwork()
        _ = try replica.finish(round, sendingThrough: after)
        replica.sendReplication(of: round, through: after)
        #expect(after.sent.map(\.peer) == [2])
    }

    /// A round with nothing to sync (followers' answers that commit entries): the commit
    /// index goes to the followers only after the apply (`sendReplication`), so the clients
    /// whose entries committed are answered first.
    @Test func aCommitOnlyRoundSendsItsReplicationAfterTheApply() throws {
        let replica = try Self.leader(on: SimulatedDisk())
        let proposals = [RaftNode.Proposal(id: 1, data: [7])]
        _ = try replica.finish(try replica.begin([.propose(proposals)], sendingAheadThrough: RecordingNetwork()), sendingThrough: RecordingNetwork())
        let (term, last) = replica.withCore { ($0.currentTerm, $0.log.lastIndex) }
        let answer = RaftNode.Input.receive(Envelope(from: 2, to: 1, message: .appendEntriesResponse(AppendEntriesResponse(term: term, isSuccess: true, matchIndex: last))))
        let network = RecordingNetwork()
        let round = try replica.begin([answer], sendingAheadThrough: network)
        #expect(!round.mustSync)
        #expect(round.outputs.contains { $0.committed.contains { $0.data == [7] } })
        _ = try replica.finish(round, sendingThrough: network)
        #expect(network.sent.isEmpty)
        replica.sendReplication(of: round, through: network)
        let commits = network.sent.flatMap(\.envelopes).compactMap { envelope -> LogIndex? in
            switch envelope.message {
            case .appendEntries(let append): append.leaderCommit
            case .heartbeat(let heartbeat): heartbeat.leaderCommit
            default: nil
            }
        }
        #expect(commits.contains(last))
    }
}
