#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Why a client request failed. `kind` says whether the server may have acted on it.
public struct HTTPClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// No connection could be made: the request was not sent.
        case connect
        /// No complete answer within the timeout: the server may or may not have acted.
        case timeout
        /// The connection failed or closed before a complete answer.
        case connection
        /// The answer was not valid HTTP or exceeded the response limit.
        case malformedResponse
        /// Every connection to the host was busy for the whole timeout: not sent.
        case poolExhausted
    }

    /// Whether the server may have acted on the request (see `Kind`).
    public let kind: Kind
    /// What went wrong, in words.
    public let message: String
    public var description: String { "\(kind.rawValue): \(message)" }
}

/// A blocking HTTP/1.1 client with a bounded keep-alive connection pool per host:port.
///
/// Safe to use from many threads. A request that fails on a reused connection before any
/// answer byte arrived is retried once on a fresh connection when it is idempotent (GET,
/// HEAD, PUT, DELETE, or when the caller says so): that is the stale keep-alive case.
public final class HTTPClient: @unchecked Sendable {
    /// The client's bounds.
    public struct Configuration: Sendable {
        /// Open connections per host:port; callers beyond it wait (up to their timeout).
        public var maxConnectionsPerHost = 32
        public var connectTimeoutSeconds = 1.0
        public var requestTimeoutSeconds = 5.0
        /// Largest answer accepted: protects the caller's memory from a runaway server.
        public var maxResponseBytes = 64 * 1024 * 1024
        /// Idle pooled connections older than this are closed rather than reused.
        public var maxIdleSeconds = 30.0
        public init() {}
    }

    private final class HostPool {
        var idle: [(descriptor: Int32, since: Double)] = []
        var openCount = 0
    }

    public let configuration: Configuration
    private let lock = NSCondition()
    private var pools: [String: HostPool] = [:]

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        Socket.ignoreBrokenPipes()
    }

    deinit {
        for pool in pools.values { for connection in pool.idle { close(connection.descriptor) } }
    }

    /// Sends a request and returns the answer, whatever its status.
    public func send(_ method: String, host: String, port: Int, path: String, headers: HTTPHeaders = HTTPHeaders(),
                     body: [UInt8] = [], timeoutSeconds: Double? = nil, isIdempotent: Bool? = nil) throws(HTTPClientError) -> HTTPResponse
    {
        let deadline = monotonicSeconds() + (timeoutSeconds ?? configuration.requestTimeoutSeconds)
        let request = serialize(method, host: host, port: port, path: path, headers: headers, body: body)
        let canRetry = isIdempotent ?? ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"].contains(method)
        let key = "\(host):\(port)"
        var attempt = 0
        while true {
            attempt += 1
            let (descriptor, isReused) = try acquire(key: key, host: host, port: port, deadline: deadline)
            do {
                let (response, keepAlive) = try exchange(descriptor, request: request, isHead: method == "HEAD", deadline: deadline)
                release(key: key, descriptor: descriptor, reusable: keepAlive)
                return response
            } catch let failure {
                release(key: key, descriptor: descriptor, reusable: false)
                if isReused && !failure.receivedAnything && failure.error.kind == .connection && canRetry && attempt == 1 {
                    continue
                }
                throw failure.error
            }
        }
    }

    /// GETs `path`.
    public func get(host: String, port: Int, path: String, timeoutSeconds: Double? = nil) throws(HTTPClientError) -> HTTPResponse {
        try send("GET", host: host, port: port, path: path, timeoutSeconds: timeoutSeconds)
    }

    /// POSTs a JSON body.
    public func postJSON(host: String, port: Int, path: String, body: [UInt8], timeoutSeconds: Double? = nil,
                         isIdempotent: Bool = false) throws(HTTPClientError) -> HTTPResponse
    {
        try send("POST", host: host, port: port, path: path, headers: HTTPHeaders([("Content-Type", "application/json")]),
                 body: body, timeoutSeconds: timeoutSeconds, isIdempotent: isIdempotent)
    }

    /// Closes every idle pooled connection (for example to a peer known to be gone).
    public func closeIdleConnections() {
        lock.lock()
        let idle = pools.values.flatMap { pool -> [Int32] in
            defer { pool.openCount -= pool.idle.count; pool.idle.removeAll() }
            return pool.idle.map(\.descriptor)
        }
        lock.broadcast()
        lock.unlock()
        for descriptor in idle { close(descriptor) }
    }

    private func serialize(_ method: String, host: String, port: Int, path: String, headers: HTTPHeaders, body: [UInt8]) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        for (name, value) in headers.fields where !name.caseInsensitiveEquals("content-length") && !name.caseInsensitiveEquals("host") {
            head += name + ": " + value + "\r\n"
        }
        if !body.isEmpty || method == "POST" || method == "PUT" || method == "PATCH" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
        bytes.append(contentsOf: body)
        return bytes
    }

    private func acquire(key: String, host: String, port: Int, deadline: Double) throws(HTTPClientError) -> (Int32, Bool) {
        lock.lock()
        let pool: HostPool
        if let existing = pools[key] {
            pool = existing
        } else {
            pool = HostPool()
            pools[key] = pool
        }
        while true {
            while let connection = pool.idle.popLast() {
                // A connection the server closed while it sat idle (its idle timeout, or the
                // process died) would take the request and fail it; for a request that must not
                // be retried that would be an error the caller cannot resolve.
                if monotonicSeconds() - connection.since < configuration.maxIdleSeconds, !Socket.isClosedByPeer(connection.descriptor) {
                    lock.unlock()
                    return (connection.descriptor, true)
                }
                pool.openCount -= 1
                close(connection.descriptor)
            }
            if pool.openCount < configuration.maxConnectionsPerHost {
                pool.openCount += 1
                lock.unlock()
                do {
                    let remaining = deadline - monotonicSeconds()
                    let descriptor = try Socket.connect(host: host, port: port, timeoutSeconds: min(configuration.connectTimeoutSeconds, max(remaining, 0.001)))
                    return (descriptor, false)
                } catch {
                    lock.lock()
                    pool.openCount -= 1
                    lock.signal()
                    lock.unlock()
                    throw HTTPClientError(kind: error.isTimeout ? .timeout : .connect, message: error.description)
                }
            }
            let remaining = deadline - monotonicSeconds()
            guard remaining > 0, lock.wait(until: Date(timeIntervalSinceNow: remaining)) || !pool.idle.isEmpty || pool.openCount < configuration.maxConnectionsPerHost else {
                lock.unlock()
                throw HTTPClientError(kind: .poolExhausted, message: "all \(configuration.maxConnectionsPerHost) connections to \(key) busy")
            }
        }
    }

    private func release(key: String, descriptor: Int32, reusable: Bool) {
        lock.lock()
        if reusable, let pool = pools[key] {
            pool.idle.append((descriptor, monotonicSeconds()))
        } else {
            pools[key]?.openCount -= 1
            close(descriptor)
        }
        lock.signal()
        lock.unlock()
    }

    private struct ExchangeFailure: Error {
        var error: HTTPClientError
        var receivedAnything: Bool
    }

    /// Writes the request and reads one answer; returns it and whether the connection may be reused.
    private func exchange(_ descriptor: Int32, request: [UInt8], isHead: Bool, deadline: Double) throws(ExchangeFailure) -> (HTTPResponse, Bool) {
        var reader = ResponseReader(descriptor: descriptor, deadline: deadline, maxBytes: configuration.maxResponseBytes)
        Socket.setTimeout(descriptor, option: SO_SNDTIMEO, seconds: deadline - monotonicSeconds())
        do {
            try Socket.sendAll(descriptor, request)
        } catch {
            throw ExchangeFailure(error: HTTPClientError(kind: error.isTimeout ? .timeout : .connection, message: error.description), receivedAnything: false)
        }
        do {
            return try reader.readResponse(isHead: isHead)
        } catch {
            throw ExchangeFailure(error: error, receivedAnything: reader.receivedAnything)
        }
    }
}

/// Reads one HTTP response from a blocking socket, within a deadline.
struct ResponseReader {
    let descriptor: Int32
    let deadline: Double
    let maxBytes: Int
    private var buffer: [UInt8] = []
    private var offset = 0
    private var isEnd = false
    private var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    var receivedAnything: Bool { !buffer.isEmpty }

    init(descriptor: Int32, deadline: Double, maxBytes: Int) {
        self.descriptor = descriptor
        self.deadline = deadline
        self.maxBytes = maxBytes
    }

    private mutating func fill() throws(HTTPClientError) {
        guard !isEnd else { throw HTTPClientError(kind: .connection, message: "connection closed before the answer was complete") }
        let remaining = deadline - monotonicSeconds()
        guard remaining > 0 else { throw HTTPClientError(kind: .timeout, message: "no complete answer in time") }
        guard buffer.count <= maxBytes else { throw HTTPClientError(kind: .malformedResponse, message: "answer larger than \(maxBytes) bytes") }
        Socket.setTimeout(descriptor, option: SO_RCVTIMEO, seconds: remaining)
        do {
            let count = try Socket.receive(descriptor, into: &chunk)
            if count == 0 { isEnd = true } else { buffer.append(contentsOf: chunk[0..<count]) }
        } catch {
            throw HTTPClientError(kind: error.isTimeout ? .timeout : .connection, message: error.description)
        }
    }

    private mutating func readLine() throws(HTTPClientError) -> String {
        while true {
            if let newline = buffer[offset...].firstIndex(of: 0x0A) {
                let end = newline > offset && buffer[newline - 1] == 0x0D ? newline - 1 : newline
                let line = String(decoding: buffer[offset..<end], as: UTF8.self)
                offset = newline + 1
                return line
            }
            if buffer.count - offset > 64 * 1024 { throw HTTPClientError(kind: .malformedResponse, message: "answer line too long") }
            try fill()
        }
    }

    private mutating func readBytes(_ count: Int) throws(HTTPClientError) -> [UInt8] {
        guard count <= maxBytes else { throw HTTPClientError(kind: .malformedResponse, message: "answer larger than \(maxBytes) bytes") }
        while buffer.count - offset < count { try fill() }
        defer { offset += count }
        return Array(buffer[offset..<(offset + count)])
    }

    mutating func readResponse(isHead: Bool) throws(HTTPClientError) -> (HTTPResponse, Bool) {
        var statusLine = try readLine()
        var status = try parseStatus(statusLine)
        var headers = try readHeaders()
        while status.rawValue >= 100 && status.rawValue < 200 {  // interim answers (100 Continue)
            statusLine = try readLine()
            status = try parseStatus(statusLine)
            headers = try readHeaders()
        }
        let isHTTP10 = statusLine.hasPrefix("HTTP/1.0")
        let connection = headers["connection"]?.lowercased() ?? ""
        var keepAlive = isHTTP10 ? connection.contains("keep-alive") : !connection.contains("close")
        var body: [UInt8] = []
        if isHead || status == .noContent || status.rawValue == 304 {
            // No body by definition.
        } else if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = try readLine()
                let sizeText = sizeLine.split(separator: ";").first.map { $0.trimmingASCIISpaces() } ?? ""
                guard let size = Int(sizeText, radix: 16), size >= 0 else {
                    throw HTTPClientError(kind: .malformedResponse, message: "invalid chunk size \(JSONText.quote(sizeLine))")
                }
                if size == 0 {
                    while try !readLine().isEmpty {}
                    break
                }
                guard body.count + size <= maxBytes else { throw HTTPClientError(kind: .malformedResponse, message: "answer larger than \(maxBytes) bytes") }
                body.append(contentsOf: try readBytes(size))
                _ = try readLine()
            }
        } else if let lengthText = headers["content-length"] {
            guard let length = Int(lengthText.trimmingASCIISpaces()), length >= 0 else {
                throw HTTPClientError(kind: .malformedResponse, message: "invalid Content-Length \(JSONText.quote(lengthText))")
            }
            body = try readBytes(length)
        } else {
            // Delimited by the end of the connection.
            while !isEnd { try fill() }
            body = Array(buffer[offset...])
            offset = buffer.count
            keepAlive = false
        }
        if offset != buffer.count { keepAlive = false }  // unexpected extra bytes: do not reuse
        return (HTTPResponse(status: status, headers: headers, body: body), keepAlive)
    }

    private func parseStatus(_ line: String) throws(HTTPClientError) -> HTTPStatus {
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]), (100...999).contains(code) else {
            throw HTTPClientError(kind: .malformedResponse, message: "invalid status line \(JSONText.quote(String(line.prefix(80))))")
        }
        return HTTPStatus(rawValue: code)
    }

    private mutating func readHeaders() throws(HTTPClientError) -> HTTPHeaders {
        var headers = HTTPHeaders()
        while true {
            let line = try readLine()
            if line.isEmpty { return headers }
            guard let colon = line.firstIndex(of: ":") else {
                throw HTTPClientError(kind: .malformedResponse, message: "header line without a colon")
            }
            headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingASCIISpaces())
            guard headers.fields.count <= 200 else { throw HTTPClientError(kind: .malformedResponse, message: "too many header fields") }
        }
    }
}
