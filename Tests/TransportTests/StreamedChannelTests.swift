#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Testing
@testable import Transport

/// A connection switched to frames (`101 Switching Protocols`, `FrameReader`) and
/// `PostChannel`'s streamed mode, which the nodes' Raft messages travel in.
@Suite(.serialized) struct StreamedChannelTests {
    final class Received: @unchecked Sendable {
        let record = ChannelRecord()
        let lock = NSLock()
        var closedStreams = 0
        var counts: (sent: Int, failed: Int, rejected: Int) { record.counts }
        var messages: [String] { record.messages }
    }

    /// A server whose `/stream` switches to frames when asked (a frame "refused" closes the
    /// stream) and answers 426 otherwise; `/refuse` answers 403 to anything.
    private func server(_ received: Received, limits: ServerLimits = ServerLimits()) throws -> HTTPServer {
        var router = Router()
        router.addImmediate("POST", "/stream") { request in
            guard request.upgradeProtocol == "test-frames" else { return HTTPResponse.error(.upgradeRequired, "ask for test-frames") }
            let reader = FrameReader(maxFrameBytes: 64 * 1_024, onFrame: { frame in
                let text = String(decoding: frame, as: UTF8.self)
                guard text != "refused" else { return false }
                received.record.lock.withLock { received.record.bodies.append(text) }
                return true
            }, onClose: { received.lock.withLock { received.closedStreams += 1 } })
            return .switchingProtocols(to: "test-frames", receiver: reader)
        }
        router.addImmediate("POST", "/refuse") { _ in HTTPResponse.error(.forbidden, "not for us") }
        let server = HTTPServer(port: 0, limits: limits, router: router)
        try server.start()
        return server
    }

    private func channel(to port: Int, path: String = "/stream", loop: ClientLoop, received: Received) -> PostChannel<String> {
        PostChannel(loop: loop, host: "127.0.0.1", port: port, path: path, headers: HTTPHeaders(), upgradeTo: "test-frames",
                    prepare: ChannelRecord.joined, report: received.record.count)
    }

    private func withChannel(_ received: Received, path: String = "/stream", limits: ServerLimits = ServerLimits(),
                             _ body: (HTTPServer, PostChannel<String>) throws -> Void) throws {
        let server = try server(received, limits: limits)
        defer { server.stop() }
        let loop = try ClientLoop(name: "test-client")
        defer { loop.stop() }
        let channel = channel(to: server.port, path: path, loop: loop, received: received)
        defer { channel.close() }
        try body(server, channel)
    }

    @Test func framesAreWholeAndInOrderHoweverTheBytesArrive() {
        var frames: [[UInt8]] = []
        let reader = FrameReader(maxFrameBytes: 100) { frames.append($0); return true }
        var wire: [UInt8] = []
        let payloads: [[UInt8]] = [Array("one".utf8), [], Array(repeating: 7, count: 100), Array("last".utf8)]
        for payload in payloads { FrameReader.frame(payload, into: &wire) }
        // Every way of cutting the bytes in two, and one byte at a time.
        for cut in 0...wire.count {
            frames = []
            #expect(reader.received(wire[..<cut]) && reader.received(wire[cut...]))
            #expect(frames == payloads)
        }
        frames = []
        for byte in wire { #expect(reader.received([byte][...])) }
        #expect(frames == payloads)
    }

    @Test func aFrameTooLargeOrRefusedEndsTheStream() {
        let reader = FrameReader(maxFrameBytes: 10) { $0 != Array("no".utf8) }
        var wire: [UInt8] = []
        FrameReader.frame(Array(repeating: 1, count: 11), into: &wire)
        // Refused on its length alone, before its bytes arrive.
        #expect(!reader.received(wire.prefix(4)))
        var refused: [UInt8] = []
        FrameReader.frame(Array("no".utf8), into: &refused)
        #expect(!FrameReader(maxFrameBytes: 10) { $0 != Array("no".utf8) }.received(refused[...]))
    }

    @Test func messagesStreamInOrderOverOneConnectionWithOneRequest() throws {
        let received = Received()
        try withChannel(received) { server, channel in
            let requestsBefore = server.requestsServed
            for index in 0..<500 { channel.send(["m\(index)"]) }
            #expect(waitUntil { received.messages.count == 500 })
            #expect(received.messages == (0..<500).map { "m\($0)" })
            #expect(received.counts == (500, 0, 0))
            #expect(server.connectionCount == 1)
            #expect(server.requestsServed - requestsBefore == 1)  // the switch alone: frames are not requests
            #expect(channel.pending.messages == 0 && channel.pending.unanswered == 0)
        }
    }

    /// A switched connection has no idle deadline (a quiet peer keeps its stream), and the
    /// server's stop closes it, telling the receiver.
    @Test func aStreamOutlivesTheIdleTimeoutAndClosesWithTheServer() throws {
        let received = Received()
        var limits = ServerLimits()
        limits.idleTimeoutSeconds = 0.2
        let server = try server(received, limits: limits)
        let loop = try ClientLoop(name: "test-client")
        defer { loop.stop() }
        let channel = channel(to: server.port, loop: loop, received: received)
        defer { channel.close() }
        channel.send(["before"])
        #expect(waitUntil { received.messages == ["before"] })
        usleep(500_000)
        #expect(server.connectionCount == 1 && channel.isConnected)
        channel.send(["after"])
        #expect(waitUntil { received.messages == ["before", "after"] })
        server.stop()
        #expect(received.lock.withLock { received.closedStreams } == 1)
        #expect(waitUntil { !channel.isConnected })
    }

    @Test func aRefusedFrameClosesTheStreamAndTheNextSendOpensAnother() throws {
        let received = Received()
        try withChannel(received) { server, channel in
            channel.send(["a"])
            #expect(waitUntil { received.messages == ["a"] })
            channel.send(["refused"])
            #expect(waitUntil { received.lock.withLock { received.closedStreams } == 1 })
            #expect(waitUntil { !channel.isConnected })
            channel.send(["b"])
            #expect(waitUntil { received.messages == ["a", "b"] })
            #expect(server.connectionCount == 1)
        }
    }

    @Test func aPeerThatDoesNotSwitchGetsItsMessagesCountedRejected() throws {
        let received = Received()
        try withChannel(received, path: "/refuse") { _, channel in
            channel.send(["x", "y"])
            #expect(waitUntil { received.counts.rejected == 2 })
            #expect(waitUntil { !channel.isConnected })
            #expect(received.messages.isEmpty)
        }
    }

    /// A frame not yet whole is held against the server's budget for bodies being read: a
    /// stream that would hold more than the budget is closed, and a whole one releases it.
    @Test func partialFramesCountAgainstTheServersBodyBudget() throws {
        let received = Received()
        var limits = ServerLimits()
        limits.maxBodyBytesInFlight = 40_000
        let server = try server(received, limits: limits)
        defer { server.stop() }
        let switchRequest = "POST /stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test-frames\r\nContent-Length: 0\r\n\r\n"
        // Within the budget: 30,000 bytes of a 50,000-byte frame are held, then it is whole.
        let within = try RawConnection(port: server.port)
        var frame: [UInt8] = []
        FrameReader.frame(Array(repeating: UInt8(ascii: "a"), count: 50_000), into: &frame)
        try within.send(Array(switchRequest.utf8) + frame.prefix(30_004))
        #expect(waitUntil { server.bodyBytesBeingRead == 30_004 })  // its length prefix held too
        try within.send(Array(frame[30_004...]))
        #expect(waitUntil { received.messages.count == 1 && server.bodyBytesBeingRead == 0 })
        // Beyond it: 45,000 bytes of another such frame, and the stream is closed.
        let beyond = try RawConnection(port: server.port)
        try beyond.send(Array(switchRequest.utf8) + frame.prefix(45_004))
        let answer = String(decoding: beyond.readUntilClosed(), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 101 "))
        // The receiver hears of the close just after the socket closes: the client may see it first.
        #expect(waitUntil { received.lock.withLock { received.closedStreams } >= 1 })
        #expect(waitUntil { server.bodyBytesBeingRead == 0 })
        #expect(received.messages.count == 1)
    }

    @Test func aPlainRequestToAStreamRouteIsAnsweredWithAnError() throws {
        let received = Received()
        let server = try server(received)
        defer { server.stop() }
        let client = HTTPClient()
        let response = try client.send("POST", host: "127.0.0.1", port: server.port, path: "/stream", body: Array("hello".utf8))
        #expect(response.status == .upgradeRequired)
        #expect(response.bodyText.contains("\"error\""))
        #expect(received.messages.isEmpty)
    }
}
