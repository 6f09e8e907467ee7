import Foundation
import Transport

/// Tasks suspended until a piece of state changes, and that state (`State`) under one lock:
/// a task suspends only if the state, read under the lock, says it must (so a change made
/// between its own look and its suspension is never missed), and a change resumes every task
/// waiting then, each of which looks again as it needs. No thread waits with them. Each
/// continuation is resumed exactly once (at once, or by the change that takes it out of
/// `waiting`), so the unchecked kind serves (a checked one allocated an object per wait).
final class WaitingTasks<State>: @unchecked Sendable {
    private let lock = AdaptiveLock()
    private var state: State
    private var waiting: [UnsafeContinuation<Void, Never>] = []

    init(_ state: State) { self.state = state }

    /// Reads the state.
    func read<T>(_ body: (State) -> T) -> T { lock.withLock { body(state) } }

    /// Suspends while `mustWait` says so (read under the lock), until the next `change`;
    /// returns at once otherwise.
    func wait(while mustWait: (State) -> Bool) async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let suspends = lock.withLock { () -> Bool in
                guard mustWait(state) else { return false }
                waiting.append(continuation)
                return true
            }
            if !suspends { continuation.resume() }
        }
    }

    /// Changes the state; with `resuming`, every waiting task then goes on (resumed on its
    /// executor, after the lock is released).
    func change(resuming: Bool = true, _ body: (inout State) -> Void) {
        let resumed = lock.withLock { () -> [UnsafeContinuation<Void, Never>] in
            body(&state)
            // Nobody waiting (nearly always): nothing to hand out. Returning the empty array
            // would share its buffer, and emptying it then would allocate a new one, per change.
            guard resuming, !waiting.isEmpty else { return [] }
            defer { waiting.removeAll(keepingCapacity: true) }
            return waiting
        }
        for continuation in resumed { continuation.resume() }
    }

    /// Tasks suspended now (for tests).
    var waitingCount: Int { lock.withLock { waiting.count } }
}
