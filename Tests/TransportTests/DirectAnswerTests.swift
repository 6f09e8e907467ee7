#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Testing
@testable import Transport

/// A replying handler's answer given on another thread while the request's event loop sleeps
/// is written by that thread (waking the loop first would cost more than the write); the loop
/// does the rest (the next request, a close, what the socket did not take) when it wakes.
@Suite struct DirectAnswerTests {
    /// `/later/:n` answers `n` from another thread once every loop sleeps, through
    /// `whereCheapest`; `/big/:mb` answers that many MB the same way; `/gone` answers once the
    /// client's connection is closed.
    private static func router(_ server: @escaping @Sendable () -> HTTPServer?) -> Router {
        var router = Router()
        @Sendable func answerWhenLoopsSleep(_ reply: HTTPReply, _ response: @escaping @Sendable () -> HTTPResponse) {
            Thread.detachNewThread {
                let deadline = monotonicSeconds() + 10
                while server()?.eventLoopsAsleep != true, monotonicSeconds() < deadline { usleep(200) }
                reply.whereCheapest { reply.send(response()) }
            }
        }
        router.addReplying("GET", "/later/:n") { request, reply in
            let n = (try? request.parameter("n")) ?? "?"
            answerWhenLoopsSleep(reply) { HTTPResponse(body: Array(n.utf8)) }
        }
        router.addReplying("GET", "/big/:mb") { request, reply in
            let megabytes = Int((try? request.parameter("mb")) ?? "1") ?? 1
            answerWhenLoopsSleep(reply) { HTTPResponse(body: Self.pattern(megabytes << 20)) }
        }
        router.addReplying("GET", "/gone") { _, reply in
            Thread.detachNewThread {
                let deadline = monotonicSeconds() + 10
                while server()?.connectionCount != 0, monotonicSeconds() < deadline { usleep(200) }
                reply.send(HTTPResponse(body: Array("too late".utf8)))
            }
        }
        return router
    }

    /// `count` bytes of a pattern that repeats every 251 (a prime: no power-of-two chunk lines up).
    private static func pattern(_ count: Int) -> [UInt8] {
        let period = (0..<251).map { UInt8($0) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + period.count)
        while bytes.count < count { bytes += period }
        return Array(bytes[..<count])
    }

    private final class ServerBox: @unchecked Sendable {
        let lock = NSLock()
        var server: HTTPServer?
    }

    private static func start() throws -> HTTPServer {
        let box = ServerBox()
        let server = HTTPServer(port: 0, router: router { box.lock.withLock { box.server } })
        box.lock.withLock { box.server = server }
        try server.start()
        return server
    }

    @Test func answersFromAnotherThreadAreWrittenThereAndTheConnectionGoesOn() throws {
        let server = try Self.start()
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        for n in 1...3 {
            try connection.send("GET /later/\(n) HTTP/1.1\r\nHost: x\r\n\r\n")
            let answer = connection.readResponses(1)
            #expect(answer.map(\.body) == ["\(n)"])
        }
        #expect(server.answersWrittenDirectly == 3)
        // Pipelined: the second waits for the first's answer, then is answered the same way.
        try connection.send("GET /later/4 HTTP/1.1\r\nHost: x\r\n\r\nGET /later/5 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(connection.readResponses(2).map(\.body) == ["4", "5"])
        #expect(server.answersWrittenDirectly == 5)
        // The writer marked the connection idle before it wrote (evictable, counted so).
        #expect(server.requestsInHandlers == 0)
        // HEAD: the head alone; `Connection: close`: said in the answer, and the server closes.
        try connection.send("HEAD /later/6 HTTP/1.1\r\nHost: x\r\n\r\nGET /later/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let rest = String(decoding: connection.readUntilClosed(), as: UTF8.self)
        #expect(rest.hasPrefix("HTTP/1.1 200") && rest.contains("Content-Length: 1\r\n"), "\(rest)")
        #expect(rest.components(separatedBy: "HTTP/1.1 200").count == 3 && rest.hasSuffix("Connection: close\r\n\r\n7"), "\(rest)")
        #expect(server.answersWrittenDirectly == 7 && server.requestsServed == 7)
    }

    /// An answer larger than the socket takes at once: the answering thread writes what it
    /// can without blocking, the loop the rest, in order.
    @Test func whatTheSocketDoesNotTakeTheLoopWrites() throws {
        let server = try Self.start()
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        try connection.send("GET /big/24 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        // Not read until the answer was begun, so that the socket fills.
        let deadline = monotonicSeconds() + 10
        while server.answersWrittenDirectly == 0, monotonicSeconds() < deadline { usleep(1_000) }
        let received = connection.readUntilClosed(timeout: 30)
        guard let headEnd = received.firstRange(of: Array("\r\n\r\n".utf8)) else {
            Issue.record("no answer: \(received.count) bytes")
            return
        }
        let body = Array(received[headEnd.upperBound...]), expected = Self.pattern(24 << 20)
        let firstDifference = (0..<min(body.count, expected.count)).first { body[$0] != expected[$0] } ?? min(body.count, expected.count)
        let isWhole = body == expected  // not in the expectation: a failure would print 24 MB
        #expect(isWhole, "\(body.count) of \(expected.count) bytes, the first difference at byte \(firstDifference)")
        #expect(server.answersWrittenDirectly == 1)
    }

    /// A client that reset its connection before its answer: the loop closed it, and the
    /// answer is not written (the descriptor's number may already be another connection's);
    /// the server goes on.
    @Test func anAnswerAfterTheConnectionClosedGoesNowhere() throws {
        let server = try Self.start()
        defer { server.stop() }
        do {
            let connection = try RawConnection(port: server.port)
            try connection.send("GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
            let started = monotonicSeconds() + 10
            while server.requestsInHandlers == 0, monotonicSeconds() < started { usleep(1_000) }
            // Closed with a reset (no lingering), which the server sees at once even while the
            // handler runs (a plain close is a half-close it notices only once it answers).
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(connection.descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        let deadline = monotonicSeconds() + 10
        while server.requestsServed == 0, monotonicSeconds() < deadline { usleep(1_000) }
        #expect(server.requestsServed == 1 && server.answersWrittenDirectly == 0)
        let next = try RawConnection(port: server.port)
        try next.send("GET /later/8 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(next.readResponses(1).map(\.body) == ["8"])
    }
}
