@testable import ClusterNode
import Raft
import RaftStorage
import Testing

/// A round steps the queued inputs among the ticks that passed, each after the ticks that had
/// passed when it came (`ReplicaDriver.interleaving`), not after all of them.
@Suite struct TickOrderTests {
    static func words(_ inputs: [RaftNode.Input]) -> String { CoalescingTests.words(inputs).joined(separator: " ") }

    static func proposal(_ id: UInt64) -> RaftNode.Input { .propose([CoalescingTests.proposal(id)]) }

    @Test func eachRunComesAfterTheTicksThatPassedBeforeIt() {
        let inputs = [Self.proposal(1), Self.proposal(2), Self.proposal(3)]
        let batch = ReplicaDriver.interleaving(inputs, arrivals: [(end: 1, ticksBefore: 0), (end: 3, ticksBefore: 2)], ticks: 3, ticksPassed: 3)
        #expect(Self.words(batch) == "propose 1 tick tick propose 2 propose 3 tick")
        // Nothing queued: only the ticks; no tick passed: only the inputs.
        #expect(Self.words(ReplicaDriver.interleaving([], arrivals: [], ticks: 2, ticksPassed: 2)) == "tick tick")
        #expect(Self.words(ReplicaDriver.interleaving(inputs, arrivals: [(end: 3, ticksBefore: 0)], ticks: 0, ticksPassed: 0))
            == "propose 1 propose 2 propose 3")
    }

    /// After a pause the ticks are capped (a few election timeouts stand for the rest): the
    /// inputs keep their place in proportion.
    @Test func cappedTicksKeepTheInputsInProportion() {
        let batch = ReplicaDriver.interleaving([Self.proposal(1)], arrivals: [(end: 1, ticksBefore: 300)], ticks: 200, ticksPassed: 400)
        #expect(batch.count == 201)
        #expect(Self.words(Array(batch[150...151])) == "propose 1 tick")
        #expect(batch[..<150].allSatisfy { if case .tick = $0 { true } else { false } })
    }

    /// Why the order matters. A leader's round thread spent an election timeout in one
    /// fdatasync; its followers' answers came early in it and wait in the inbox with the ticks
    /// that passed. Stepped in the order they came, the leader's check that a majority
    /// answered within the election timeout (thesis §6.2) sees them, and it keeps leading;
    /// with every tick first (the order before), it stepped down with the answers unread.
    @Test func answersThatCameDuringALongSyncCountForTheLeadersQuorumCheck() throws {
        for inArrivalOrder in [true, false] {
            let replica = try ReplicaTests.leader(on: SimulatedDisk())
            let network = ReplicaTests.RecordingNetwork()
            // One election timeout (10 ticks) with nothing heard: the check inside it passes
            // on the answers `leader` stepped and opens a new window, which nothing fills.
            _ = try replica.finish(try replica.begin(Array(repeating: .tick, count: 10), sendingAheadThrough: network), sendingThrough: network)
            try #require(replica.withCore { $0.isLeader })
            let (term, last) = replica.withCore { ($0.currentTerm, $0.log.lastIndex) }
            let answers: [RaftNode.Input] = [2, 3].map { peer in
                .receive(Envelope(from: NodeID(peer), to: 1, message: .appendEntriesResponse(AppendEntriesResponse(term: term, isSuccess: true, matchIndex: last))))
            }
            let batch = inArrivalOrder
                ? ReplicaDriver.interleaving(answers, arrivals: [(end: 2, ticksBefore: 0)], ticks: 10, ticksPassed: 10)
                : Array(repeating: .tick, count: 10) + answers
            _ = try replica.finish(try replica.begin(batch, sendingAheadThrough: network), sendingThrough: network)
            #expect(replica.withCore { $0.isLeader } == inArrivalOrder, "in arrival order: \(inArrivalOrder)")
        }
    }
}
