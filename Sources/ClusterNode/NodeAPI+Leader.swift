import Foundation
import Transport

/// Requests only a leader serves, on a node that may not lead: run here when it does,
/// otherwise forwarded to the leader once (or answered 503 naming none).
extension NodeAPI {
    /// The leader this node's service knows of, polled (suspending, no thread held) for up to
    /// `seconds`. The service's view, not the core's: the core may already lead while the
    /// service still refuses, and a retry on the core's word would be refused again.
    static func waitForKnownLeader(_ node: Node, seconds: Double) async -> UInt64? {
        let deadline = monotonicSeconds() + seconds
        while true {
            if let leader = node.service.knownLeader { return leader }
            guard monotonicSeconds() < deadline else { return nil }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    /// Runs `body` here when this node leads; otherwise forwards the request to the leader
    /// (once: a forwarded request is never forwarded again) or answers 503 naming none.
    static func onLeader(_ node: Node, _ request: HTTPRequest, _ body: () async throws -> HTTPResponse) async throws -> HTTPResponse {
        try checkIdempotencyKey(request)
        do {
            return try await body()
        } catch NodeError.notLeader(let knownLeader) {
            return try await notLeader(knownLeader, node, request, retry: body)
        }
    }

    /// A request this node could not serve as leader: once a leader is known (waited for, at
    /// most an election timeout, when none is), forwarded to it, or run again (`retry`) when
    /// this node turned out to lead; otherwise answered 503.
    static func notLeader(_ knownLeader: UInt64?, _ node: Node, _ request: HTTPRequest, retry: () async throws -> HTTPResponse) async throws -> HTTPResponse {
        var knownLeader = knownLeader
        if knownLeader == nil {
            // Right after an election a follower may not have heard from the new leader
            // yet: wait for one, at most an election timeout, before answering 503.
            knownLeader = await waitForKnownLeader(node, seconds: Double(node.configuration.electionTimeoutMilliseconds) / 1_000)
            if knownLeader == node.configuration.id { return try await retry() }
        }
        guard let leader = knownLeader, leader != node.configuration.id else { throw NodeError.notLeader(leader: nil) }
        guard request.headers["x-forwarded-by"] == nil else {
            throw HTTPError(.serviceUnavailable, "leadership is moving (forwarded request reached a non-leader); retry shortly", headers: HTTPHeaders([("Retry-After", "1")]))
        }
        guard node.links.state(to: leader).isUp else {
            throw HTTPError(.serviceUnavailable, "this node's link to the leader \(address(leader)) is cut; ask another node", headers: HTTPHeaders([("Retry-After", "1")]))
        }
        node.metrics.increment(.forwardedRequests)
        var forwardedHeaders = HTTPHeaders([("Content-Type", request.headers["content-type"] ?? "application/json"), ("X-Forwarded-By", address(node.configuration.id))])
        if let key = request.headers["idempotency-key"] { forwardedHeaders.add("Idempotency-Key", key) }
        let headers = forwardedHeaders
        do {
            // The blocking client, on a thread of its own: this task holds none meanwhile.
            let client = node.client, timeout = node.configuration.commitTimeoutSeconds + 1
            var response = try await runBlocking {
                try client.send(request.method, host: "127.0.0.1", port: Int(leader), path: request.target, headers: headers,
                                body: request.body, timeoutSeconds: timeout)
            }
            response.headers.set("X-Served-By", address(leader))
            return response
        } catch {
            throw HTTPError(.serviceUnavailable, "could not reach the leader \(address(leader)): \(error)", headers: HTTPHeaders([("Retry-After", "1")]))
        }
    }
}
