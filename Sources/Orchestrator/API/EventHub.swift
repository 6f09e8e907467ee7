import ClusterNode
import Foundation
import Transport

/// The orchestrator's live events (`GET /events`, `GET /clusters/:id/events`, server-sent
/// events): role, term and leader changes and commit progress the nodes report, faults
/// injected, link changes, cluster and service changes made through the API. Events go into
/// a ring of the last `capacity`; each subscriber reads from it at its own pace, so a slow or
/// stalled one never slows the others or the orchestrator: when it falls behind the ring it
/// is told how many it missed and skips ahead. Ids increase by one; a client that reconnects
/// with `Last-Event-ID` gets what came after it, if still in the ring.
final class EventHub: @unchecked Sendable {
    struct Event: Sendable {
        var id: UInt64
        var time: Double
        var cluster: String?
        var type: String
        /// The event's fields as a JSON object (id, time, cluster and type included).
        var json: String
    }

    let capacity: Int
    private let condition = NSCondition()
    private var ring: [Event] = []
    private var nextID: UInt64 = 1
    private var subscribers = 0
    /// Subscribers at once: each holds a connection thread.
    static let maxSubscribers = 64

    init(capacity: Int = 10_000) { self.capacity = capacity }

    var hasSubscribers: Bool { condition.withLock { subscribers > 0 } }
    var latestID: UInt64 { condition.withLock { nextID - 1 } }

    /// Adds an event; wakes every subscriber.
    func publish(_ type: String, cluster: String?, _ fields: [String: Any] = [:]) {
        condition.withLock {
            var object = fields
            object["id"] = nextID
            object["time"] = (Date().timeIntervalSince1970 * 1_000).rounded() / 1_000
            object["type"] = type
            if let cluster { object["cluster"] = cluster }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            ring.append(Event(id: nextID, time: object["time"] as? Double ?? 0, cluster: cluster, type: type, json: data))
            nextID += 1
            if ring.count > capacity + capacity / 4 { ring.removeFirst(ring.count - capacity) }  // amortized: a quarter at once
            condition.broadcast()
        }
    }

    /// The events after `id` (for `cluster`, or all), waiting up to `seconds` for one; and
    /// how many were missed because they left the ring before this reader got to them.
    func events(after id: UInt64, cluster: String?, waitingUpTo seconds: Double) -> (events: [Event], missed: UInt64, last: UInt64) {
        condition.withLock {
            let deadline = Date().addingTimeInterval(seconds)
            while nextID - 1 <= id, Date() < deadline { _ = condition.wait(until: deadline) }
            let oldest = ring.first?.id ?? nextID
            let missed = oldest > id + 1 ? oldest - id - 1 : 0
            let start = ring.firstIndex { $0.id > id } ?? ring.count
            let batch = ring[start...].prefix(500).filter { cluster == nil || $0.cluster == cluster }
            let last = ring[start...].prefix(500).last?.id ?? max(id, oldest - 1)
            return (Array(batch), missed, last)
        }
    }

    /// The streamed answer of `GET /events` (and per cluster): SSE, from `Last-Event-ID` (or
    /// `?since=`) when given, else from now; a comment every 15 s keeps idle connections
    /// honest (a dead client is found when the write fails).
    func response(for request: HTTPRequest, cluster: String?) throws(HTTPError) -> HTTPResponse {
        let resume = request.headers["last-event-id"] ?? request.query["since"]
        var start = latestID
        if let resume {
            guard let id = UInt64(resume) else { throw HTTPError(.badRequest, "Last-Event-ID (or since) must be an event id, got \(JSONText.quote(resume))") }
            start = id
        }
        let admitted = condition.withLock { () -> Bool in
            guard subscribers < Self.maxSubscribers else { return false }
            subscribers += 1
            return true
        }
        guard admitted else {
            throw HTTPError(.serviceUnavailable, "\(Self.maxSubscribers) event streams are open already; retry later", headers: HTTPHeaders([("Retry-After", "5")]))
        }
        var response = HTTPResponse(headers: HTTPHeaders([("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]))
        let from = start
        response.stream = { [self] write in
            defer { condition.withLock { subscribers -= 1 } }
            var last = from
            guard write(Array(": events of \(cluster.map { "cluster \($0)" } ?? "every cluster") from id \(from)\n\n".utf8)) else { return }
            while true {
                let (events, missed, through) = events(after: last, cluster: cluster, waitingUpTo: 15)
                var chunk = ""
                if missed > 0 { chunk += "event: skipped\ndata: {\"missed\":\(missed)}\n\n" }
                for event in events { chunk += "id: \(event.id)\nevent: \(event.type)\ndata: \(event.json)\n\n" }
                if chunk.isEmpty { chunk = ": keep-alive\n\n" }
                guard write(Array(chunk.utf8)) else { return }
                last = through
            }
        }
        return response
    }
}
