#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CEpoll
import Foundation

/// An event-driven HTTP/1.1 server over epoll: a few event-loop threads read, parse and
/// write every connection without blocking, so an idle connection costs its buffers, not a
/// thread. Handlers that may block run on a worker pool; handlers that suspend (waiting for
/// a commit) hold no thread while they wait. At its connection cap the server closes the
/// connection idle longest rather than refuse a new client.
///
/// Keep-alive and HTTP/1.0, pipelined requests answered in order, Content-Length and
/// chunked bodies, `Expect: 100-continue`. Every limit in `ServerLimits` is enforced and
/// answered (431, 413, 503, 408); a slow or silent client is closed by its deadline.
/// `stop()` stops accepting, lets in-flight requests finish, and closes the rest.
public final class HTTPServer: @unchecked Sendable {
    public let host: String
    public let limits: ServerLimits
    let router: Router
    let lock = AdaptiveLock()
    private var listener: Int32 = -1
    private var listenerToken: UInt64 = 0
    private var boundPort: Int
    /// What the server knows of each open connection, by connection number (guarded by `lock`).
    /// A class, changed in place: as a struct in the dictionary each change went through the
    /// dictionary's modify accessor, whose coroutine frames cost three allocations, and a
    /// request changes its record three times.
    final class ConnectionRecord {
        let connection: ServerConnection
        /// The client's IP address (without the port), for the per-address cap.
        let address: String
        /// A handler is running for it: it is never closed to make room.
        var isBusy = false
        /// When it last started or finished a request (monotonic seconds): the one idle
        /// longest is closed first when room is needed.
        var lastActivity: Double
        /// Closed to make room; its loop is closing it.
        var isEvicted = false

        init(connection: ServerConnection, address: String, lastActivity: Double) {
            self.connection = connection
            self.address = address
            self.lastActivity = lastActivity
        }
    }

    private var connections: [UInt64: ConnectionRecord] = [:]
    /// Connections not evicted, in all and per address (kept as they open and close, so
    /// admitting one costs no walk over every connection until a cap is reached).
    private var liveCount = 0
    private var liveByAddress: [String: Int] = [:]
    /// Bytes reserved by request bodies being read now (`ServerLimits.maxBodyBytesInFlight`).
    private var bodyBytesInFlight = 0
    private var evictedCount = 0
    private(set) var isStopping = false
    private var requestCount = 0
    private var directAnswerCount = 0
    private var refusedCount = 0
    private var lastConnectionID: UInt64 = 0
    private var connectionClosed: (@Sendable (UInt64) -> Void)?
    private var loops: [EventLoop] = []
    private var nextLoop = 0
    let workers: WorkerPool

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
        self.workers = WorkerPool(name: "worker-\(port)", maxThreads: limits.maxHandlerThreads)
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
    /// True on one of the server's event-loop threads.
    var isOnEventLoop: Bool { lock.withLock { loops }.contains { $0.isCurrent } }
    /// Times the event loops woke, all together.
    var eventLoopWakeups: Int { lock.withLock { loops }.reduce(0) { $0 + $1.wakeupCount } }
    /// True while every event loop sleeps waiting for events, for tests.
    var eventLoopsAsleep: Bool { lock.withLock { loops }.allSatisfy(\.isAsleep) }
    /// Answers written by the thread that gave them, their loop asleep (`ServerConnection`), for tests.
    var answersWrittenDirectly: Int { lock.withLock { directAnswerCount } }
    /// Looks for events the loops made without sleeping (see `BriefSpin`), for tests.
    var eventLoopPolls: Int { lock.withLock { loops }.reduce(0) { $0 + $1.pollCount } }

    /// Threads the server holds now: its event loops and the worker-pool threads alive.
    public var threadCount: Int { lock.withLock { loops.count } + workers.threadCounts.alive }

    /// Ports to pick listening ports from at random (tests, benchmarks): from 10,000 up to the
    /// kernel's ephemeral range (`ip_local_port_range`, 32768 by default), which outgoing
    /// connections take ports from, so that a port found free is not taken by a client's
    /// connection before the server binds it.
    public static let listeningPortRange: Range<Int> = {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let low = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } ?? 32_768
        return 10_000..<max(low, 16_000)
    }()

    /// True when `host:port` can be bound now (nothing listens there).
    public static func isPortFree(host: String = "127.0.0.1", port: Int) -> Bool {
        guard let descriptor = try? Socket.listen(host: host, port: port, backlog: 1) else { return false }
        close(descriptor)
        return true
    }

    /// Connections held at most: the limit, within the descriptors this process may open
    /// (64 kept for files, clients and the listener).
    private lazy var connectionCap: Int = {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return limits.maxConnections }
        return max(1, min(limits.maxConnections, Int(clamping: limit.rlim_cur) - 64))
    }()

    /// Raises this process's soft limit on open descriptors to its hard limit, once: an
    /// event-driven server holds a descriptor per connection and nothing else.
    private static let raisedDescriptorLimit: Void = {
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }()

    /// Binds and starts the event loops. Throws when the port is taken, naming it.
    public func start() throws(SocketError) {
        _ = Self.raisedDescriptorLimit
        let descriptor = try Socket.listen(host: host, port: boundPort, backlog: 4_096)
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        var started: [EventLoop] = []
        do {
            for index in 0..<max(1, limits.eventLoops) { started.append(try EventLoop(name: "http-\(Socket.localPort(descriptor))-\(index)")) }
        } catch {
            close(descriptor)
            throw error
        }
        lock.withLock {
            listener = descriptor
            boundPort = Socket.localPort(descriptor)
            loops = started
        }
        for loop in started { loop.start() }
        let acceptor = started[0]
        acceptor.execute { [self] in
            let token = acceptor.register(descriptor, events: EPOLLIN.rawValue) { [self] _ in acceptAll(descriptor, on: acceptor) }
            lock.withLock { listenerToken = token }
        }
    }

    /// Stops accepting, waits up to `graceSeconds` for in-flight requests, then closes every connection.
    public func stop(graceSeconds: Double = 5) {
        let (descriptor, token, loops, open) = lock.withLock { () -> (Int32, UInt64, [EventLoop], [ServerConnection]) in
            isStopping = true
            let descriptor = listener
            listener = -1
            return (descriptor, listenerToken, self.loops, connections.values.map(\.connection))
        }
        guard let acceptor = loops.first else { return }
        let unlistened = DispatchSemaphore(value: 0)
        acceptor.execute {
            if descriptor >= 0 {
                acceptor.unregister(descriptor, token: token)
                close(descriptor)
            }
            unlistened.signal()
        }
        unlistened.wait()
        // Idle connections close now; busy ones close once their answer is written.
        for connection in open { connection.loop.execute { connection.closeIfIdle() } }
        let deadline = monotonicSeconds() + graceSeconds
        while monotonicSeconds() < deadline, lock.withLock({ !connections.isEmpty }) { usleep(2_000) }
        for connection in lock.withLock({ connections.values.map(\.connection) }) {
            connection.loop.execute { connection.close() }
        }
        for loop in loops { loop.stop() }
        lock.withLock { self.loops = [] }
        workers.shutDown()
    }

    // MARK: Accepting

    /// Takes every pending connection (the listener is non-blocking) and hands each to a loop.
    private func acceptAll(_ descriptor: Int32, on acceptor: EventLoop) {
        while true {
            let client = cepoll_accept4(descriptor, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
            if client < 0 {
                let code = errno
                if code == EINTR || code == ECONNABORTED { continue }
                if code == EMFILE || code == ENFILE || code == ENOMEM || code == ENOBUFS {
                    // Out of descriptors: stop watching the listener for a moment instead of spinning.
                    let token = lock.withLock { listenerToken }
                    acceptor.modify(descriptor, token: token, events: 0)
                    acceptor.schedule(at: monotonicSeconds() + 0.01) { [self] in
                        if lock.withLock({ listener == descriptor }) { acceptor.modify(descriptor, token: token, events: EPOLLIN.rawValue) }
                    }
                }
                return
            }
            admit(client)
        }
    }

    private func admit(_ client: Int32) {
        let remoteAddress = Socket.peerAddress(client)
        let address = remoteAddress.map { String($0[..<($0.lastIndex(of: ":") ?? $0.endIndex)]) } ?? "?"
        let admitted = lock.withLock { () -> ServerConnection? in
            guard !isStopping, !loops.isEmpty, makeRoom(for: address) else {
                refusedCount += 1
                return nil
            }
            lastConnectionID += 1
            let loop = loops[nextLoop % loops.count]
            nextLoop += 1
            let connection = ServerConnection(server: self, descriptor: client, id: lastConnectionID, remoteAddress: remoteAddress, loop: loop)
            connections[lastConnectionID] = ConnectionRecord(connection: connection, address: address, lastActivity: monotonicSeconds())
            liveCount += 1
            liveByAddress[address, default: 0] += 1
            return connection
        }
        guard let admitted else { return refuse(client) }
        admitted.loop.execute { admitted.open() }
    }

    /// Makes room for one more connection from `address` (the caller holds `lock`): over the
    /// per-address cap, that address's connection idle longest is closed; over the total cap,
    /// the one idle longest of the address with the most connections. False when every
    /// candidate is busy in a handler.
    private func makeRoom(for address: String) -> Bool {
        if liveByAddress[address, default: 0] >= limits.maxConnectionsPerAddress {
            guard evictIdlest(from: address) != nil else { return false }
        }
        if liveCount >= connectionCap {
            let busiest = liveByAddress.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }?.key
            guard evictIdlest(from: busiest) ?? evictIdlest(from: nil) != nil else { return false }
        }
        return true
    }

    /// Closes the connection idle longest from `address` (any address when nil) that is not
    /// in a handler; returns it.
    private func evictIdlest(from address: String?) -> UInt64? {
        var idlest: (id: UInt64, record: ConnectionRecord)?
        for (id, record) in connections where !record.isBusy && !record.isEvicted && (address == nil || record.address == address) {
            if idlest == nil || record.lastActivity < idlest!.record.lastActivity { idlest = (id, record) }
        }
        guard let (id, record) = idlest else { return nil }
        record.isEvicted = true
        evictedCount += 1
        forgetLive(record.address)
        // Its loop stops reading it at once (an answer it is writing still goes out) and closes it.
        let connection = record.connection
        connection.loop.execute { connection.evict() }
        return id
    }

    /// Answers 503 to a connection over the cap and closes it, without reading its request.
    private func refuse(_ client: Int32) {
        var response = HTTPResponse.error(.serviceUnavailable, "too many connections (limit \(limits.maxConnections)); retry later")
        response.headers.set("Retry-After", "1")
        let bytes = response.serialized(keepAlive: false)
        // Best effort and without waiting: a fresh socket's send buffer holds this small answer.
        _ = bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        close(client)
    }

    // MARK: Bookkeeping the connections ask for

    /// Marks a connection busy or not; true when it must close after this answer (stopping, evicted).
    func setBusy(_ id: UInt64, _ isBusy: Bool) -> Bool {
        lock.withLock {
            guard let record = connections[id] else { return isStopping }
            record.isBusy = isBusy
            record.lastActivity = monotonicSeconds()
            return isStopping || record.isEvicted
        }
    }

    func noteRequestStarted(_ id: UInt64) {
        lock.withLock { if let record = connections[id] { record.lastActivity = monotonicSeconds() } }
    }

    func countRequest(writtenDirectly: Bool = false) {
        lock.withLock {
            requestCount += 1
            if writtenDirectly { directAnswerCount += 1 }
        }
    }

    /// Reserves `bytes` of the body budget; false when the bodies being read already hold it.
    func reserveBody(_ bytes: Int) -> Bool {
        lock.withLock {
            guard bodyBytesInFlight + bytes <= limits.maxBodyBytesInFlight else { return false }
            bodyBytesInFlight += bytes
            return true
        }
    }

    func releaseBody(_ bytes: inout Int) {
        guard bytes > 0 else { return }
        let released = bytes
        lock.withLock { bodyBytesInFlight -= released }
        bytes = 0
    }

    /// One live connection from `address` fewer (the caller holds `lock`).
    private func forgetLive(_ address: String) {
        liveCount -= 1
        liveByAddress[address, default: 1] -= 1
        if liveByAddress[address] == 0 { liveByAddress[address] = nil }
    }

    func connectionDidClose(_ id: UInt64) {
        let closed = lock.withLock { () -> (@Sendable (UInt64) -> Void)? in
            if let record = connections.removeValue(forKey: id), !record.isEvicted { forgetLive(record.address) }
            return connectionClosed
        }
        closed?(id)
    }
}
