import Foundation
import Transport

/// Wakes the loops that act only on the leader (reconcile, autoscalers) when this node
/// becomes leader, so that on a follower they sleep instead of polling (a follower's loops
/// woke three times a second only to find it still following: an eighth of an idle node's
/// CPU).
final class LeadershipSignal: @unchecked Sendable {
    private let lock = AdaptiveLock()
    private var waiters: [CheckedContinuation<Void, Never>] = []
    /// Counts leaderships begun, so a wait cannot miss one that begins while it starts.
    private var generation = 0
    private var isStopped = false

    /// Returns once `isLeading()` is true, or the node stops. `isLeading` reads the core,
    /// which becomes leader before `becameLeader` is called (no lock of this type is held
    /// while it runs).
    func untilLeading(_ isLeading: () -> Bool) async {
        let seen = lock.withLock { generation }
        if isLeading() { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            guard !isStopped, generation == seen else {
                lock.unlock()
                return continuation.resume()
            }
            waiters.append(continuation)
            lock.unlock()
        }
    }

    /// This node became leader: every waiting loop goes on.
    func becameLeader() {
        let woken = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            generation += 1
            defer { waiters = [] }
            return waiters
        }
        for waiter in woken { waiter.resume() }
    }

    /// The node stops: waiting loops go on (to see that and end), and none waits again.
    func stop() {
        lock.withLock { isStopped = true }
        becameLeader()
    }
}
