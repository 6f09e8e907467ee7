import Foundation
import Raft
import Transport

/// Raft messages between nodes: each peer's channel (link faults applied, batches posted over
/// one pipelined connection) and the receiving end.
extension ReplicaDriver {

    /// A channel to `peer`'s `/raft/stream`: one connection switched to frames of message
    /// batches (a request and an answer per batch cost both nodes a parse and a write each,
    /// and woke the sender's loop for every answer). A link's state is read as messages leave
    /// (after any delay): a cut link drops them, a lossy one drops each with its probability.
    func makeChannel(to peer: UInt64) -> PostChannel<Envelope> {
        let links = self.links
        let metrics = self.metrics
        let headers = HTTPHeaders([("Content-Type", "application/octet-stream"), ("X-Cluster-ID", configuration.clusterID)])
        return PostChannel(loop: clientLoop, host: "127.0.0.1", port: Int(peer), path: "/raft/stream", headers: headers, maxQueued: 4_096,
                           upgradeTo: NodeAPI.raftStreamProtocol,
                           prepare: { envelopes in
            let link = links.state(to: peer)
            guard link.isUp else {
                metrics.increment(.messagesDroppedByLinks, by: envelopes.count)
                return []
            }
            var kept = envelopes
            if link.loss > 0 {
                kept = envelopes.filter { _ in Double.random(in: 0..<1) >= link.loss }
                metrics.increment(.messagesDroppedByLinks, by: envelopes.count - kept.count)
            }
            return Self.bodies(kept)
        }, report: { outcome, count in
            // Failed: the peer is down or paused (Raft retries on its own); rejected: its server
            // refused them (another cluster's node on that port, a body too large).
            switch outcome {
            case .sent: metrics.increment(.messagesSent, by: count)
            case .failed: metrics.increment(.messagesFailed, by: count)
            case .rejected: metrics.increment(.messagesRejected, by: count)
            }
        })
    }

    /// Request bodies for `envelopes`, each within what a peer's /raft/messages accepts
    /// (halved until each part fits).
    static func bodies(_ envelopes: [Envelope]) -> [PostChannel<Envelope>.Prepared] {
        guard !envelopes.isEmpty else { return [] }
        let body = RaftWireCodec.encode(envelopes)
        if body.count > NodeLimits.maxRaftBatchBytes, envelopes.count > 1 {
            let half = envelopes.count / 2
            return bodies(Array(envelopes[..<half])) + bodies(Array(envelopes[half...]))
        }
        return [(body, envelopes.count)]
    }

    /// Queues a batch of Raft messages received from peers for the next round (beyond the
    /// inbox's bound messages are dropped, which Raft tolerates); when no round is under way
    /// the receiving event loop begins one itself (`submit(_:mayBeginRound:)`).
    func receive(_ envelopes: [Envelope]) {
        metrics.increment(.messagesReceived, by: envelopes.count)
        submit(envelopes.map { .receive($0) }, mayBeginRound: true)
    }
}
