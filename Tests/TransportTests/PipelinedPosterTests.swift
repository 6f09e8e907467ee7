import Foundation
import Testing
@testable import Transport

@Suite(.serialized) struct PipelinedPosterTests {
    final class Received: @unchecked Sendable {
        let lock = NSLock()
        var bodies: [String] = []
    }

    private func server(_ received: Received, limits: ServerLimits = ServerLimits()) throws -> HTTPServer {
        var router = Router()
        router.add("POST", "/in") { request in
            received.lock.withLock { received.bodies.append(String(decoding: request.body, as: UTF8.self)) }
            return HTTPResponse(status: .noContent)
        }
        let server = HTTPServer(port: 0, limits: limits, router: router)
        try server.start()
        return server
    }

    private func waitFor(_ count: Int, in received: Received) -> [String] {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, received.lock.withLock({ received.bodies.count }) < count { usleep(2_000) }
        return received.lock.withLock { received.bodies }
    }

    @Test func postsArriveInOrderWithoutWaitingForAnswers() throws {
        let received = Received()
        let server = try server(received)
        defer { server.stop() }
        let poster = PipelinedPoster(host: "127.0.0.1", port: server.port, path: "/in", headers: HTTPHeaders())
        for index in 0..<200 { try poster.post(Array("m\(index)".utf8), timeoutSeconds: 1) }
        #expect(waitFor(200, in: received) == (0..<200).map { "m\($0)" })
        #expect(poster.failedAnswers == 0)
        #expect(server.connectionCount == 1)
    }

    /// The bug this guards against: a post written into a connection the server had closed
    /// as idle vanished, and a Raft election waited a whole timeout for a lost pre-vote.
    @Test func postAfterServerClosedIdleConnectionIsNotLost() throws {
        let received = Received()
        var limits = ServerLimits()
        limits.idleTimeoutSeconds = 0.2
        let server = try server(received, limits: limits)
        defer { server.stop() }
        let poster = PipelinedPoster(host: "127.0.0.1", port: server.port, path: "/in", headers: HTTPHeaders())
        try poster.post(Array("before".utf8), timeoutSeconds: 1)
        #expect(waitFor(1, in: received) == ["before"])
        let deadline = Date().addingTimeInterval(3)
        while server.connectionCount > 0, Date() < deadline { usleep(10_000) }  // the server closed it
        #expect(server.connectionCount == 0)
        try poster.post(Array("after".utf8), timeoutSeconds: 1)
        #expect(waitFor(2, in: received) == ["before", "after"])
    }

    @Test func unreachablePeerThrowsInsteadOfBlocking() throws {
        let received = Received()
        let server = try server(received)
        let port = server.port
        server.stop()
        let poster = PipelinedPoster(host: "127.0.0.1", port: port, path: "/in", headers: HTTPHeaders())
        #expect(throws: SocketError.self) { try poster.post([1], timeoutSeconds: 0.5) }
    }
}
