#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CEpoll
import Foundation

/// One client connection of `HTTPServer`, driven by its event loop: every method runs on
/// that loop's thread (handlers answer through `loop.execute`), so its state needs no lock
/// (what `ServerConnection+Switching.swift` uses is internal, still the loop's alone). The
/// one exception: a replying handler's answer given on another thread while the loop sleeps
/// is written by that thread, through `DirectAnswer` and its lock (waking the loop, tens of
/// microseconds on a virtual machine, would cost more than the write); the loop does the
/// rest when it wakes.
///
/// It reads and parses until a request is whole, stops reading while the handler runs (so
/// pipelined requests are answered in order and a half-closed client still gets its
/// answer), writes the answer without blocking (the rest waits for EPOLLOUT), and goes back
/// to reading. Each phase has a deadline (first request, head, body, idle, write), checked
/// by one timer per connection.
final class ServerConnection: @unchecked Sendable {
    enum Phase {
        case reading
        /// A handler is running; input waits.
        case handling
        /// A streamed answer is being written until its producer ends.
        case streaming
        /// The connection switched protocols: its input goes to `upgraded` (see `UpgradedReceiver`).
        case upgraded
        case closed
    }

    let id: UInt64
    let loop: EventLoop
    unowned let server: HTTPServer
    private let descriptor: Int32
    private let remoteAddress: String?
    private var token: UInt64 = 0
    var phase = Phase.reading
    private var parser: RequestParser
    var input: [UInt8] = []
    var offset = 0
    var isEndOfInput = false
    private var output: [UInt8] = []
    private var outputOffset = 0
    /// Close once `output` is written (the answer said `Connection: close`, or it was refused).
    var closeAfterWrite = false
    /// True while an immediate handler's answer is written from `process` (which then goes on).
    private var isAnsweringInline = false
    /// True while a suspending handler runs inline from `dispatch`; an answer it gives before
    /// it waits is kept in `inlineResponse` and written once `dispatch` has it.
    private var isDispatchingInline = false
    private var inlineResponse: HTTPResponse?
    var reservedBodyBytes = 0
    private var times = ConnectionTimes()
    /// When writing the pending output began (the write deadline counts from it).
    private var writeStartedAt: Double?
    /// The deadline a timer is set for already (one timer per connection at a time).
    private var timerAt = Double.infinity
    var interest: UInt32 = 0
    var sink: StreamSink?
    var upgraded: (any UpgradedReceiver)?
    /// Open while a replying handler runs with nothing left to write (`answerFromAnotherThread`).
    private let directAnswer = DirectAnswer()

    init(server: HTTPServer, descriptor: Int32, id: UInt64, remoteAddress: String?, loop: EventLoop) {
        self.server = server
        self.descriptor = descriptor
        self.id = id
        self.remoteAddress = remoteAddress
        self.loop = loop
        self.parser = RequestParser(limits: server.limits)
    }

    /// Starts watching the socket (on the loop).
    func open() {
        guard phase != .closed else { return }
        Socket.setNoDelay(descriptor)
        interest = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
        token = loop.register(descriptor, events: interest) { [self] events in handle(events) }
        armTimer()
    }

    // MARK: Events

    private func handle(_ events: UInt32) {
        if events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            // Both directions are gone: nothing can be answered.
            return close()
        }
        if events & EPOLLOUT.rawValue != 0 { flush() }
        guard events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0, phase != .closed else { return }
        if phase == .handling {
            // Input while a handler runs (pipelining, or a half-close) waits in the kernel until
            // the answer is written: stop watching it until then (level-triggered, it would be
            // reported again and again). Interest is dropped only when input comes: a client
            // that waits for its answer, as most do, costs no epoll_ctl per request.
            return setInterest(interest & ~(EPOLLIN.rawValue | EPOLLRDHUP.rawValue))
        }
        readAvailable()
    }

    /// Reads one buffer's worth (level-triggered: more input is reported again), then parses.
    /// Input is read only while the parser needs it, so a client that pipelines faster than
    /// it is answered waits in the kernel's buffers, not in ours.
    private func readAvailable() {
        while true {
            let count = loop.readBuffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                if phase == .upgraded {
                    if !deliver(loop.readBuffer[0..<count]) { close() }
                    return
                }
                guard phase == .reading else { return }  // a streamed answer's client has nothing to say: discarded
                if offset == input.count {
                    input.removeAll(keepingCapacity: input.capacity <= 64 * 1024)
                    offset = 0
                    times.requestStartedAt = monotonicSeconds()
                    server.noteRequestStarted(id)
                }
                input.append(contentsOf: loop.readBuffer[0..<count])
                return process()
            }
            if count == 0 {
                if phase == .streaming || phase == .upgraded { return close() }
                isEndOfInput = true
                setInterest(interest & ~(EPOLLIN.rawValue | EPOLLRDHUP.rawValue))
                return process()
            }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return }
            return close()
        }
    }

    /// Parses what is buffered: answers parse errors, sends `100 Continue`, reserves a body's
    /// bytes, and starts the handler once a request is whole.
    private func process() {
        while phase == .reading {
            let event: RequestParser.Event
            do {
                event = try parser.next(input, offset: &offset, isEndOfInput: isEndOfInput)
            } catch {
                var response = error.response
                if error.status == .payloadTooLarge || error.status == .headerFieldsTooLarge { response.headers.set("Connection", "close") }
                return finishWith(response.serialized(keepAlive: false))
            }
            switch event {
            case .request(var request):
                request.remoteAddress = remoteAddress
                request.connectionID = id
                dispatch(request)
                continue  // answered on the loop already: the next pipelined request, if any
            case .continueExpected:
                write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
                continue
            case .needMoreData:
                if isEndOfInput {
                    // The client will send no more: an incomplete request is dropped silently.
                    return close()
                }
                if parser.isMidRequest, reservedBodyBytes == 0, parser.bodyBytesToReserve > 0 {
                    let bytes = parser.bodyBytesToReserve
                    guard server.reserveBody(bytes) else {
                        var response = HTTPResponse.error(.serviceUnavailable, "the server is reading too many request bodies at once; retry shortly")
                        response.headers.set("Retry-After", "1")
                        return finishWith(response.serialized(keepAlive: false))
                    }
                    reservedBodyBytes = bytes
                }
                armTimer()
                return
            }
        }
    }

    private func dispatch(_ request: HTTPRequest) {
        phase = .handling
        _ = server.setBusy(id, true)
        let dispatch = server.router.dispatch(request)
        if dispatch.isImmediate { return answeredInline(request, dispatch.respondNow()) }
        if dispatch.mayBlock {
            return server.workers.run { [self] in
                let response = dispatch.respondNow()
                loop.execute { [self] in answered(request, response) }
            }
        }
        // A suspending handler runs here, on the loop, until it first waits, and goes on on the
        // loop when its wait ends: no thread hand-off but the one its wait itself needs. One
        // that never waits is answered like an immediate handler.
        if dispatch.isReplying, outputOffset >= output.count {
            let shape = answerShape(request)
            directAnswer.open(keepAlive: shape.keepAlive, includeBody: shape.includeBody)
        }
        isDispatchingInline = true
        dispatch.respond(on: loop) { [self] response in
            guard loop.isCurrent else { return answerFromAnotherThread(request, response) }
            if isDispatchingInline { inlineResponse = response } else { answered(request, response) }
        }
        isDispatchingInline = false
        if let response = inlineResponse {
            inlineResponse = nil
            return answeredInline(request, response)
        }
    }

    /// An answer given while `dispatch` ran, on the loop: `process` goes on with what is buffered.
    private func answeredInline(_ request: HTTPRequest, _ response: HTTPResponse) {
        isAnsweringInline = true
        defer { isAnsweringInline = false }
        answered(request, response)
    }

    /// An answer given on another thread: written there at once when the loop sleeps (waking
    /// it first would cost more than the write), the rest of the work handed to the loop;
    /// otherwise all of it handed to the loop.
    private func answerFromAnotherThread(_ request: HTTPRequest, _ response: HTTPResponse) {
        if loop.isAsleep, response.stream == nil, response.upgrade == nil,
           let (rest, keepAlive) = directAnswer.write(response, on: descriptor, connection: id, of: server)
        {
            return loop.execute { [self] in answeredDirectly(rest: rest, keepAlive: keepAlive) }
        }
        loop.execute { [self] in answered(request, response) }
    }

    /// The loop's part of an answer another thread wrote (`DirectAnswer.write`).
    private func answeredDirectly(rest: ArraySlice<UInt8>, keepAlive: Bool) {
        endHandling()
        guard phase == .handling else { return }
        conclude(writing: Array(rest), keepAlive: keepAlive)
    }

    /// The handler's answer, back on the loop.
    private func answered(_ request: HTTPRequest, _ response: HTTPResponse) {
        endHandling()
        // Counted before the answer is written, so a client that has seen an answer sees it
        // counted (tests and metrics read this).
        server.countRequest()
        guard phase == .handling else {
            // The connection closed while the handler ran.
            _ = server.setBusy(id, false)
            return
        }
        if let receiver = response.upgrade, response.status == .switchingProtocols { return switchProtocols(response, to: receiver) }
        let (wantsKeepAlive, includeBody) = answerShape(request)
        let keepAlive = wantsKeepAlive && !server.lock.withLock { server.isStopping }
        if let stream = response.stream { return startStream(response, stream, includeBody: includeBody) }
        let mustClose = server.setBusy(id, false)
        conclude(writing: response.serialized(keepAlive: keepAlive, includeBody: includeBody), keepAlive: keepAlive && !mustClose)
    }

    /// What an answer to `request` says: whether the connection may stay open (the server
    /// stopping or the connection evicted aside) and whether it carries its body.
    private func answerShape(_ request: HTTPRequest) -> (keepAlive: Bool, includeBody: Bool) {
        (request.wantsKeepAlive && !isEndOfInput, request.method != "HEAD")
    }

    /// The handler is done with the connection: no other thread may write an answer on it,
    /// and the request's body no longer counts against the server's budget.
    private func endHandling() {
        directAnswer.close()
        server.releaseBody(&reservedBodyBytes)
    }

    /// Writes an answer (or what is left of it), then closes once it is out or goes back to
    /// reading.
    private func conclude(writing bytes: [UInt8], keepAlive: Bool) {
        write(bytes)
        guard keepAlive, phase != .closed else {
            closeAfterWrite = true
            return flushOrClose()
        }
        // Ready for the next request, which may be buffered already (pipelining): input is
        // read again only once the parser needs more.
        phase = .reading
        if offset > 0 {
            input.removeFirst(offset)
            offset = 0
        }
        times.requestAnswered()
        if !isAnsweringInline, offset < input.count || isEndOfInput { process() }
        if phase == .reading, !isEndOfInput {
            setInterest(interest | EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
            armTimer()
        }
    }

    // MARK: Writing

    func write(_ bytes: [UInt8]) {
        guard phase != .closed, !bytes.isEmpty else { return }
        if outputOffset == output.count {
            output = bytes
            outputOffset = 0
        } else {
            output.append(contentsOf: bytes)
        }
        flush()
    }

    /// Writes what the socket takes now; the rest waits for EPOLLOUT, within the write deadline.
    private func flush() {
        while outputOffset < output.count, phase != .closed {
            let count = output.withUnsafeBytes { send(descriptor, $0.baseAddress! + outputOffset, $0.count - outputOffset, Int32(MSG_NOSIGNAL)) }
            if count > 0 {
                outputOffset += count
                sink?.wrote(count)
                continue
            }
            let code = errno
            if count < 0, code == EINTR { continue }
            if count < 0, code == EAGAIN || code == EWOULDBLOCK {
                if writeStartedAt == nil { writeStartedAt = monotonicSeconds() }
                setInterest(interest | EPOLLOUT.rawValue)
                armTimer()
                return
            }
            return close()
        }
        guard phase != .closed else { return }
        // Let go rather than empty in place: `output` is usually the answer's own bytes, taken
        // over by `write` and still shared with its caller here, so emptying it while keeping
        // its capacity allocated a new buffer for every answer (the next answer is taken over
        // the same way; only bytes that wait are ever appended to).
        output = []
        outputOffset = 0
        writeStartedAt = nil
        if interest & EPOLLOUT.rawValue != 0 { setInterest(interest & ~EPOLLOUT.rawValue) }
        if closeAfterWrite { close() }
    }

    func flushOrClose() {
        if outputOffset >= output.count, closeAfterWrite { close() } else { flush() }
    }

    /// Sends a final answer (an error) and closes.
    private func finishWith(_ bytes: [UInt8]) {
        phase = .handling  // nothing more is read
        setInterest(interest & ~(EPOLLIN.rawValue | EPOLLRDHUP.rawValue))
        closeAfterWrite = true
        write(bytes)
    }

    // MARK: Deadlines

    /// Sets the connection's timer for its current deadline, unless one is set earlier.
    private func armTimer() {
        guard let deadline = currentDeadline(), deadline < timerAt else { return }
        timerAt = deadline
        loop.schedule(at: deadline) { [self] in
            timerAt = .infinity
            checkDeadline()
        }
    }

    /// When the current phase must end: writing, reading a body, a head, or waiting idle.
    /// None while a handler runs (it is not the client's time) unless output is pending.
    private func currentDeadline() -> Double? {
        if let writeStartedAt { return writeStartedAt + server.limits.writeTimeoutSeconds }
        guard phase == .reading, !isEndOfInput else { return nil }
        return times.deadline(isMidRequest: parser.isMidRequest, hasUnparsedBytes: offset < input.count, now: monotonicSeconds(), limits: server.limits)
    }

    private func checkDeadline() {
        guard phase != .closed, let deadline = currentDeadline() else { return }
        guard monotonicSeconds() >= deadline else { return armTimer() }
        if writeStartedAt != nil { return close() }  // a reader too slow to take its answer
        if offset < input.count || parser.isMidRequest {
            finishWith(HTTPResponse.error(.requestTimeout, "request not received in time").serialized(keepAlive: false))
        } else {
            close()
        }
    }

    // MARK: Closing

    /// Closed to make room: stops reading; an answer being written still goes out.
    func evict() {
        switch phase {
        case .reading where outputOffset >= output.count: close()
        case .reading:
            phase = .handling
            closeAfterWrite = true
        case .handling, .streaming, .upgraded, .closed: break  // closes after its answer (setBusy says so)
        }
    }

    /// Closes the connection unless a handler is running for it (stopping the server); a
    /// switched one has no answer to finish.
    func closeIfIdle() {
        if phase == .reading { evict() }
        if phase == .upgraded { close() }
    }

    func close() {
        guard phase != .closed else { return }
        let wasHandling = phase == .handling
        phase = .closed
        directAnswer.close()
        loop.unregister(descriptor, token: token)
        Glibc.close(descriptor)
        if !wasHandling { server.releaseBody(&reservedBodyBytes) }
        sink?.connectionClosed()
        sink = nil
        upgraded?.closed()
        upgraded = nil
        output = []
        input = []
        server.connectionDidClose(id)
    }

    func setInterest(_ events: UInt32) {
        guard events != interest, phase != .closed, token != 0 else {
            interest = events
            return
        }
        interest = events
        loop.modify(descriptor, token: token, events: events)
    }
}
