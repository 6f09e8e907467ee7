import ClusterNode
import Raft
import RaftStorage
import Testing

/// The replica layer's round order on a crash-modelling disk: a round's writes are not
/// durable and nothing is sent after `begin`; after `finish` they are durable and only then
/// sent. The simulation checks the same at scale; these say it directly.
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
            let round = try replica.begin([.tick])
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
            _ = try replica.finish(try replica.begin([.tick]), sendingThrough: RecordingNetwork())
        }
        try #require(replica.withCore { $0.isLeader })
        let proposals = (1...50).map { RaftNode.Proposal(id: ProposalID($0), data: [UInt8($0)]) }
        _ = try replica.finish(try replica.begin([.propose(proposals)]), sendingThrough: RecordingNetwork())
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
        let round = try replica.begin([.tick])
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
}
