import Foundation
import Synchronization
import Transport

/// Lets a request that would wait for the state lock while a round holds it suspend its
/// task (or leave a callback) instead of blocking its event loop. A round (on the round
/// thread, or on an event loop of a nearly idle node) holds the lock for a whole batch
/// (`ClusterService.logWritten` decodes the round's new entries, `ClusterService.apply`
/// applies the committed ones): at 128 connections tens to hundreds of microseconds, in
/// which the loop reads and parses other connections' requests instead of sleeping on the lock. The task resumes once the
/// round has released it. Other holders of the lock (requests, views) hold it for
/// microseconds; a request simply waits for them.
///
/// `isHeld` is set and cleared inside `tasks`' changes, so it can be read without their lock
/// (a request's look on the fast path) and with it (whether to suspend).
final class RoundLockGate: @unchecked Sendable {
    private let tasks = WaitingTasks(())
    private let isHeld = Atomic<Bool>(false)

    /// A round is about to take the state lock.
    func roundTakesLock() {
        tasks.change(resuming: false) { _ in isHeld.store(true, ordering: .releasing) }
    }

    /// The round released the state lock: the waiting tasks resume (on their executors).
    func roundReleasedLock() {
        tasks.change { _ in isHeld.store(false, ordering: .releasing) }
    }

    /// Returns at once unless a round holds (or is taking) the state lock; then suspends
    /// until the round released it.
    func passWhenRoundReleased() async {
        guard isHeld.load(ordering: .acquiring) else { return }
        await tasks.wait { _ in isHeld.load(ordering: .acquiring) }
    }

    /// A round holds (or is taking) the state lock now (a look without the tasks' lock).
    var isHeldNow: Bool { isHeld.load(ordering: .acquiring) }

    /// Returns false at once unless a round holds (or is taking) the state lock; then true,
    /// and `body` is called once the round released it (on the round's thread: it should
    /// only hand the work on).
    func callWhenRoundReleased(_ body: @escaping () -> Void) -> Bool {
        tasks.callAfterNextChange(if: { _ in isHeld.load(ordering: .acquiring) }, body)
    }

    /// Tasks suspended and callbacks kept now (for tests).
    var waitingCount: Int { tasks.waitingCount }
}
