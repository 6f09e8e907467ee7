#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An HTTP/1.1 server over POSIX sockets: one accept thread and one thread per connection,
/// so a handler may block without holding up anyone else. At its connection cap it closes
/// the connection idle longest rather than refuse a new client.
///
/// Keep-alive and HTTP/1.0, pipelined requests answered in order, Content-Length and
/// chunked bodies, `Expect: 100-continue`. Every limit in `ServerLimits` is enforced and
/// answered (431, 413, 503, 408); a slow or silent client is closed by its deadline.
/// `stop()` stops accepting, lets in-flight requests finish, and closes the rest.
public final class HTTPServer: @unchecked Sendable {
    public let host: String
    public let limits: ServerLimits
    private let router: Router
    private let lock = NSLock()
    private var listener: Int32 = -1
    private var boundPort: Int
    /// What the server knows of one open connection (guarded by `lock`).
    private struct Connection {
        /// The client's IP address (without the port), for the per-address cap.
        var address: String
        /// A handler is running for it: it is never closed to make room.
        var isBusy = false
        /// When it last started or finished a request (monotonic seconds): the one idle
        /// longest is closed first when room is needed.
        var lastActivity: Double
        /// Closed to make room; its thread is on its way out.
        var isEvicted = false
    }

    private var connections: [Int32: Connection] = [:]
    /// Bytes reserved by request bodies being read now (`ServerLimits.maxBodyBytesInFlight`).
    private var bodyBytesInFlight = 0
    private var evictedCount = 0
    private var isStopping = false
    private var acceptThreadDone = true
    private var requestCount = 0
    private var refusedCount = 0
    private var lastConnectionID: UInt64 = 0
    private var connectionClosed: (@Sendable (UInt64) -> Void)?

    /// Called with a connection's number (`HTTPRequest.connectionID`) once it is closed, by
    /// either side: a node learns that a peer's process died from the close of the connection
    /// that peer sends on.
    public func onConnectionClosed(_ handler: @escaping @Sendable (_ connection: UInt64) -> Void) {
        lock.withLock { connectionClosed = handler }
    }

    /// A server for `router` on `host:port` (port 0 picks a free port; read `port` after `start`).
    public init(host: String = "127.0.0.1", port: Int, limits: ServerLimits = ServerLimits(), router: Router) {
        self.host = host
        self.boundPort = port
        self.limits = limits
        self.router = router
    }

    /// The port the server listens on.
    public var port: Int { lock.withLock { boundPort } }
    /// Connections open now.
    public var connectionCount: Int { lock.withLock { connections.count } }
    /// Requests answered so far.
    public var requestsServed: Int { lock.withLock { requestCount } }
    /// Connections refused with 503 because the cap was reached with every connection busy.
    public var connectionsRefused: Int { lock.withLock { refusedCount } }
    /// Requests whose handler is running now.
    public var requestsInHandlers: Int { lock.withLock { connections.values.filter(\.isBusy).count } }
    /// Bytes reserved by request bodies being read now.
    public var bodyBytesBeingRead: Int { lock.withLock { bodyBytesInFlight } }
    /// Idle connections closed to make room for new ones.
    public var connectionsEvicted: Int { lock.withLock { evictedCount } }

    /// True when `host:port` can be bound now (nothing listens there).
    public static func isPortFree(host: String = "127.0.0.1", port: Int) -> Bool {
        guard let descriptor = try? Socket.listen(host: host, port: port, backlog: 1) else { return false }
        close(descriptor)
        return true
    }

    /// Binds and starts accepting. Throws when the port is taken, naming it.
    public func start() throws(SocketError) {
        let descriptor = try Socket.listen(host: host, port: boundPort, backlog: 4_096)
        lock.withLock {
            listener = descriptor
            boundPort = Socket.localPort(descriptor)
            acceptThreadDone = false
        }
        let thread = Thread { [self] in acceptLoop(descriptor) }
        thread.name = "http-accept-\(boundPort)"
        thread.start()
    }

    /// Stops accepting, waits up to `graceSeconds` for in-flight requests, then closes every connection.
    public func stop(graceSeconds: Double = 5) {
        let (descriptor, idle) = lock.withLock { () -> (Int32, [Int32]) in
            isStopping = true
            let descriptor = listener
            listener = -1
            return (descriptor, connections.filter { !$0.value.isBusy }.map(\.key))
        }
        if descriptor >= 0 { shutdown(descriptor, Int32(SHUT_RDWR)) }
        for connection in idle { shutdown(connection, Int32(SHUT_RD)) }
        let deadline = monotonicSeconds() + graceSeconds
        while monotonicSeconds() < deadline {
            let done = lock.withLock { connections.isEmpty && acceptThreadDone }
            if done { break }
            usleep(2_000)
        }
        let remaining = lock.withLock { Array(connections.keys) }
        for connection in remaining { shutdown(connection, Int32(SHUT_RDWR)) }
        if descriptor >= 0 { close(descriptor) }
    }

    private func acceptLoop(_ descriptor: Int32) {
        defer { lock.withLock { acceptThreadDone = true } }
        while true {
            let client = accept(descriptor, nil, nil)
            if client < 0 {
                let code = errno
                if lock.withLock({ isStopping }) { return }
                if code == EINTR || code == ECONNABORTED { continue }
                if code == EMFILE || code == ENFILE || code == ENOMEM || code == ENOBUFS {
                    usleep(10_000)  // out of descriptors: back off instead of spinning
                    continue
                }
                return
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let address = Socket.peerAddress(client).map { String($0[..<($0.lastIndex(of: ":") ?? $0.endIndex)]) } ?? "?"
            let admitted = lock.withLock { () -> Bool in
                guard !isStopping, makeRoom(for: address) else {
                    refusedCount += 1
                    return false
                }
                connections[client] = Connection(address: address, lastActivity: monotonicSeconds())
                return true
            }
            guard admitted else {
                refuse(client)
                continue
            }
            let thread = Thread { [self] in serve(client) }
            thread.stackSize = limits.threadStackBytes
            thread.start()
        }
    }

    /// Makes room for one more connection from `address` (the caller holds `lock`): over the
    /// per-address cap, that address's connection idle longest is closed; over the total cap,
    /// the one idle longest of the address with the most connections. False when every
    /// candidate is busy in a handler.
    private func makeRoom(for address: String) -> Bool {
        var live = connections.filter { !$0.value.isEvicted }
        var counts: [String: Int] = [:]
        for connection in live.values { counts[connection.address, default: 0] += 1 }
        if counts[address, default: 0] >= limits.maxConnectionsPerAddress {
            guard let evicted = evictIdlest(among: live.filter { $0.value.address == address }) else { return false }
            live[evicted] = nil
            counts[address, default: 0] -= 1
        }
        if live.count >= limits.maxConnections {
            let busiest = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key
            guard evictIdlest(among: live.filter { $0.value.address == busiest }) ?? evictIdlest(among: live) != nil else { return false }
        }
        return true
    }

    /// Closes the connection idle longest among `candidates` (none in a handler); returns it.
    private func evictIdlest(among candidates: [Int32: Connection]) -> Int32? {
        guard let (descriptor, _) = candidates.filter({ !$0.value.isBusy && !$0.value.isEvicted })
            .min(by: { $0.value.lastActivity < $1.value.lastActivity })
        else { return nil }
        connections[descriptor]?.isEvicted = true
        evictedCount += 1
        // Its thread sees end of input at once (an answer it is writing still goes out) and
        // closes the descriptor (never reused before that).
        shutdown(descriptor, Int32(SHUT_RD))
        return descriptor
    }

    /// Answers 503 to a connection over the cap and closes it, without reading its request.
    private func refuse(_ client: Int32) {
        Socket.setTimeout(client, option: SO_SNDTIMEO, seconds: 0.2)
        var response = HTTPResponse.error(.serviceUnavailable, "too many connections (limit \(limits.maxConnections)); retry later")
        response.headers.set("Retry-After", "1")
        try? Socket.sendAll(client, response.serialized(keepAlive: false))  // best effort: the client may be gone
        close(client)
    }

    private func setBusy(_ client: Int32, _ isBusy: Bool) -> Bool {
        lock.withLock {
            connections[client]?.isBusy = isBusy
            connections[client]?.lastActivity = monotonicSeconds()
            return isStopping || connections[client]?.isEvicted == true
        }
    }

    private func noteRequestStarted(_ client: Int32) {
        lock.withLock { connections[client]?.lastActivity = monotonicSeconds() }
    }

    /// Reserves `bytes` of the body budget; false when the bodies being read already hold it.
    private func reserveBody(_ bytes: Int) -> Bool {
        lock.withLock {
            guard bodyBytesInFlight + bytes <= limits.maxBodyBytesInFlight else { return false }
            bodyBytesInFlight += bytes
            return true
        }
    }

    private func releaseBody(_ bytes: inout Int) {
        guard bytes > 0 else { return }
        let released = bytes
        lock.withLock { bodyBytesInFlight -= released }
        bytes = 0
    }

    /// The times a connection's deadlines count from, for the phase it is in.
    private struct ConnectionTimes {
        var idleSince = monotonicSeconds()
        var requestStartedAt = monotonicSeconds()
        var headCompletedAt: Double?
        var hasServedRequest = false

        /// When waiting for more bytes must end: the body's, the head's, the keep-alive's
        /// or, before the first request, the first request's deadline.
        mutating func deadline(isMidRequest: Bool, hasUnparsedBytes: Bool, now: Double, limits: ServerLimits) -> Double {
            if isMidRequest {
                if headCompletedAt == nil { headCompletedAt = now }
                return headCompletedAt! + limits.bodyTimeoutSeconds
            }
            if hasUnparsedBytes { return requestStartedAt + limits.headerTimeoutSeconds }
            // A connection that has sent nothing yet gets no more time than a slow head.
            return idleSince + (hasServedRequest ? limits.idleTimeoutSeconds : limits.firstRequestTimeoutSeconds)
        }

        mutating func requestAnswered() {
            hasServedRequest = true
            headCompletedAt = nil
            idleSince = monotonicSeconds()
            requestStartedAt = idleSince
        }
    }

    private func serve(_ client: Int32) {
        var reservedBodyBytes = 0
        let connectionID = lock.withLock { () -> UInt64 in
            lastConnectionID += 1
            return lastConnectionID
        }
        defer {
            releaseBody(&reservedBodyBytes)
            let closed = lock.withLock { () -> (@Sendable (UInt64) -> Void)? in
                connections.removeValue(forKey: client)
                return connectionClosed
            }
            close(client)
            closed?(connectionID)
        }
        Socket.setNoDelay(client)
        Socket.setTimeout(client, option: SO_SNDTIMEO, seconds: limits.writeTimeoutSeconds)
        let remoteAddress = Socket.peerAddress(client)
        var parser = RequestParser(limits: limits)
        var buffer: [UInt8] = []
        var offset = 0
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        var isEndOfInput = false
        var times = ConnectionTimes()
        // The receive timeout now set on the socket: re-set only when the deadline moved
        // noticeably, which saves a system call per request on a busy keep-alive connection.
        var receiveTimeoutSet = 0.0
        while true {
            let event: RequestParser.Event
            do {
                event = try parser.next(buffer, offset: &offset, isEndOfInput: isEndOfInput)
            } catch {
                var response = error.response
                if error.status == .payloadTooLarge || error.status == .headerFieldsTooLarge { response.headers.set("Connection", "close") }
                try? Socket.sendAll(client, response.serialized(keepAlive: false))  // best effort before closing
                return
            }
            switch event {
            case .request(var request):
                request.remoteAddress = remoteAddress
                request.connectionID = connectionID
                guard answer(request, on: client, isEndOfInput: isEndOfInput, reservedBodyBytes: &reservedBodyBytes) else { return }
                if offset > 0 {
                    buffer.removeFirst(offset)
                    offset = 0
                }
                times.requestAnswered()
                continue
            case .continueExpected:
                guard (try? Socket.sendAll(client, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))) != nil else { return }
                continue
            case .needMoreData:
                if isEndOfInput { return }
                guard reserveBodyOrRefuse(parser, on: client, reserved: &reservedBodyBytes) else { return }
            }
            // Wait for more bytes, no longer than the deadline of the phase we are in.
            let now = monotonicSeconds()
            let deadline = times.deadline(isMidRequest: parser.isMidRequest, hasUnparsedBytes: offset < buffer.count, now: now, limits: limits)
            guard deadline > now else {
                if offset < buffer.count || parser.isMidRequest {
                    try? Socket.sendAll(client, HTTPResponse.error(.requestTimeout, "request not received in time").serialized(keepAlive: false))  // best effort
                }
                return
            }
            let remaining = deadline - now
            // A timeout up to 11% longer than the deadline is kept: the deadline check above
            // still closes the connection, at most that much late.
            if remaining < receiveTimeoutSet * 0.9 || remaining > receiveTimeoutSet * 1.25 || receiveTimeoutSet == 0 {
                Socket.setTimeout(client, option: SO_RCVTIMEO, seconds: remaining)
                receiveTimeoutSet = remaining
            }
            do {
                let count = try Socket.receive(client, into: &chunk)
                if count == 0 {
                    isEndOfInput = true
                } else {
                    if offset == buffer.count {
                        buffer.removeAll(keepingCapacity: true)
                        offset = 0
                        times.requestStartedAt = monotonicSeconds()
                        noteRequestStarted(client)
                    }
                    buffer.append(contentsOf: chunk[0..<count])
                }
            } catch {
                if error.isTimeout { continue }  // the deadline check above answers or closes
                return
            }
        }
    }

    /// Runs the handler and writes its answer; false when the connection is to close.
    private func answer(_ request: HTTPRequest, on client: Int32, isEndOfInput: Bool, reservedBodyBytes: inout Int) -> Bool {
        let isStopping = setBusy(client, true)
        let response = router.respond(to: request)
        releaseBody(&reservedBodyBytes)
        let keepAlive = request.wantsKeepAlive && !isStopping && !isEndOfInput
        // Counted before the answer is written, so a client that has seen an answer sees it
        // counted (tests and metrics read this).
        lock.withLock { requestCount += 1 }
        // Idle from here, before the client can see the answer: a client that got its answer
        // finds the connection evictable (an eviction now only stops further reads, so the
        // answer being written still arrives whole).
        if let stream = response.stream {
            // Streamed until the handler ends it or the client goes: the connection stays busy
            // (never evicted as idle) and closes afterwards.
            var head = response
            head.body = []
            var bytes = head.serialized(keepAlive: false, includeBody: false)
            if let range = bytes.firstRange(of: Array("Content-Length: 0\r\n".utf8)) { bytes.removeSubrange(range) }
            guard (try? Socket.sendAll(client, bytes)) != nil else { return false }
            if request.method != "HEAD" { stream { chunk in (try? Socket.sendAll(client, chunk)) != nil } }
            _ = setBusy(client, false)
            return false
        }
        let isClosing = setBusy(client, false)
        do {
            try Socket.sendAll(client, response.serialized(keepAlive: keepAlive, includeBody: request.method != "HEAD"))
        } catch {
            return false
        }
        return !isClosing && keepAlive
    }

    /// Before a body is read into memory, takes its bytes from the server's budget; when the
    /// bodies being read hold it all, answers 503 and returns false (the connection closes).
    private func reserveBodyOrRefuse(_ parser: RequestParser, on client: Int32, reserved: inout Int) -> Bool {
        guard parser.isMidRequest, reserved == 0, parser.bodyBytesToReserve > 0 else { return true }
        let bytes = parser.bodyBytesToReserve
        guard reserveBody(bytes) else {
            var response = HTTPResponse.error(.serviceUnavailable, "the server is reading too many request bodies at once; retry shortly")
            response.headers.set("Retry-After", "1")
            try? Socket.sendAll(client, response.serialized(keepAlive: false))  // best effort before closing
            return false
        }
        reserved = bytes
        return true
    }
}
