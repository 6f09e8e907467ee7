import Foundation

/// Hands a streamed answer's bytes from its producer thread to the connection's loop, and
/// holds the producer back while more than `maxPendingBytes` wait to be written (a slow
/// reader): the write fails once it has waited the write timeout, or the client is gone.
final class StreamSink: @unchecked Sendable {
    private let condition = NSCondition()
    private weak var connection: ServerConnection?
    private let loop: EventLoop
    private let maxPendingBytes: Int
    private let writeTimeoutSeconds: Double
    private var pending = 0
    private var isClosed = false

    init(connection: ServerConnection, maxPendingBytes: Int, writeTimeoutSeconds: Double) {
        self.connection = connection
        self.loop = connection.loop
        self.maxPendingBytes = maxPendingBytes
        self.writeTimeoutSeconds = writeTimeoutSeconds
    }

    /// From the producer: false once the client is gone or too slow.
    func write(_ bytes: [UInt8]) -> Bool {
        condition.lock()
        let deadline = Date(timeIntervalSinceNow: writeTimeoutSeconds)
        while !isClosed, pending > maxPendingBytes {
            if !condition.wait(until: deadline) { break }
        }
        let isOpen = !isClosed && pending <= maxPendingBytes
        if isOpen { pending += bytes.count }
        condition.unlock()
        guard isOpen else { return false }
        loop.execute { [weak connection] in connection?.streamed(bytes) }
        return true
    }

    func producerEnded() {
        loop.execute { [weak connection] in connection?.finishStream() }
    }

    /// From the loop: `bytes` of what the producer wrote went out.
    func wrote(_ bytes: Int) {
        condition.withLock {
            pending = max(0, pending - bytes)
            condition.broadcast()
        }
    }

    func connectionClosed() {
        condition.withLock {
            isClosed = true
            condition.broadcast()
        }
    }
}
