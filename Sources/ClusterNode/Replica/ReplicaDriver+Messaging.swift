import Foundation
import Raft
import Transport

/// Raft messages between nodes: each peer's outbox (link faults applied, batches posted over
/// one pipelined connection) and the receiving end.
extension ReplicaDriver {

    func makeOutbox(to peer: UInt64, poster: PipelinedPoster) -> Outbox<(Envelope, Double)> {
        let links = self.links
        let metrics = self.metrics
        // The outbox serializes its users: its own thread, or one inline sender at a time.
        nonisolated(unsafe) let sender = poster
        return Outbox(name: "raft-send-\(peer)", capacity: 4_096, maxBatch: 256) { batch in
            let link = links.state(to: peer)
            guard link.isUp else {
                metrics.increment(.messagesDroppedByLinks, by: batch.count)
                return
            }
            var envelopes: [Envelope] = []
            envelopes.reserveCapacity(batch.count)
            for (envelope, queuedAt) in batch {
                if link.loss > 0, Double.random(in: 0..<1) < link.loss {
                    metrics.increment(.messagesDroppedByLinks)
                    continue
                }
                if link.delayMilliseconds > 0 {
                    let due = queuedAt + Double(link.delayMilliseconds) / 1_000
                    let wait = due - monotonicSeconds()
                    if wait > 0 {
                        // Send what is due so far, then hold the rest until their time.
                        Self.post(envelopes, with: sender, metrics: metrics)
                        envelopes.removeAll()
                        usleep(UInt32(wait * 1_000_000))
                    }
                }
                envelopes.append(envelope)
            }
            Self.post(envelopes, with: sender, metrics: metrics)
        }
    }

    private static func post(_ envelopes: [Envelope], with poster: PipelinedPoster, metrics: NodeMetrics) {
        guard !envelopes.isEmpty else { return }
        let body = RaftWireCodec.encode(envelopes)
        if body.count > NodeLimits.maxRaftBatchBytes, envelopes.count > 1 {
            // Within what the peer's /raft/messages accepts: halves until each part fits.
            let half = envelopes.count / 2
            post(Array(envelopes[..<half]), with: poster, metrics: metrics)
            post(Array(envelopes[half...]), with: poster, metrics: metrics)
            return
        }
        do {
            try poster.post(body, timeoutSeconds: 0.5)
            metrics.increment(.messagesSent, by: envelopes.count)
        } catch {
            metrics.increment(.messagesFailed, by: envelopes.count)  // the peer is down or paused: Raft retries on its own
        }
    }

    /// Queues a batch of Raft messages received from peers for the next round, on the round
    /// thread: the receiving event loop goes straight back to its connections (beyond the
    /// inbox's bound messages are dropped, which Raft tolerates).
    func receive(_ envelopes: [Envelope]) {
        metrics.increment(.messagesReceived, by: envelopes.count)
        submit(envelopes.map { .receive($0) })
    }
}
