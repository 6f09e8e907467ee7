#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
@testable import Transport

/// A raw TCP connection for tests that must send exactly the bytes they choose.
final class RawConnection {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = try Socket.connect(host: "127.0.0.1", port: port, timeoutSeconds: 2)
    }

    deinit { close(descriptor) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }
    func send(_ bytes: [UInt8]) throws { try Socket.sendAll(descriptor, bytes) }

    /// Reads until the peer closes or `timeout` passes; returns what arrived.
    func readUntilClosed(timeout: Double = 5) -> [UInt8] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let deadline = monotonicSeconds() + timeout
        while monotonicSeconds() < deadline {
            Socket.setTimeout(descriptor, option: SO_RCVTIMEO, seconds: deadline - monotonicSeconds())
            guard let count = try? Socket.receive(descriptor, into: &chunk), count > 0 else { break }
            received.append(contentsOf: chunk[0..<count])
        }
        return received
    }

    /// Reads until `count` complete responses have arrived (by Content-Length), or times out.
    func readResponses(_ count: Int, timeout: Double = 5) -> [(status: Int, body: String)] {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let deadline = monotonicSeconds() + timeout
        var responses: [(Int, String)] = []
        while responses.count < count, monotonicSeconds() < deadline {
            while let parsed = Self.parseResponse(&buffer) { responses.append(parsed) }
            if responses.count >= count { break }
            Socket.setTimeout(descriptor, option: SO_RCVTIMEO, seconds: max(0.001, deadline - monotonicSeconds()))
            guard let received = try? Socket.receive(descriptor, into: &chunk), received > 0 else { break }
            buffer.append(contentsOf: chunk[0..<received])
        }
        while responses.count < count, let parsed = Self.parseResponse(&buffer) { responses.append(parsed) }
        return responses
    }

    /// Removes one whole response from the front of `buffer`, if there is one.
    static func parseResponse(_ buffer: inout [UInt8]) -> (Int, String)? {
        let text = String(decoding: buffer, as: UTF8.self)
        guard let headEnd = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<headEnd.lowerBound]
        let parts = head.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        let headBytes = text[..<headEnd.upperBound].utf8.count
        if status == 100 {
            buffer.removeFirst(headBytes)
            return parseResponse(&buffer)
        }
        var length = 0
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
        }
        guard buffer.count >= headBytes + length else { return nil }
        let body = String(decoding: buffer[headBytes..<(headBytes + length)], as: UTF8.self)
        buffer.removeFirst(headBytes + length)
        return (status, body)
    }
}

/// A server on a free port with a few test routes; stopped by the caller.
func startTestServer(limits: ServerLimits = ServerLimits()) throws -> HTTPServer {
    var router = Router()
    router.add("GET", "/hello") { _ in HTTPResponse(body: Array("hello".utf8)) }
    router.add("POST", "/echo") { request in HTTPResponse(headers: HTTPHeaders([("Content-Type", "application/json")]), body: request.body) }
    router.add("GET", "/slow") { request in
        usleep(UInt32((Double(request.query["ms"] ?? "200") ?? 200) * 1_000))
        return HTTPResponse(body: Array("slow".utf8))
    }
    router.add("GET", "/items/:id") { request in JSONBody.response(["id": try request.parameter("id")], for: request) }
    let server = HTTPServer(port: 0, limits: limits, router: router)
    try server.start()
    return server
}
