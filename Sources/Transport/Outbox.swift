import Foundation

/// A bounded queue drained by its own thread, for one-way "fire and forget" sends to one
/// peer: the sender never blocks on a slow or dead peer. When full, the oldest message is
/// dropped (counted), which suits protocols that tolerate loss, like Raft.
public final class Outbox<Message: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [Message] = []
    private var head = 0
    private var isClosed = false
    private var droppedCount = 0
    private var deliveredCount = 0
    /// A batch is being delivered (by the draining thread or inline): one at a time, in order.
    private var isDelivering = false
    public let capacity: Int
    public let maxBatch: Int
    private let deliver: @Sendable ([Message]) -> Void

    /// Starts the draining thread. `deliver` receives up to `maxBatch` messages at a time, in
    /// order, on that thread; it may block (for example on a network send).
    public init(name: String, capacity: Int, maxBatch: Int = 64, deliver: @escaping @Sendable ([Message]) -> Void) {
        precondition(capacity > 0 && maxBatch > 0, "outbox capacity \(capacity) and batch \(maxBatch) must be positive")
        self.capacity = capacity
        self.maxBatch = maxBatch
        self.deliver = deliver
        let thread = Thread { [self] in drain() }
        thread.name = name
        thread.stackSize = 256 * 1024
        thread.start()
    }

    /// Queues `message`; never blocks. When the outbox is full the oldest message is dropped.
    public func enqueue(_ message: Message) {
        condition.lock()
        defer { condition.unlock() }
        guard !isClosed else { return }
        if queue.count - head >= capacity {
            head += 1
            droppedCount += 1
        }
        queue.append(message)
        condition.signal()
    }

    /// Offers `messages` to `inline` on the caller's thread when nothing is queued or being
    /// delivered (saving the draining thread a wake-up); `inline` returns false to decline
    /// without blocking, and the messages are then queued as by `enqueue`.
    public func send(_ messages: [Message], inline: ([Message]) -> Bool) {
        guard !messages.isEmpty else { return }
        condition.lock()
        guard !isClosed, queue.count == head, !isDelivering else {
            condition.unlock()
            for message in messages { enqueue(message) }
            return
        }
        isDelivering = true
        condition.unlock()
        let isSent = inline(messages)
        condition.lock()
        isDelivering = false
        if isSent {
            deliveredCount += messages.count
            if queue.count > head { condition.signal() }
            condition.unlock()
        } else {
            condition.unlock()
            for message in messages { enqueue(message) }
        }
    }

    /// Messages dropped because the outbox was full.
    public var dropped: Int { condition.withLock { droppedCount } }
    /// Messages handed to `deliver`.
    public var delivered: Int { condition.withLock { deliveredCount } }
    /// Messages waiting.
    public var pending: Int { condition.withLock { queue.count - head } }

    /// Stops the thread after the batch in progress; queued messages are discarded.
    public func close() {
        condition.lock()
        isClosed = true
        queue.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }

    private func drain() {
        while true {
            condition.lock()
            while !isClosed && (queue.count == head || isDelivering) { condition.wait() }
            if isClosed {
                condition.unlock()
                return
            }
            let end = min(queue.count, head + maxBatch)
            let batch = Array(queue[head..<end])
            head = end
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 4_096 {
                queue.removeFirst(head)
                head = 0
            }
            deliveredCount += batch.count
            isDelivering = true
            condition.unlock()
            deliver(batch)
            condition.withLock { isDelivering = false }
        }
    }
}
