import Foundation
import Transport

/// Tasks suspended (or callbacks kept) until a piece of state changes, and that state
/// (`State`) under one lock: a task waits only if the state, read under the lock, says it must
/// (so a change made between its own look and its suspension is never missed), and a change
/// resumes every task waiting then, each of which looks again as it needs. No thread waits
/// with them. Each continuation is resumed exactly once (at once, or by the change that takes
/// it out of `waiting`), so the unchecked kind serves (a checked one allocated an object per wait).
final class WaitingTasks<State>: @unchecked Sendable {
    private let lock = AdaptiveLock()
    private var state: State
    private var waiting: [Resumption<Void>] = []

    init(_ state: State) { self.state = state }

    /// Reads the state.
    func read<T>(_ body: (State) -> T) -> T { lock.withLock { body(state) } }

    /// Suspends while `mustWait` says so (read under the lock), until the next `change`;
    /// returns at once otherwise.
    func wait(while mustWait: (State) -> Bool) async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let suspends = lock.withLock { () -> Bool in
                guard mustWait(state) else { return false }
                waiting.append(.task(continuation))
                return true
            }
            if !suspends { continuation.resume() }
        }
    }

    /// Keeps `body` to be called after the next `change` (on the thread making it) and returns
    /// true when `mustWait` says so (read under the lock); returns false otherwise, without
    /// calling it.
    func callAfterNextChange(if mustWait: (State) -> Bool, _ body: @escaping () -> Void) -> Bool {
        lock.withLock {
            guard mustWait(state) else { return false }
            waiting.append(.callback(body))
            return true
        }
    }

    /// Changes the state; with `resuming`, every waiting task then goes on (resumed on its
    /// executor, after the lock is released) and every kept callback is called.
    func change(resuming: Bool = true, _ body: (inout State) -> Void) {
        let resumed = lock.withLock { () -> [Resumption<Void>] in
            body(&state)
            // Nobody waiting (nearly always): nothing to hand out. Returning the empty array
            // would share its buffer, and emptying it then would allocate a new one, per change.
            guard resuming, !waiting.isEmpty else { return [] }
            defer { waiting.removeAll(keepingCapacity: true) }
            return waiting
        }
        for waiter in resumed { waiter.resume(()) }
    }

    /// Tasks suspended and callbacks kept now (for tests).
    var waitingCount: Int { lock.withLock { waiting.count } }
}
