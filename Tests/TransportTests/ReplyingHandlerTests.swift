import Foundation
import Testing
@testable import Transport

/// Replying handlers (`Router.addReplying`): answered later, from any thread, without a task.
@Suite struct ReplyingHandlerTests {
    /// Where each step of a replying handler ran, per request.
    private final class Steps: @unchecked Sendable {
        let lock = NSLock()
        var server: HTTPServer?
        var started: [Bool] = []
        var resumed: [Bool] = []
        func note(_ isResumed: Bool) {
            lock.withLock {
                let onLoop = server?.isOnEventLoop ?? false
                if isResumed { resumed.append(onLoop) } else { started.append(onLoop) }
            }
        }
    }

    /// `/now/:n` answers at once; `/later/:n` answers after another thread hands the work back
    /// to the loop (`onLoop`); `/task/:n` hands the request to a suspending handler; `/fail`
    /// answers with an error; `/twice` answers twice (the second is ignored).
    private static func router(_ steps: Steps) -> Router {
        var router = Router()
        router.addReplying("GET", "/now/:n") { request, reply in
            steps.note(false)
            reply.send(HTTPResponse(body: Array(((try? request.parameter("n")) ?? "?").utf8)))
        }
        router.addReplying("GET", "/later/:n") { request, reply in
            steps.note(false)
            let n = (try? request.parameter("n")) ?? "?"
            Thread.detachNewThread {
                usleep(1_000)
                reply.onLoop {
                    steps.note(true)
                    reply.send(HTTPResponse(body: Array(n.utf8)))
                }
            }
        }
        router.addReplying("GET", "/task/:n") { _, reply in
            steps.note(false)
            reply.suspend { request in
                try await Task.sleep(nanoseconds: 1_000_000)
                steps.note(true)
                return HTTPResponse(body: Array(try request.parameter("n").utf8))
            }
        }
        router.addReplying("GET", "/fail") { _, reply in
            Thread.detachNewThread { reply.send(HTTPError(.conflict, "taken")) }
        }
        router.addReplying("GET", "/twice") { _, reply in
            reply.send(HTTPResponse(body: Array("first".utf8)))
            reply.send(HTTPResponse(body: Array("second".utf8)))
        }
        return router
    }

    @Test func answersComeInOrderAndDeferredWorkRunsOnTheLoop() throws {
        let steps = Steps()
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
        let (started, resumed) = steps.lock.withLock { (steps.started, steps.resumed) }
        #expect(started.count == 150 && resumed.count == 100)
        #expect(started.allSatisfy { $0 } && resumed.allSatisfy { $0 },
                "off the loop: \(started.filter { !$0 }.count) started, \(resumed.filter { !$0 }.count) resumed")
        #expect(server.requestsInHandlers == 0)
        // An error sent from another thread is the JSON error a throwing handler gives; a
        // second answer is ignored (the connection goes on with the next request).
        try connection.send("GET /fail HTTP/1.1\r\nHost: x\r\n\r\nGET /twice HTTP/1.1\r\nHost: x\r\n\r\nGET /now/7 HTTP/1.1\r\nHost: x\r\n\r\n")
        let more = connection.readResponses(3)
        #expect(more.map(\.status) == [409, 200, 200])
        #expect(more.map(\.body) == [#"{"error":"taken"}"#, "first", "7"])
    }

    @Test func outsideAServerTheCallerWaitsForTheAnswer() {
        let router = Self.router(Steps())
        #expect(router.respond(to: HTTPRequest(method: "GET", target: "/later/5")).bodyText == "5")
        #expect(router.respond(to: HTTPRequest(method: "GET", target: "/task/6")).bodyText == "6")
        let failed = router.respond(to: HTTPRequest(method: "GET", target: "/fail?pretty"))
        #expect(failed.status == .conflict && failed.bodyText.contains("\n"), "not indented on request: \(failed.bodyText)")
    }
}
