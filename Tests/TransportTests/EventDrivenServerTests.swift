#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Testing
@testable import Transport

/// The event-driven connection model: idle connections and suspended handlers hold no thread.
@Suite(.serialized) struct EventDrivenServerTests {
    /// Connections this process can open for a test holding both ends (the client's and the
    /// server's descriptor each), within its hard descriptor limit.
    private func affordableConnections(upTo wanted: Int) -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return min(wanted, (Int(clamping: limit.rlim_cur) - 256) / 2)
    }

    @Test func idleKeepAliveConnectionsHoldNoThreads() throws {
        let count = affordableConnections(upTo: 5_000)
        try #require(count >= 500, "this process may open too few descriptors (ulimit -n) to hold 500 connections")
        let server = try startTestServer()
        defer { server.stop() }
        var idle: [RawConnection] = []
        for _ in 0..<count {
            let connection = try RawConnection(port: server.port)
            try connection.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(connection.readResponses(1).first?.status == 200)
            idle.append(connection)
        }
        #expect(server.connectionCount == count)
        // The thread-per-connection server held one per connection; now the event loops and at
        // most the few pool threads the answers above used (they end when idle).
        #expect(server.threadCount <= server.limits.eventLoops + 8, "\(server.threadCount) threads for \(count) idle connections")
        let fresh = try RawConnection(port: server.port)
        try fresh.send("GET /items/9 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(fresh.readResponses(1).first?.body == #"{"id":"9"}"#)
        // Every idle connection is still held and answers again.
        for connection in idle.enumerated().filter({ $0.offset % 50 == 0 }).map(\.element) {
            try connection.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(connection.readResponses(1).first?.body == "hello")
        }
    }

    /// Immediate handlers answer on the event loop: no worker thread starts, pipelined
    /// requests are answered in order, and `Connection: close` still closes after the answer.
    @Test func immediateHandlersAnswerOnTheLoopInOrder() throws {
        var router = Router()
        router.addImmediate("GET", "/n/:n") { request in HTTPResponse(body: Array(try request.parameter("n").utf8)) }
        router.addImmediate("POST", "/echo") { request in HTTPResponse(body: request.body) }
        router.addImmediate("GET", "/fail") { _ in throw HTTPError(.conflict, "no") }
        let server = try Self.started(router)
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        // 500 requests in one write: answered in order on one connection.
        var pipelined = ""
        for n in 0..<500 { pipelined += n % 2 == 0 ? "GET /n/\(n) HTTP/1.1\r\nHost: x\r\n\r\n" : "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(String(n).utf8.count)\r\n\r\n\(n)" }
        try connection.send(pipelined)
        let answers = connection.readResponses(500)
        #expect(answers.count == 500)
        #expect(answers.map(\.body) == (0..<500).map(String.init))
        #expect(server.threadCount == server.limits.eventLoops, "a worker thread started for an immediate handler")
        try connection.send("GET /fail HTTP/1.1\r\nHost: x\r\n\r\nGET /n/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /n/8 HTTP/1.1\r\nHost: x\r\n\r\n")
        let rest = String(decoding: connection.readUntilClosed(), as: UTF8.self)
        #expect(rest.hasPrefix("HTTP/1.1 409"))
        #expect(rest.contains(#"{"error":"no"}"#))
        #expect(rest.hasSuffix("\r\n\r\n7"), "the connection closes after the answer that asked it to: \(rest.suffix(80))")
    }

    /// A gate that suspended handlers wait at until the test opens it (from its own thread:
    /// no task of the shared pool is needed to open it).
    private final class Gate: @unchecked Sendable {
        private let lock = NSLock()
        private var waiting: [CheckedContinuation<Void, Never>] = []
        private var isOpen = false
        func pass() async {
            await withCheckedContinuation { continuation in
                let passes = lock.withLock { () -> Bool in
                    if isOpen { return true }
                    waiting.append(continuation)
                    return false
                }
                if passes { continuation.resume() }
            }
        }
        func open() {
            let released = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
                isOpen = true
                defer { waiting.removeAll() }
                return waiting
            }
            for continuation in released { continuation.resume() }
        }
    }

    /// Input that comes while a handler waits (a pipelined request, or the client's close)
    /// stays in the kernel until the answer is written, and the loop does not spin on it.
    @Test func inputWhileAHandlerWaitsWaitsWithoutWakingTheLoopAgainAndAgain() throws {
        let gate = Gate()
        var router = Self.router(parkingAt: gate, answering: "parked")
        router.addImmediate("GET", "/next") { _ in HTTPResponse(body: Array("next".utf8)) }
        let server = try Self.started(router) { $0.eventLoops = 1 }
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        try connection.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
        Self.waitUntil(server, handles: 1)
        let quiet = server.eventLoopWakeups
        try connection.send("GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        // The second request reached the loop (reported once), and waits in the kernel's buffer.
        let reported = monotonicSeconds() + 10
        while server.eventLoopWakeups == quiet, monotonicSeconds() < reported { usleep(1_000) }
        let before = server.eventLoopWakeups
        usleep(200_000)
        let woken = server.eventLoopWakeups - before
        #expect(woken < 20, "the loop woke \(woken) times in 0.2 s with input waiting behind a handler")
        gate.open()
        let answers = String(decoding: connection.readUntilClosed(), as: UTF8.self)
        #expect(answers.hasPrefix("HTTP/1.1 200"))
        #expect(answers.contains("parked") && answers.hasSuffix("next"), "answered in order: \(answers)")
    }

    /// A server on a free port with `router` (its limits changed by `adjust`), started.
    private static func started(_ router: Router, adjusting adjust: (inout ServerLimits) -> Void = { _ in }) throws -> HTTPServer {
        var limits = ServerLimits()
        adjust(&limits)
        let server = HTTPServer(port: 0, limits: limits, router: router)
        try server.start()
        return server
    }

    /// A router whose `GET /park` waits at `gate`, then answers `answer`.
    private static func router(parkingAt gate: Gate, answering answer: String) -> Router {
        var router = Router()
        router.addSuspending("GET", "/park") { _ in
            await gate.pass()
            return HTTPResponse(body: Array(answer.utf8))
        }
        return router
    }

    /// Waits (at most 10 s) until `count` requests are in the server's handlers.
    private static func waitUntil(_ server: HTTPServer, handles count: Int) {
        let deadline = monotonicSeconds() + 10
        while server.requestsInHandlers < count, monotonicSeconds() < deadline { usleep(2_000) }
    }

    @Test func suspendedHandlersHoldNoThreadAndAnswerWhenResumed() throws {
        let gate = Gate()
        var router = Self.router(parkingAt: gate, answering: "resumed")
        router.add("GET", "/hello") { _ in HTTPResponse(body: Array("hello".utf8)) }
        let server = try Self.started(router)
        defer { server.stop() }
        let parked = 300
        var connections: [RawConnection] = []
        for _ in 0..<parked {
            let connection = try RawConnection(port: server.port)
            try connection.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
            connections.append(connection)
        }
        Self.waitUntil(server, handles: parked)
        #expect(server.requestsInHandlers == parked)
        // Three hundred requests waiting, and no thread waits with them.
        #expect(server.threadCount <= server.limits.eventLoops + 1, "\(server.threadCount) threads while \(parked) handlers wait")
        // Answered even while every thread of the shared cooperative pool is blocked (the
        // handlers run on the server's event loops, not on that pool).
        let blockers = (0..<ProcessInfo.processInfo.activeProcessorCount * 2).map { _ in
            Task.detached { usleep(1_500_000) }
        }
        let other = try RawConnection(port: server.port)
        try other.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(other.readResponses(1).first?.body == "hello")
        gate.open()
        let resumedAt = monotonicSeconds()
        for connection in connections { #expect(connection.readResponses(1).first?.body == "resumed") }
        #expect(monotonicSeconds() - resumedAt < 1.4, "the answers waited for the blocked cooperative pool")
        #expect(server.requestsInHandlers == 0)
        for blocker in blockers { blocker.cancel() }
    }

    /// A suspending handler starts on the event loop and goes on there after its wait (no
    /// hand-off to another thread): one that never waits is answered inline, in order with
    /// pipelined requests, and one resumed from another thread finishes on a loop thread.
    @Test func suspendingHandlersRunOnTheLoopBeforeAndAfterTheirWait() throws {
        let places = LoopNotes()
        var router = Router()
        router.addSuspending("GET", "/now/:n") { request in
            places.note(after: false)
            return HTTPResponse(body: Array(try request.parameter("n").utf8))
        }
        router.addSuspending("GET", "/later/:n") { request in
            places.note(after: false)
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread { usleep(1_000); continuation.resume() }
            }
            places.note(after: true)
            return HTTPResponse(body: Array(try request.parameter("n").utf8))
        }
        let server = HTTPServer(port: 0, router: router)
        places.lock.withLock { places.server = server }
        try server.start()
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        var pipelined = ""
        for n in 0..<200 { pipelined += "GET /\(n % 10 == 3 ? "later" : "now")/\(n) HTTP/1.1\r\nHost: x\r\n\r\n" }
        try connection.send(pipelined)
        let answers = connection.readResponses(200)
        #expect(answers.map(\.body) == (0..<200).map(String.init))
        let (before, after) = places.lock.withLock { (places.before, places.after) }
        #expect(before.count == 200 && after.count == 20)
        #expect(before.allSatisfy { $0 } && after.allSatisfy { $0 }, "off the loop: \(before.filter { !$0 }.count) before, \(after.filter { !$0 }.count) after")
    }

    @Test func aSlowReaderOfAStreamIsHeldBackNotBuffered() throws {
        // The producer of a streamed answer waits while a megabyte is unwritten: a reader that
        // never reads cannot make the server buffer without bound.
        let written = Counter()
        var router = Router()
        router.add("GET", "/stream") { _ in
            var response = HTTPResponse(headers: HTTPHeaders([("Content-Type", "text/event-stream")]))
            response.stream = { write in
                let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)
                for _ in 0..<1_000 {
                    guard write(chunk) else { return }
                    written.add(chunk.count)
                }
            }
            return response
        }
        let server = try Self.started(router) { $0.writeTimeoutSeconds = 1 }
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        try connection.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        let started = monotonicSeconds() + 5
        while written.value == 0, monotonicSeconds() < started { usleep(1_000) }
        #expect(written.value > 0 && server.connectionCount == 1)
        // Not reading: the socket buffers fill, then the sink holds the producer back until
        // the write timeout ends the stream.
        let deadline = monotonicSeconds() + 10
        while server.connectionCount > 0, monotonicSeconds() < deadline { usleep(10_000) }
        #expect(server.connectionCount == 0, "a stream nobody reads was not ended by the write timeout")
        #expect(written.value < 16 * 1024 * 1024, "\(written.value) bytes produced for a reader that read none")
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var total = 0
    func add(_ amount: Int) { lock.withLock { total += amount } }
    var value: Int { lock.withLock { total } }
}
