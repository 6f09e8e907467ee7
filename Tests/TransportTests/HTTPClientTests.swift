#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Testing
@testable import Transport

@Suite(.serialized) struct HTTPClientTests {
    @Test func reusesOneKeepAliveConnection() throws {
        let server = try startTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        for index in 0..<20 {
            let response = try client.postJSON(host: "127.0.0.1", port: server.port, path: "/echo", body: Array("[\(index)]".utf8))
            #expect(response.status == .ok && response.bodyText == "[\(index)]")
        }
        #expect(server.connectionCount == 1)
    }

    @Test func requestTimeoutIsHonouredBelowOneSecond() throws {
        let server = try startTestServer()
        defer { server.stop() }
        let client = HTTPClient()
        let started = monotonicSeconds()
        #expect { _ = try client.get(host: "127.0.0.1", port: server.port, path: "/slow?ms=1000", timeoutSeconds: 0.2) }
            throws: { ($0 as? HTTPClientError)?.kind == .timeout }
        let elapsed = monotonicSeconds() - started
        #expect(elapsed >= 0.19 && elapsed < 0.8)
    }

    @Test func refusedConnectionIsAConnectError() throws {
        let server = try startTestServer()
        let port = server.port
        server.stop()
        #expect { _ = try HTTPClient().get(host: "127.0.0.1", port: port, path: "/") } throws: { ($0 as? HTTPClientError)?.kind == .connect }
    }

    @Test func staleKeepAliveConnectionIsRetriedForIdempotentRequests() throws {
        var limits = ServerLimits()
        limits.idleTimeoutSeconds = 0.1
        let server = try startTestServer(limits: limits)
        defer { server.stop() }
        let client = HTTPClient()
        #expect(try client.get(host: "127.0.0.1", port: server.port, path: "/hello").status == .ok)
        usleep(300_000)  // the server closes the idle connection
        #expect(try client.get(host: "127.0.0.1", port: server.port, path: "/hello").status == .ok)
    }

    /// A request that must not be retried (POST) must not be sent on a pooled connection the
    /// server has closed meanwhile: found by a user killing a leader through the orchestrator.
    @Test func postAfterServerClosedIdleConnectionUsesAFreshOne() throws {
        var limits = ServerLimits()
        limits.idleTimeoutSeconds = 0.1
        let server = try startTestServer(limits: limits)
        defer { server.stop() }
        let client = HTTPClient()
        #expect(try client.postJSON(host: "127.0.0.1", port: server.port, path: "/echo", body: Array("[1]".utf8)).status == .ok)
        let deadline = Date().addingTimeInterval(3)
        while server.connectionCount > 0, Date() < deadline { usleep(10_000) }  // the server closed it
        #expect(try client.postJSON(host: "127.0.0.1", port: server.port, path: "/echo", body: Array("[2]".utf8)).bodyText == "[2]")
    }

    @Test func poolIsBoundedAndWaitersTimeOut() throws {
        let server = try startTestServer()
        defer { server.stop() }
        var configuration = HTTPClient.Configuration()
        configuration.maxConnectionsPerHost = 1
        let client = HTTPClient(configuration: configuration)
        let port = server.port
        let busy = Thread { _ = try? client.get(host: "127.0.0.1", port: port, path: "/slow?ms=500") }
        busy.start()
        usleep(100_000)
        #expect { _ = try client.get(host: "127.0.0.1", port: port, path: "/hello", timeoutSeconds: 0.1) }
            throws: { ($0 as? HTTPClientError)?.kind == .poolExhausted }
        #expect(try client.get(host: "127.0.0.1", port: port, path: "/hello", timeoutSeconds: 2).status == .ok)
    }

    @Test func readsChunkedAndCloseDelimitedAnswers() throws {
        let listener = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 8)
        defer { close(listener) }
        let port = Socket.localPort(listener)
        let answers = [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n",
            "HTTP/1.0 200 OK\r\n\r\nuntil close",
        ]
        let serverThread = Thread {
            for answer in answers {
                let connection = accept(listener, nil, nil)
                var chunk = [UInt8](repeating: 0, count: 4_096)
                _ = try? Socket.receive(connection, into: &chunk)
                try? Socket.sendAll(connection, Array(answer.utf8))
                close(connection)
            }
        }
        serverThread.start()
        let client = HTTPClient()
        #expect(try client.get(host: "127.0.0.1", port: port, path: "/").bodyText == "Wikipedia")
        #expect(try client.get(host: "127.0.0.1", port: port, path: "/").bodyText == "until close")
    }
}
