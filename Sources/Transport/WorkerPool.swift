import Foundation

/// Threads for work that may block (a handler that forwards a request and waits for the
/// answer, or writes an event stream): started as work arrives, up to `maxThreads`, and
/// ended after `idleSeconds` without work, so an idle server holds none. Work beyond the
/// threads waits in order.
final class WorkerPool: @unchecked Sendable {
    let name: String
    let maxThreads: Int
    let idleSeconds: Double
    private let condition = NSCondition()
    private var queue: [@Sendable () -> Void] = []
    private var head = 0
    private var threads = 0
    private var idle = 0
    private var isShutDown = false

    init(name: String, maxThreads: Int, idleSeconds: Double = 10) {
        self.name = name
        self.maxThreads = max(1, maxThreads)
        self.idleSeconds = idleSeconds
    }

    /// Threads alive now, and how many of them are running work.
    var threadCounts: (alive: Int, busy: Int) { condition.withLock { (threads, threads - idle) } }

    func run(_ work: @escaping @Sendable () -> Void) {
        condition.lock()
        queue.append(work)
        if idle > queue.count - head - 1 {
            condition.signal()
            condition.unlock()
            return
        }
        let mustStart = threads < maxThreads
        if mustStart { threads += 1 }
        condition.unlock()
        if mustStart {
            startNamedThread(name, stackSize: 512 * 1024) { [self] in serve() }
        }
    }

    /// Idle threads end now; busy ones when their work is done.
    func shutDown() {
        condition.withLock {
            isShutDown = true
            condition.broadcast()
        }
    }

    private func serve() {
        condition.lock()
        while true {
            if head < queue.count {
                let next = queue[head]
                head += 1
                if head > 64, head * 2 > queue.count {
                    queue.removeFirst(head)
                    head = 0
                }
                condition.unlock()
                next()
                condition.lock()
                continue
            }
            if isShutDown { break }
            idle += 1
            let signalled = condition.wait(until: Date(timeIntervalSinceNow: idleSeconds))
            idle -= 1
            if !signalled, head == queue.count { break }
        }
        threads -= 1
        condition.unlock()
    }
}

/// Blocking work from a task: runs `work` on a thread of a process-wide pool and suspends
/// until it is done, so a suspending handler that must make a blocking call (forwarding a
/// request over the blocking client) does not hold one of the few threads tasks run on.
public func runBlocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        WorkerPool.blocking.run {
            do {
                continuation.resume(returning: try work())
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

extension WorkerPool {
    /// Threads for `runBlocking`, shared by the process.
    static let blocking = WorkerPool(name: "blocking", maxThreads: 512)
}
