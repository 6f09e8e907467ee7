import Foundation

/// The threads suspending handlers run on: a task executor of the server's own, so that
/// code elsewhere in the process blocking the shared cooperative pool (its threads are as
/// many as the cores) cannot stall the answers of requests that merely waited. A job is
/// short (a handler's work between two waits); the threads sleep on a condition when
/// there is none.
public final class HandlerExecutor: TaskExecutor, @unchecked Sendable {
    /// The process's handler threads: one per core, at least two.
    public static let shared = HandlerExecutor(threads: max(2, ProcessInfo.processInfo.activeProcessorCount))

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0

    init(threads: Int) {
        for index in 0..<threads {
            let thread = Thread { [self] in run() }
            thread.name = "http-task-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    private func run() {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: jobs.capacity <= 1_024)
                head = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
