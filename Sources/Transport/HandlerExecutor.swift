import Foundation

/// The threads a suspending handler runs on when it is answered outside a server
/// (`Router.respond(to:)`, `Dispatch.respondNow`: tools and tests; the server runs them on its
/// event loops): a task executor of its own, so that code elsewhere in the process blocking
/// the shared cooperative pool (its threads are as many as the cores) cannot stall them. A job is
/// short (a handler's work between two waits); it runs on a `WorkerPool` of as many
/// threads as cores (at least two), started as jobs come and ended when idle.
public final class HandlerExecutor: TaskExecutor, @unchecked Sendable {
    /// The process's handler threads: one per core, at least two.
    public static let shared = HandlerExecutor(threads: max(2, ProcessInfo.processInfo.activeProcessorCount))

    let pool: WorkerPool

    init(threads: Int) {
        pool = WorkerPool(name: "http-task", maxThreads: threads)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pool.run { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}
