@testable import ClusterNode
import Raft
import Testing

/// A round's queued inputs become the core's inputs with each run of adjacent proposals
/// merged into one, so that they become one batch of entries: nothing reordered, nothing
/// lost, and only adjacent proposals merged (a read or a tick between two runs keeps them
/// apart, since the core must see it between them).
@Suite struct CoalescingTests {
    static func proposal(_ id: UInt64) -> RaftNode.Proposal { RaftNode.Proposal(id: id, data: [UInt8(id)]) }

    /// Each input as a short word: the proposals' ids for a proposal, else its kind.
    static func words(_ inputs: [RaftNode.Input]) -> [String] {
        inputs.map { input in
            switch input {
            case .propose(let proposals): "propose " + proposals.map { String($0.id) }.joined(separator: ",")
            case .tick: "tick"
            case .read(let id): "read \(id)"
            default: "other"
            }
        }
    }

    @Test func adjacentProposalsBecomeOneInOrderAndOtherInputsStayWhereTheyWere() {
        let batch: [RaftNode.Input] = [
            .propose([Self.proposal(1)]), .propose([Self.proposal(2), Self.proposal(3)]), .propose([Self.proposal(4)]),
            .tick, .propose([Self.proposal(5)]), .read(9), .read(10), .propose([Self.proposal(6)]), .propose([Self.proposal(7)]),
        ]
        #expect(Self.words(Replica.coalesced(batch)) == ["propose 1,2,3,4", "tick", "propose 5", "read 9", "read 10", "propose 6,7"])
    }

    @Test func aBatchWithoutProposalsOrOfOneIsUnchanged() {
        #expect(Self.words(Replica.coalesced([])) == [])
        #expect(Self.words(Replica.coalesced([.tick, .read(1)])) == ["tick", "read 1"])
        #expect(Self.words(Replica.coalesced([.propose([Self.proposal(8)])])) == ["propose 8"])
    }
}
