import Foundation
import Synchronization
import Transport

/// Lets a request that would wait for the state lock while a round holds it suspend its
/// task instead of blocking its event loop. A round (on the round thread, or on an event
/// loop of a nearly idle node) holds the lock for a whole batch (`ClusterService.logWritten`
/// decodes the round's new entries, `ClusterService.apply` applies the committed ones): at
/// 128 connections tens to hundreds of microseconds, in which the loop reads and parses
/// other connections' requests instead of sleeping on the lock. The task resumes once the round has released it. Other
/// holders of the lock (requests, views) hold it for microseconds; a request simply waits
/// for them.
///
/// Ownership: `lock` guards `isHeld` and `waiting`; `held` mirrors `isHeld` for a look
/// without the lock.
final class RoundLockGate: @unchecked Sendable {
    private let lock = AdaptiveLock()
    private var isHeld = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private let held = Atomic<Bool>(false)

    /// A round is about to take the state lock.
    func roundTakesLock() {
        lock.withLock {
            isHeld = true
            held.store(true, ordering: .releasing)
        }
    }

    /// The round released the state lock: the waiting tasks resume (on their executors).
    func roundReleasedLock() {
        let resumed = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            isHeld = false
            held.store(false, ordering: .releasing)
            defer { waiting.removeAll(keepingCapacity: true) }
            return waiting
        }
        for continuation in resumed { continuation.resume() }
    }

    /// Returns at once unless a round holds (or is taking) the state lock; then suspends
    /// until the round released it.
    func passWhenRoundReleased() async {
        guard held.load(ordering: .acquiring) else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let mustWait = lock.withLock { () -> Bool in
                guard isHeld else { return false }
                waiting.append(continuation)
                return true
            }
            if !mustWait { continuation.resume() }
        }
    }

    /// Tasks suspended now (for tests).
    var waitingCount: Int { lock.withLock { waiting.count } }
}
