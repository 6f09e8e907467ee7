#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import CEpoll
import Foundation

/// One-way posts of messages to one HTTP endpoint over one keep-alive connection, driven by
/// a `ClientLoop`: for traffic whose answers carry nothing but success (Raft messages,
/// answered 204), where losing a message is tolerated and blocking the sender is not.
///
/// `send` never blocks and never waits for an answer. When the connection is open and
/// nothing is waiting, the caller's own thread writes the request without blocking (no
/// hand-off to another thread on the fast path), after taking in the answers that arrived
/// meanwhile; otherwise the messages queue and the loop writes them as the connection
/// allows: it connects without blocking, writes when the socket has room, and reads answers
/// when the pipeline is full (requests are pipelined, up to `maxUnanswered` at a time).
/// Answers alone never wake the loop (one wake-up per message saved); the peer closing its
/// end does, at once. Messages queued while the connection is busy go out together, as few
/// requests as `prepare` makes of them.
///
/// Bounds: at most `maxQueued` messages wait (the oldest are dropped beyond, counted as
/// failed), at most `maxUnanswered` requests are in flight, and a connection that makes no
/// progress for `timeoutSeconds` while it has something to do (connecting, writing, or a
/// full pipeline with more to send) is dropped with what it held. A message delayed by
/// `send(_:delaySeconds:)` waits in order behind those delayed before it.
///
/// `report` counts messages: `.sent` when their request was handed to the connection,
/// `.failed` when they were dropped before that (a full queue, a connection that could not
/// be opened or stalled, `close`), `.rejected` when their request was answered with an error
/// status (they were counted sent too). Requests in flight when a connection ends are not
/// counted again: whether the peer took them is unknown. Messages `prepare` leaves out are
/// its own to count.
///
/// Streamed (`upgradeTo`): the connection opens with one request asking to switch to that
/// protocol and then carries each request's body as a length-prefixed frame (`FrameReader`)
/// with no answers: a request's HTTP head and its answer are not paid per batch, and the
/// loop is never woken by the peer but when it closes. A refusal (any answer but `101`)
/// counts the messages written on that connection as rejected and ends it; bytes after the
/// `101` end it too.
///
/// Ownership: `lock` guards every field below it; descriptors are registered, watched and
/// closed on the loop's thread only, and a caller writes only on an open connection.
public final class PostChannel<Message: Sendable>: @unchecked Sendable {
    public enum Outcome: Sendable { case sent, failed, rejected }
    /// A request's body and how many messages it carries.
    public typealias Prepared = (body: [UInt8], messages: Int)

    enum State { case idle, connecting, open, closing }

    public let host: String
    public let port: Int
    public let maxQueued: Int
    public let maxUnanswered: Int
    public let timeoutSeconds: Double
    private let loop: EventLoop
    private let head: [UInt8]
    /// The request that opens a streamed connection (nil: a request per batch).
    let upgradeRequest: [UInt8]?
    private let prepare: @Sendable ([Message]) -> [Prepared]
    private let report: @Sendable (Outcome, Int) -> Void
    /// Idle time after which the connection is replaced rather than reused: well below the
    /// servers' 60 s idle timeout, so a request never races the server closing it.
    static var maxIdleSeconds: Double { 20 }

    private let lock = AdaptiveLock()
    // The state the answers are read against is internal, not private: `readAnswers` is in
    // PostChannel+Answers.swift. Everything here is guarded by `lock`.
    var state = State.idle
    /// Counts connections: work handed to the loop for an earlier one finds it gone.
    private var generation: UInt64 = 0
    var descriptor: Int32 = -1
    private var token: UInt64 = 0
    private var interest: UInt32 = 0
    private var isClosed = false
    /// Messages due now, waiting for the connection.
    private var ready: [Message] = []
    /// The batch `writeReady` took from `ready`, swapped back empty (see `EventLoop.runningTasks`).
    private var takenReady: [Message] = []
    /// Messages held back by a delay, in order.
    private var delayed = DelayedQueue<Message>()
    private var isDelayTimerArmed = false
    private var isWatchdogArmed = false
    /// Requests written (or being written) and not yet answered: the messages each carries.
    var inFlight: [Int] = []
    var inFlightHead = 0
    private var output: [UInt8] = []
    private var outputOffset = 0
    var answers: [UInt8] = []
    /// Where answers are read into (by whichever thread reads them, under the lock).
    var chunk = [UInt8](repeating: 0, count: 4_096)
    /// When the connection last connected, wrote or read something.
    var lastProgress = 0.0
    private var lastUsed = 0.0
    private var unreportedSent = 0
    private var unreportedFailed = 0
    var unreportedRejected = 0
    /// Streamed: the peer answered `101`, and the messages written on this connection so far.
    var isUpgraded = false
    var sentOnConnection = 0

    public init(loop: ClientLoop, host: String, port: Int, path: String, headers: HTTPHeaders,
                maxQueued: Int = 4_096, maxUnanswered: Int = 64, timeoutSeconds: Double = 0.5, upgradeTo upgradeProtocol: String? = nil,
                prepare: @escaping @Sendable ([Message]) -> [Prepared], report: @escaping @Sendable (Outcome, Int) -> Void) {
        precondition(maxQueued > 0 && maxUnanswered > 0 && timeoutSeconds > 0, "channel bounds must be positive")
        self.loop = loop.loop
        self.host = host
        self.port = port
        self.maxQueued = maxQueued
        self.maxUnanswered = maxUnanswered
        self.timeoutSeconds = timeoutSeconds
        self.prepare = prepare
        self.report = report
        var text = "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        for (name, value) in headers.fields { text += name + ": " + value + "\r\n" }
        head = Array(text.utf8)
        upgradeRequest = upgradeProtocol.map { Array((text + "Connection: Upgrade\r\nUpgrade: \($0)\r\nContent-Length: 0\r\n\r\n").utf8) }
    }

    /// Sends `messages` (in order, after those sent before), at once or, with a delay, not
    /// before `delaySeconds` from now. Never blocks.
    public func send(_ messages: [Message], delaySeconds: Double = 0) {
        guard !messages.isEmpty else { return }
        locked {
            guard !isClosed else { return }
            let now = monotonicSeconds()
            if delaySeconds > 0 || !delayed.isEmpty {
                unreportedFailed += delayed.append(messages, due: now + max(0, delaySeconds), limit: maxQueued)
                armDelayTimer()
                return
            }
            enqueue(messages)
            pump(now: now)
        }
    }

    /// Drops the connection and everything queued (counted as failed); later sends do nothing.
    public func close() {
        locked {
            guard !isClosed else { return }
            isClosed = true
            unreportedFailed += ready.count + delayed.count
            ready.removeAll()
            delayed.removeAll()
            if state != .idle { endConnection() }
        }
    }

    /// Whether a connection is open now (for tests and views).
    public var isConnected: Bool { lock.withLock { state == .open } }
    /// Messages waiting (due or delayed) and requests unanswered.
    public var pending: (messages: Int, unanswered: Int) {
        lock.withLock { (ready.count + delayed.count, inFlight.count - inFlightHead) }
    }

    // MARK: Under the lock

    /// Runs `body` under the lock, then reports what it counted (outside the lock).
    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        let result = body()
        let sent = unreportedSent, failed = unreportedFailed, rejected = unreportedRejected
        unreportedSent = 0
        unreportedFailed = 0
        unreportedRejected = 0
        lock.unlock()
        if sent > 0 { report(.sent, sent) }
        if failed > 0 { report(.failed, failed) }
        if rejected > 0 { report(.rejected, rejected) }
        return result
    }

    private func enqueue(_ messages: [Message]) {
        ready.append(contentsOf: messages)
        let excess = ready.count - maxQueued
        if excess > 0 {
            ready.removeFirst(excess)
            unreportedFailed += excess
        }
    }

    private var unanswered: Int { inFlight.count - inFlightHead }

    /// Moves things along from wherever the connection stands: connects when there is
    /// something to send and no connection, writes queued messages when an open one has room.
    private func pump(now: Double) {
        switch state {
        case .idle:
            if !ready.isEmpty { startConnecting() }
        case .connecting, .closing:
            break
        case .open:
            // Plain requests: take the answers that came, so the pipeline has room. A switched
            // stream is answered nothing: the loop hears of its peer closing (EPOLLRDHUP), and a
            // read here was a system call per batch that found nothing (two per commit on a
            // leader at one connection, one on each follower).
            if !isUpgraded {
                readAnswers(now: now)
                guard state == .open else { return }
            }
            if upgradeRequest == nil && unanswered == 0 && outputOffset == output.count && now - lastUsed > Self.maxIdleSeconds {
                // Idle long enough that the server may be closing it right now: a new one.
                return endConnection()
            }
            writeReady(now: now)
        }
    }

    private func startConnecting() {
        state = .connecting
        generation += 1
        let current = generation
        loop.execute { [self] in locked { connect(current) } }
    }

    /// Turns queued messages into requests while the pipeline has room and nothing is left
    /// unwritten, then writes.
    private func writeReady(now: Double) {
        while state == .open && !ready.isEmpty && unanswered < maxUnanswered && outputOffset == output.count {
            swap(&ready, &takenReady)
            let requests = prepare(takenReady)
            takenReady.removeAll(keepingCapacity: takenReady.capacity <= EventLoop.keptBatchCapacity)
            output.removeAll(keepingCapacity: output.capacity <= 1 << 20)
            outputOffset = 0
            for request in requests {
                if upgradeRequest != nil {
                    FrameReader.frame(request.body, into: &output)
                    sentOnConnection += request.messages
                } else {
                    output.append(contentsOf: head)
                    output.append(contentsOf: "Content-Length: \(request.body.count)\r\n\r\n".utf8)
                    output.append(contentsOf: request.body)
                    inFlight.append(request.messages)
                }
                unreportedSent += request.messages
            }
            lastUsed = now
            write(now: now)
        }
        updateInterest()
        if isWaitingForAnswers { armWatchdog() }
    }

    /// The pipeline is full and more waits: answers are needed before anything else goes.
    private var isWaitingForAnswers: Bool { unanswered >= maxUnanswered && !ready.isEmpty }

    /// Writes pending output without blocking; what does not fit waits for EPOLLOUT.
    private func write(now: Double) {
        while outputOffset < output.count {
            let count = output.withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress! + outputOffset, $0.count - outputOffset, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if count > 0 {
                outputOffset += count
                lastProgress = now
                continue
            }
            let code = errno
            if count < 0 && code == EINTR { continue }
            if count < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
                updateInterest()
                armWatchdog()
                return
            }
            return endConnection()
        }
        updateInterest()
    }

    /// Ends the connection (failed, refused, idle too long, or the channel closing) from
    /// wherever this runs: at once on the loop; from another thread the loop is asked to (and
    /// no one writes to it meanwhile).
    func endConnection() {
        if loop.isCurrent { return closeConnection(generation, dropQueued: false) }
        state = .closing
        let failed = generation
        loop.execute { [self] in locked { closeConnection(failed, dropQueued: false) } }
    }

    /// Watches the connection for what it waits for: always the peer closing its end; the
    /// socket's room while output is unwritten; answers only while the pipeline is full and
    /// more waits (otherwise answers are read before the next write, waking no one), or the
    /// answer to a switch of protocols.
    private func updateInterest() {
        guard descriptor >= 0, state == .open else { return }
        var wanted = EPOLLRDHUP.rawValue
        if outputOffset < output.count { wanted |= EPOLLOUT.rawValue }
        // Streamed: the answer to the switch is read when it comes (a refusal ends the
        // connection at once), then nothing is.
        if isWaitingForAnswers || (upgradeRequest != nil && !isUpgraded) { wanted |= EPOLLIN.rawValue }
        guard wanted != interest else { return }
        interest = wanted
        loop.modify(descriptor, token: token, events: wanted)  // epoll_ctl is safe from any thread
    }

    private func armDelayTimer() {
        guard !isDelayTimerArmed, let due = delayed.firstDue else { return }
        isDelayTimerArmed = true
        loop.execute { [self] in loop.schedule(at: due) { [self] in locked { releaseDelayed() } } }
    }

    private func armWatchdog() {
        guard !isWatchdogArmed else { return }
        isWatchdogArmed = true
        let due = lastProgress + timeoutSeconds
        loop.execute { [self] in loop.schedule(at: due) { [self] in locked { checkProgress() } } }
    }

    // MARK: On the loop's thread, under the lock

    private func connect(_ expected: UInt64) {
        guard expected == generation, state == .connecting, !isClosed else { return }
        do {
            let (opened, _) = try Socket.startConnecting(host: host, port: port)
            descriptor = opened
            interest = EPOLLRDHUP.rawValue | EPOLLOUT.rawValue
            token = loop.register(opened, events: interest) { [weak self] events in
                guard let self else { return }
                locked { handle(events, generation: expected) }
            }
            lastProgress = monotonicSeconds()
            armWatchdog()
        } catch {
            closeConnection(expected, dropQueued: true)
        }
    }

    private func handle(_ events: UInt32, generation expected: UInt64) {
        guard expected == generation, descriptor >= 0, state == .connecting || state == .open else { return }
        let now = monotonicSeconds()
        if state == .connecting {
            guard events & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 else { return }
            guard Socket.pendingError(descriptor) == 0 else { return closeConnection(expected, dropQueued: true) }
            state = .open
            Socket.setNoDelay(descriptor)
            lastProgress = now
            lastUsed = now
            if let upgradeRequest {
                output = upgradeRequest
                outputOffset = 0
                write(now: now)
                guard state == .open else { return }
            }
            writeReady(now: now)
            return updateInterest()
        }
        if events & EPOLLOUT.rawValue != 0 {
            write(now: now)
            guard state == .open else { return }
        }
        if events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            readAnswers(now: now)
            guard state == .open else { return }
        }
        writeReady(now: now)
    }

    private func releaseDelayed() {
        isDelayTimerArmed = false
        guard !isClosed else { return }
        let now = monotonicSeconds()
        enqueue(delayed.takeDue(now: now))
        armDelayTimer()
        pump(now: now)
    }

    /// The watchdog: a connection that has had something to do and made no progress for
    /// `timeoutSeconds` is dropped, with what waits for it.
    private func checkProgress() {
        isWatchdogArmed = false
        let isStalled = state == .connecting || (state == .open && (outputOffset < output.count || isWaitingForAnswers))
        guard isStalled, !isClosed else { return }
        if monotonicSeconds() - lastProgress >= timeoutSeconds {
            closeConnection(generation, dropQueued: true)
        } else {
            armWatchdog()
        }
    }

    /// Ends connection `expected` (if it is still the current one): requests in flight are
    /// forgotten; queued messages count as failed when `dropQueued` (the connection never
    /// opened, or stalled: the peer is not there or not listening, and the next send tries
    /// again), otherwise they get a new connection.
    private func closeConnection(_ expected: UInt64, dropQueued: Bool) {
        guard expected == generation, state != .idle else { return }
        if descriptor >= 0 {
            loop.unregister(descriptor, token: token)
            Glibc.close(descriptor)
            descriptor = -1
        }
        interest = 0
        inFlight.removeAll()
        inFlightHead = 0
        output.removeAll()
        outputOffset = 0
        answers.removeAll()
        isUpgraded = false
        sentOnConnection = 0
        state = .idle
        if dropQueued || isClosed {
            unreportedFailed += ready.count
            ready.removeAll()
        }
        if !ready.isEmpty { startConnecting() }
    }
}
