#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import CEpoll
import Foundation

/// A connection whose answer does not end the exchange: a streamed answer, written as its
/// producer makes it, and a switch of protocols (`101`), after which the connection's input
/// goes to a receiver. On the connection's event loop, like the rest of it.
extension ServerConnection {
    /// Starts a streamed answer: its head at once, then what the producer writes until it ends
    /// or the client goes. The connection stays busy (never evicted as idle) and closes
    /// afterwards.
    func startStream(_ response: HTTPResponse, _ stream: @escaping @Sendable (_ write: ([UInt8]) -> Bool) -> Void, includeBody: Bool) {
        var head = response
        head.body = []
        var bytes = head.serialized(keepAlive: false, includeBody: false)
        if let range = bytes.firstRange(of: Array("Content-Length: 0\r\n".utf8)) { bytes.removeSubrange(range) }
        write(bytes)
        guard includeBody, phase != .closed else { return finishStream() }
        phase = .streaming
        setInterest(interest | EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
        let sink = StreamSink(connection: self, maxPendingBytes: 1 << 20, writeTimeoutSeconds: server.limits.writeTimeoutSeconds)
        self.sink = sink
        server.workers.run {
            stream { chunk in sink.write(chunk) }
            sink.producerEnded()
        }
    }

    /// Writes the `101` answer and hands the connection's input to `receiver` from then on,
    /// starting with what the client sent after its request. The connection stays busy (never
    /// evicted as idle, no idle deadline) until either side closes it or the server stops.
    func switchProtocols(_ response: HTTPResponse, to receiver: any UpgradedReceiver) {
        guard !server.setBusy(id, true), !isEndOfInput else { return close() }
        write(response.serialized(keepAlive: true, includeBody: false))
        guard phase != .closed else { return }
        phase = .upgraded
        upgraded = receiver
        let rest = input[offset...]
        input = []
        offset = 0
        if !rest.isEmpty, !deliver(rest) { return close() }
        setInterest(interest | EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
    }

    /// Hands input to the switched connection's receiver. What it then holds (a frame not yet
    /// whole) is reserved from the server's budget for bodies being read, as a request body
    /// would be, so that many streams cannot each hold a large partial frame. False: close.
    func deliver(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard let upgraded, upgraded.received(bytes) else { return false }
        let held = upgraded.bufferedBytes
        guard held != reservedBodyBytes else { return true }
        server.releaseBody(&reservedBodyBytes)
        guard held > 0 else { return true }
        guard server.reserveBody(held) else { return false }
        reservedBodyBytes = held
        return true
    }

    // MARK: Streams

    /// Bytes a stream's producer wrote (on the loop).
    func streamed(_ bytes: [UInt8]) {
        guard phase == .streaming else { return }
        write(bytes)
    }

    /// The stream's producer returned: close once what it wrote is out.
    func finishStream() {
        guard phase != .closed else { return }
        _ = server.setBusy(id, false)
        closeAfterWrite = true
        flushOrClose()
    }
}
