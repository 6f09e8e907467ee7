#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Posts to one endpoint over one keep-alive connection without waiting for each answer:
/// requests are written back to back (HTTP/1.1 pipelining) and answers are read when they
/// have already arrived, so a sender wakes once per message, not twice. For one-way traffic
/// whose answers carry nothing (Raft messages: 204). Not thread-safe: one sending thread.
public final class PipelinedPoster {
    public let host: String
    public let port: Int
    private let head: [UInt8]
    /// Unanswered posts allowed before a send waits for answers: bounds what the server buffers.
    public let maxUnanswered: Int
    private var descriptor: Int32 = -1
    private var unanswered = 0
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 4_096)
    /// Answers with a status of 300 or more, seen so far.
    public private(set) var failedAnswers = 0
    private var lastUsed = 0.0
    /// Idle time after which the connection is replaced rather than reused: well below the
    /// servers' 60 s idle timeout, so a post never races the server closing it.
    static let maxIdleSeconds = 20.0

    public init(host: String, port: Int, path: String, headers: HTTPHeaders, maxUnanswered: Int = 64) {
        self.host = host
        self.port = port
        self.maxUnanswered = maxUnanswered
        var text = "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        for (name, value) in headers.fields { text += name + ": " + value + "\r\n" }
        head = Array(text.utf8)
    }

    deinit { disconnect() }

    /// Sends one post. Throws when the peer cannot be reached; the message is then lost (the
    /// caller's protocol must tolerate that).
    public func post(_ body: [UInt8], timeoutSeconds: Double) throws(SocketError) {
        // A connection the server may have closed as idle, or that it did close, would take
        // this post and lose it without a word: open a fresh one instead.
        readAnswers(blocking: false)
        if descriptor >= 0 && (monotonicSeconds() - lastUsed > Self.maxIdleSeconds || Socket.isClosedByPeer(descriptor)) { disconnect() }
        lastUsed = monotonicSeconds()
        if descriptor < 0 {
            descriptor = try Socket.connect(host: host, port: port, timeoutSeconds: timeoutSeconds)
            Socket.setTimeout(descriptor, option: SO_SNDTIMEO, seconds: timeoutSeconds)
        }
        var request = head
        request.append(contentsOf: Array("Content-Length: \(body.count)\r\n\r\n".utf8))
        request.append(contentsOf: body)
        do throws(SocketError) {
            while descriptor >= 0 && unanswered >= maxUnanswered { readAnswers(blocking: true, timeoutSeconds: timeoutSeconds) }
            guard descriptor >= 0 else { throw SocketError(operation: "post to \(host):\(port)", code: ECONNRESET) }
            try Socket.sendAll(descriptor, request)
            unanswered += 1
        } catch {
            disconnect()
            throw error
        }
    }

    /// Sends one post only if it can be done without blocking: on an open, fresh connection
    /// with room for more unanswered posts, in one non-blocking write. Returns false (nothing
    /// sent) otherwise. A write that goes out only in part drops the connection: the post is
    /// then lost, which the caller's protocol tolerates.
    public func postWithoutBlocking(_ body: [UInt8]) -> Bool {
        guard descriptor >= 0, monotonicSeconds() - lastUsed <= Self.maxIdleSeconds else { return false }
        readAnswers(blocking: false)
        guard descriptor >= 0, unanswered < maxUnanswered, !Socket.isClosedByPeer(descriptor) else { return false }
        var request = head
        request.append(contentsOf: Array("Content-Length: \(body.count)\r\n\r\n".utf8))
        request.append(contentsOf: body)
        let written = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
        if written == request.count {
            unanswered += 1
            lastUsed = monotonicSeconds()
            return true
        }
        if written > 0 { disconnect() }  // part of a request is on the wire: the stream is unusable
        return written > 0
    }

    /// Closes the connection; unanswered posts are forgotten.
    public func disconnect() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        unanswered = 0
        buffer.removeAll()
    }

    /// Reads and discards answers that arrived (or waits for one when `blocking`).
    private func readAnswers(blocking: Bool, timeoutSeconds: Double = 1) {
        while descriptor >= 0 && unanswered > 0 {
            if blocking { Socket.setTimeout(descriptor, option: SO_RCVTIMEO, seconds: timeoutSeconds) }
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, blocking ? 0 : Int32(MSG_DONTWAIT)) }
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                while consumeAnswer() {}
                if blocking { return }
                continue
            }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && !blocking { return }
            disconnect()  // closed by the server, or an error: reconnect on the next post
            return
        }
    }

    /// Removes one whole answer from the buffer, if there is one.
    private func consumeAnswer() -> Bool {
        guard let end = headEnd() else { return false }
        let headText = String(decoding: buffer[..<end], as: UTF8.self)
        var length = 0
        for line in headText.split(separator: "\r\n") {
            let lower = line.lowercased()
            if lower.hasPrefix("content-length:") { length = Int(lower.dropFirst(15).trimmingASCIISpaces()) ?? 0 }
        }
        guard buffer.count >= end + length else { return false }
        let status = headText.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        if status >= 300 { failedAnswers += 1 }
        buffer.removeFirst(end + length)
        if status >= 200 { unanswered -= 1 }
        if headText.lowercased().contains("connection: close") { disconnect() }
        return true
    }

    private func headEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for position in 0...(buffer.count - 4)
        where buffer[position] == 13 && buffer[position + 1] == 10 && buffer[position + 2] == 13 && buffer[position + 3] == 10 {
            return position + 4
        }
        return nil
    }
}
