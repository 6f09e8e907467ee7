import Foundation
import Transport
import Raft

/// What this node heard from its peers: when each last answered one of its Raft messages,
/// who answered since it became leader, and whose connections all closed. It has a lock of
/// its own: the event loops note every batch of Raft messages here, and must not wait for
/// the state lock, which a round's apply or a view over every service may hold for a while.
/// (Lock order: the service's `lock` may be held when taking this one, never the reverse.)
final class PeerContact: @unchecked Sendable {
    private let lock = AdaptiveLock()
    /// When each peer last answered one of this node's Raft messages (an append, heartbeat
    /// or snapshot answer: proof that both directions work), in monotonic seconds.
    private var acknowledged: [UInt64: Double] = [:]
    /// Peers that answered since this node became leader: new replicas go only to them (a
    /// node killed a moment before the election never answers), and a client's change waits
    /// a moment after an election for the live peers' first answers (`settleAfterElection`).
    private var heardSinceLeading: Set<UInt64> = []
    /// The term of each peer's latest answer, and the term this node leads (0: none). A peer
    /// answers in a term only the leader of that term, so an answer in the leading term was
    /// heard since leading even when it arrived before the round that made this node leader
    /// called `startLeading`: that round sends its first AppendEntries before it returns, and
    /// on a loaded machine the answer can come back first. (Cleared instead, such an answer
    /// was forgotten and the wait after the election lasted until the next heartbeat: once,
    /// 485 ms with H = 400 ms in a full test run.)
    private var answeredInTerm: [UInt64: UInt64] = [:]
    private var leadingTerm: UInt64 = 0
    /// Peers whose every connection carrying Raft messages to this node closed, and that
    /// sent nothing since: most likely dead (kill -9 closes a process's sockets). The wait
    /// after an election does not wait for them.
    private var closed: Set<UInt64> = []

    /// Notes the senders of a batch: any message reopens a closed peer; an append, heartbeat
    /// or snapshot answer is an acknowledgement. Anything else (a vote request from a node
    /// that hears nothing from the leader) proves only that the peer can send.
    func note(_ envelopes: [Envelope], now: Double) {
        lock.withLock {
            for envelope in envelopes {
                if !closed.isEmpty { closed.remove(envelope.from.rawValue) }
                switch envelope.message {
                case .appendEntriesResponse, .heartbeatResponse, .installSnapshotResponse:
                    let peer = envelope.from.rawValue, term = envelope.message.term.rawValue
                    acknowledged[peer] = now
                    answeredInTerm[peer] = max(answeredInTerm[peer] ?? 0, term)
                    if term == leadingTerm { heardSinceLeading.insert(peer) }
                default:
                    break
                }
            }
        }
    }

    func peerClosed(_ peer: UInt64) { lock.withLock { _ = closed.insert(peer) } }

    /// This node became leader of `term`: the peers that already answered in it.
    func startLeading(term: UInt64) {
        lock.withLock {
            leadingTerm = term
            heardSinceLeading = Set(answeredInTerm.compactMap { $0.value == term ? $0.key : nil })
        }
    }

    /// A full grace period from `now` for every member (the reconcile loop's first look at a
    /// new leadership).
    func grantGrace(to members: [UInt64], now: Double) {
        lock.withLock { for member in members { acknowledged[member] = now } }
    }

    func lastAcknowledged(_ peer: UInt64) -> Double? { lock.withLock { acknowledged[peer] } }
    var acknowledgements: [UInt64: Double] { lock.withLock { acknowledged } }
    var heard: Set<UInt64> { lock.withLock { heardSinceLeading } }
    var closedPeers: Set<UInt64> { lock.withLock { closed } }
}
