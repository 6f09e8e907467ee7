#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Testing
@testable import Transport

@Suite(.serialized) struct PostChannelTests {
    typealias Received = ChannelRecord

    private func server(_ received: Received, limits: ServerLimits = ServerLimits()) throws -> HTTPServer {
        var router = Router()
        router.add("POST", "/in") { request in
            if request.body == Array("refused".utf8) { throw HTTPError(.forbidden, "not for us") }
            return received.lock.withLock {
                received.bodies.append(String(decoding: request.body, as: UTF8.self))
                received.arrivals.append(monotonicSeconds())
                return HTTPResponse(status: .noContent)
            }
        }
        let server = HTTPServer(port: 0, limits: limits, router: router)
        try server.start()
        return server
    }

    /// A channel whose messages are strings, one request per batch (joined by commas).
    private func channel(to port: Int, loop: ClientLoop, received: Received, maxQueued: Int = 4_096,
                         maxUnanswered: Int = 64, timeoutSeconds: Double = 0.5) -> PostChannel<String> {
        PostChannel(loop: loop, host: "127.0.0.1", port: port, path: "/in", headers: HTTPHeaders(),
                    maxQueued: maxQueued, maxUnanswered: maxUnanswered, timeoutSeconds: timeoutSeconds,
                    prepare: ChannelRecord.joined, report: received.count)
    }

    /// A server, a client loop and a channel to the server for `body`; all stopped after it.
    private func withChannel(_ received: Received, limits: ServerLimits = ServerLimits(),
                             _ body: (HTTPServer, PostChannel<String>) throws -> Void) throws {
        let server = try server(received, limits: limits)
        defer { server.stop() }
        let loop = try ClientLoop(name: "test-client")
        defer { loop.stop() }
        let channel = channel(to: server.port, loop: loop, received: received)
        defer { channel.close() }
        try body(server, channel)
    }

    @Test func messagesArriveInOrderOverOneConnectionAndAreCountedOnce() throws {
        let received = Received()
        try withChannel(received) { server, channel in
            for index in 0..<500 { channel.send(["m\(index)"]) }
            let delivered = { received.lock.withLock { received.bodies.flatMap { $0.split(separator: ",").map(String.init) } } }
            #expect(waitUntil { delivered().count == 500 })
            #expect(delivered() == (0..<500).map { "m\($0)" })
            #expect(received.lock.withLock { (received.sent, received.failed, received.rejected) } == (500, 0, 0))
            #expect(server.connectionCount == 1)
            #expect(channel.pending.messages == 0)
            // Answers are taken in before the next write. The server answers a connection's
            // requests in order, so once it has "last" every earlier answer was written; the
            // write of "final" then takes them in, leaving unread at most the answer to "last"
            // (it may still be on its way) and the one to "final". (Waiting only for the 500
            // and checking after "last" raced with the last of their answers: 2 in 25 runs.)
            channel.send(["last"])
            #expect(waitUntil { delivered().count == 501 })
            channel.send(["final"])
            #expect(waitUntil { delivered().count == 502 })
            #expect(channel.pending.unanswered <= 2)
        }
    }

    @Test func aRefusedRequestIsCountedRejectedAndTheConnectionGoesOn() throws {
        let received = Received()
        try withChannel(received) { server, channel in
            channel.send(["open"])
            #expect(waitUntil { received.lock.withLock { received.bodies } == ["open"] })
            // On an open connection each send is a request of its own, written at once.
            channel.send(["refused"])
            channel.send(["a", "b"])
            #expect(waitUntil { received.lock.withLock { received.bodies } == ["open", "a,b"] })
            channel.send(["c"])  // takes in the answers before it (the refusal was written before "a,b" was read)
            #expect(waitUntil { received.lock.withLock { received.bodies } == ["open", "a,b", "c"] })
            #expect(received.lock.withLock { (received.sent, received.failed, received.rejected) } == (5, 0, 1))
            #expect(server.connectionCount == 1)
        }
    }

    /// The bug this guards against: a post written into a connection the server had closed
    /// as idle vanished, and a Raft election waited a whole timeout for a lost pre-vote.
    @Test func messageAfterTheServerClosedAnIdleConnectionIsNotLost() throws {
        let received = Received()
        var limits = ServerLimits()
        limits.idleTimeoutSeconds = 0.2
        try withChannel(received, limits: limits) { server, channel in
            channel.send(["before"])
            #expect(waitUntil { received.lock.withLock { received.bodies } == ["before"] })
            #expect(waitUntil { server.connectionCount == 0 })  // the server closed it as idle
            #expect(waitUntil { !channel.isConnected })          // and the channel saw it go
            channel.send(["after"])
            #expect(waitUntil { received.lock.withLock { received.bodies } == ["before", "after"] })
        }
    }

    @Test func anUnreachablePeerCostsNoWaitAndItsMessagesAreCountedFailed() throws {
        let received = Received()
        let server = try server(received)
        let port = server.port
        server.stop()
        let loop = try ClientLoop(name: "test-client")
        defer { loop.stop() }
        let channel = channel(to: port, loop: loop, received: received)
        defer { channel.close() }
        let started = monotonicSeconds()
        for _ in 0..<10 { channel.send(["x", "y"]) }
        #expect(monotonicSeconds() - started < 0.5)
        #expect(waitUntil { received.lock.withLock { received.failed } == 20 })
        #expect(received.lock.withLock { received.sent } == 0)
        #expect(channel.pending.messages == 0)
    }

    /// A peer that accepts and then never reads (a paused process looks like this): the
    /// sender never blocks, at most `maxQueued` messages wait, and the connection is dropped
    /// once it made no progress for the timeout, its messages counted failed.
    @Test func aPeerThatNeverAnswersIsBoundedAndDroppedAfterTheTimeout() throws {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 8)
        defer { close(listener) }
        let received = Received()
        let loop = try ClientLoop(name: "test-client")
        defer { loop.stop() }
        let channel = channel(to: Socket.localPort(listener), loop: loop, received: received, maxQueued: 10, maxUnanswered: 2, timeoutSeconds: 0.3)
        defer { channel.close() }
        channel.send(["first"])
        #expect(waitUntil { channel.pending.unanswered == 1 })
        let secondSentAt = monotonicSeconds()
        channel.send(["second"])
        #expect(waitUntil { channel.pending.unanswered == 2 })  // the pipeline is full now
        let started = monotonicSeconds()
        for index in 0..<100 { channel.send(["queued\(index)"]) }
        #expect(monotonicSeconds() - started < 0.5)
        #expect(channel.pending.messages == 10)
        #expect(received.lock.withLock { received.failed } == 90)
        // No answer comes: after the timeout the connection goes, and what waits with it.
        #expect(waitUntil { received.lock.withLock { received.failed } == 100 })
        #expect(monotonicSeconds() - secondSentAt >= 0.29)
        #expect(received.lock.withLock { received.sent } == 2)
        #expect(channel.pending.messages == 0 && channel.pending.unanswered == 0)
    }

    @Test func delayedMessagesWaitTheirTimeAndKeepTheirOrder() throws {
        let received = Received()
        try withChannel(received) { _, channel in
            let started = monotonicSeconds()
            channel.send(["late"], delaySeconds: 0.2)
            channel.send(["behind"])  // no delay of its own, but must not overtake
            #expect(waitUntil { received.lock.withLock { received.bodies.joined(separator: ",").split(separator: ",").count } == 2 })
            let (bodies, arrivals) = received.lock.withLock { (received.bodies.flatMap { $0.split(separator: ",").map(String.init) }, received.arrivals) }
            #expect(bodies == ["late", "behind"])
            #expect(arrivals.allSatisfy { $0 - started >= 0.2 })
        }
    }

    @Test func closingDropsWhatWaitsAndLaterSendsDoNothing() throws {
        let received = Received()
        let server = try server(received)
        defer { server.stop() }
        let loop = try ClientLoop(name: "test-client")
        defer { loop.stop() }
        let channel = channel(to: server.port, loop: loop, received: received)
        channel.send(["a"], delaySeconds: 5)
        channel.close()
        channel.send(["b"])
        #expect(received.lock.withLock { received.failed } == 1)
        #expect(channel.pending.messages == 0)
        usleep(50_000)
        #expect(received.lock.withLock { received.bodies }.isEmpty)
    }

    @Test func answersAreReadWhateverWayTheyArrive() {
        var buffer = Array("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\nHTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\nConnection: close\r\n\r\nbu".utf8)
        let first = PostChannel<String>.takeAnswer(from: &buffer)
        #expect(first?.status == 204 && first?.closes == false)
        #expect(PostChannel<String>.takeAnswer(from: &buffer) == nil)  // the body is not all there
        buffer += Array("sy!".utf8)
        let second = PostChannel<String>.takeAnswer(from: &buffer)
        #expect(second?.status == 503 && second?.closes == true)
        #expect(buffer.isEmpty)
    }
}
