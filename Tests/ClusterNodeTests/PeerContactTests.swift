@testable import ClusterNode
import Raft
import Testing

/// Who answered this node since it became leader: the peers that answered in the term it
/// leads, whether their answer came before or after the round that made it leader noted it.
@Suite struct PeerContactTests {
    static func answer(from peer: UInt64, term: UInt64) -> Envelope {
        Envelope(from: NodeID(peer), to: 1, message: .appendEntriesResponse(AppendEntriesResponse(term: Term(term), isSuccess: true, matchIndex: 1)))
    }

    @Test func anAnswerInTheLeadingTermCountsWhicheverCameFirst() {
        let contact = PeerContact()
        contact.note([Self.answer(from: 2, term: 1)], now: 0)  // to the leader of term 1, not to us
        contact.note([Self.answer(from: 3, term: 2)], now: 0)  // to our first AppendEntries, before we noted leading
        contact.startLeading(term: 2)
        #expect(contact.heard == [3])
        contact.note([Self.answer(from: 2, term: 2)], now: 0)
        #expect(contact.heard == [2, 3])
        // A later leadership starts from the answers in its own term.
        contact.startLeading(term: 5)
        #expect(contact.heard.isEmpty)
        contact.note([Self.answer(from: 2, term: 5)], now: 0)
        #expect(contact.heard == [2])
    }

    /// A vote request proves only that the peer can send, not that it follows this leader.
    @Test func otherMessagesAreNotAnswers() {
        let contact = PeerContact()
        contact.startLeading(term: 3)
        contact.note([Envelope(from: 2, to: 1, message: .requestVote(RequestVote(term: 3, lastLogIndex: 0, lastLogTerm: 0, isPreVote: true)))], now: 0)
        #expect(contact.heard.isEmpty)
    }
}
