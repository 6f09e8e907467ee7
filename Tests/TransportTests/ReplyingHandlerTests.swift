import Foundation
import CEpoll
import Testing
@testable import Transport

/// Replying handlers (`Router.addReplying`): answered later, from any thread, without a task.
@Suite struct ReplyingHandlerTests {
    /// `/now/:n` answers at once; `/later/:n` answers after another thread hands the work back
    /// to the loop (`onLoop`); `/task/:n` hands the request to a suspending handler; `/fail`
    /// answers with an error; `/twice` answers twice (the second is ignored).
    private static func router(_ steps: LoopNotes) -> Router {
        var router = Router()
        router.addReplying("GET", "/now/:n") { request, reply in
            steps.note(after: false)
            reply.send(HTTPResponse(body: Array(((try? request.parameter("n")) ?? "?").utf8)))
        }
        router.addReplying("GET", "/later/:n") { request, reply in
            steps.note(after: false)
            let n = (try? request.parameter("n")) ?? "?"
            Thread.detachNewThread {
                usleep(1_000)
                reply.onLoop {
                    steps.note(after: true)
                    reply.send(HTTPResponse(body: Array(n.utf8)))
                }
            }
        }
        router.addReplying("GET", "/task/:n") { _, reply in
            steps.note(after: false)
            reply.suspend { request in
                try await Task.sleep(nanoseconds: 1_000_000)
                steps.note(after: true)
                return HTTPResponse(body: Array(try request.parameter("n").utf8))
            }
        }
        router.addReplying("GET", "/fail") { _, reply in
            Thread.detachNewThread { reply.send(HTTPError(.conflict, "taken")) }
        }
        router.addReplying("GET", "/inline") { _, reply in
            // On the loop already: the work runs at once, before `onLoop` returns.
            var ranAtOnce = false
            reply.onLoop { ranAtOnce = true }
            reply.send(HTTPResponse(body: Array("\(ranAtOnce)".utf8)))
        }
        router.addReplying("GET", "/twice") { _, reply in
            reply.send(HTTPResponse(body: Array("first".utf8)))
            reply.send(HTTPResponse(body: Array("second".utf8)))
        }
        return router
    }

    @Test func answersComeInOrderAndDeferredWorkRunsOnTheLoop() throws {
        let steps = LoopNotes()
        let server = HTTPServer(port: 0, router: Self.router(steps))
        steps.lock.withLock { steps.server = server }
        try server.start()
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        var pipelined = ""
        let kinds = ["now", "later", "task"]
        for n in 0..<150 { pipelined += "GET /\(kinds[n % 3])/\(n) HTTP/1.1\r\nHost: x\r\n\r\n" }
        try connection.send(pipelined)
        let answers = connection.readResponses(150)
        #expect(answers.map(\.body) == (0..<150).map(String.init))
        let (started, resumed) = steps.lock.withLock { (steps.before, steps.after) }
        #expect(started.count == 150 && resumed.count == 100)
        #expect(started.allSatisfy { $0 } && resumed.allSatisfy { $0 },
                "off the loop: \(started.filter { !$0 }.count) started, \(resumed.filter { !$0 }.count) resumed")
        #expect(server.requestsInHandlers == 0)
        // An error sent from another thread is the JSON error a throwing handler gives; a
        // second answer is ignored (the connection goes on with the next request).
        try connection.send("GET /fail HTTP/1.1\r\nHost: x\r\n\r\nGET /twice HTTP/1.1\r\nHost: x\r\n\r\nGET /now/7 HTTP/1.1\r\nHost: x\r\n\r\n"
                            + "GET /inline HTTP/1.1\r\nHost: x\r\n\r\n")
        let more = connection.readResponses(4)
        #expect(more.map(\.status) == [409, 200, 200, 200])
        #expect(more.map(\.body) == [#"{"error":"taken"}"#, "first", "7", "true"])
    }

    @Test func outsideAServerTheCallerWaitsForTheAnswer() {
        let router = Self.router(LoopNotes())
        #expect(router.respond(to: HTTPRequest(method: "GET", target: "/later/5")).bodyText == "5")
        #expect(router.respond(to: HTTPRequest(method: "GET", target: "/task/6")).bodyText == "6")
        let failed = router.respond(to: HTTPRequest(method: "GET", target: "/fail?pretty"))
        #expect(failed.status == .conflict && failed.bodyText.contains("\n"), "not indented on request: \(failed.bodyText)")
    }
}

/// The event loop's own order of work.
@Suite struct EventLoopOrderTests {
    private final class Order: @unchecked Sendable {
        private let lock = NSLock()
        private var steps: [String] = []
        func note(_ step: String) { lock.withLock { steps.append(step) } }
        var all: [String] { lock.withLock { steps } }
    }

    /// Work a handler hands its own loop runs before the next ready descriptor's handler (an
    /// answer made ready is written before the loop reads the next connection), and work
    /// handed from another thread still runs.
    @Test func workHandedToItsOwnLoopRunsBeforeTheNextEventsHandler() throws {
        let loop = try EventLoop(name: "test-order")
        loop.start()
        defer { loop.stop() }
        let order = Order()
        var pipes: [[Int32]] = []
        for _ in 0..<2 {
            var ends: [Int32] = [0, 0]
            #expect(pipe(&ends) == 0)
            pipes.append(ends)
        }
        defer { for ends in pipes { close(ends[0]); close(ends[1]) } }
        let registered = DispatchSemaphore(value: 0)
        loop.execute {
            for (n, ends) in pipes.enumerated() {
                _ = loop.register(ends[0], events: EPOLLIN.rawValue) { _ in
                    var byte: UInt8 = 0
                    _ = read(ends[0], &byte, 1)
                    order.note("event \(n)")
                    loop.execute { order.note("work of event \(n)") }
                }
            }
            registered.signal()
        }
        registered.wait()
        // Both made readable while the loop is busy, so that one epoll_wait returns both.
        let bothWritten = DispatchSemaphore(value: 0)
        loop.execute {
            var byte: UInt8 = 1
            for ends in pipes { _ = write(ends[1], &byte, 1) }
            bothWritten.signal()
        }
        bothWritten.wait()
        let deadline = monotonicSeconds() + 10
        while order.all.count < 4, monotonicSeconds() < deadline { usleep(1_000) }
        #expect(order.all == ["event 0", "work of event 0", "event 1", "work of event 1"])
        let fromOutside = DispatchSemaphore(value: 0)
        loop.execute { fromOutside.signal() }
        #expect(fromOutside.wait(timeout: .now() + 10) == .success)
    }
}
