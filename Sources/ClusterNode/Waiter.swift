import Foundation
import Synchronization
import Transport

/// A one-shot result that another side delivers, waited for without holding a thread: by a
/// task, suspended (`value`), or by a callback (`whenDelivered`). Its state sits in the object
/// under an inline `Mutex`: one allocation per request, where a separate lock object (and its
/// pthread mutex) made three. The continuation or callback is called exactly once, by
/// whichever of delivery and expiry first marks the state over (or at once when the result
/// came first), so the unchecked continuation serves: a checked one allocated a checking
/// object per request.
final class Waiter<Result: Sendable>: WaitDeadlines.Expiring, @unchecked Sendable {
    private struct State {
        var result: Result?
        var waiting: Resumption<Result?>?
        /// Delivered or given up: nothing more happens.
        var isOver = false
    }

    private let state = Mutex(State())

    /// Delivers the result; later deliveries are ignored.
    func deliver(_ value: Result) {
        let waiting = state.withLock { state -> Resumption<Result?>? in
            guard !state.isOver else { return nil }
            state.result = value
            state.isOver = true
            defer { state.waiting = nil }
            return state.waiting
        }
        waiting?.resume(value)
    }

    /// Suspends up to `seconds` (one waiter at a time); nil on timeout.
    func value(seconds: Double) async -> Result? {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Result?, Never>) in
            wait(.task(continuation), seconds: seconds)
        }
    }

    /// Calls `body` with the result once it is delivered, or with nil after `seconds` (one
    /// waiter at a time): at once, on this thread, when it was delivered already; otherwise on
    /// the thread that delivers it or gives up (the round's thread, the deadlines' timer), so
    /// `body` should only hand the result on.
    func whenDelivered(seconds: Double, _ body: @escaping (Result?) -> Void) {
        wait(.callback(body), seconds: seconds)
    }

    private func wait(_ waiting: Resumption<Result?>, seconds: Double) {
        let delivered = state.withLock { state -> Result? in
            if let result = state.result { return result }
            state.waiting = waiting
            return nil
        }
        if let delivered { return waiting.resume(delivered) }
        WaitDeadlines.shared.add(self, after: seconds)
    }

    var isSettled: Bool { state.withLock { $0.isOver } }

    func expire() {
        let expired = state.withLock { state -> Resumption<Result?>? in
            guard !state.isOver else { return nil }
            state.isOver = true
            defer { state.waiting = nil }
            return state.waiting
        }
        expired?.resume(nil)
    }
}

/// Who waits for a value: a suspended task, or a callback (called on whichever thread
/// delivers). Either is resumed exactly once by its owner (`Waiter`, `WaitingTasks`), which
/// is what makes the unchecked continuation and the unchecked sendability sound.
enum Resumption<Value: Sendable>: @unchecked Sendable {
    case task(UnsafeContinuation<Value, Never>)
    case callback((Value) -> Void)

    func resume(_ value: Value) {
        switch self {
        case .task(let continuation): continuation.resume(returning: value)
        case .callback(let body): body(value)
        }
    }
}

/// When waiting tasks give up (`Waiter.value(seconds:)`). A node's waiters all wait the same
/// time (its commit timeout), so deadlines of one length come in the order they were set:
/// each length has a first-in-first-out lane and one timer at its front's deadline. Waiters
/// that got their answer leave from the front as new ones join, so a lane holds about the
/// waits in flight. (A timer per waiter in the shared heap cost about 3% of a leader's CPU at
/// 128 connections: a closure and a heap entry for each request, kept for the whole timeout.)
final class WaitDeadlines: @unchecked Sendable {
    protocol Expiring: AnyObject {
        /// Answered or expired already.
        var isSettled: Bool { get }
        /// Gives up waiting (nothing when settled).
        func expire()
    }

    static let shared = WaitDeadlines(timers: TimerThread.shared)

    /// One wait length's waiters, in the order of their deadlines.
    private struct Lane {
        let seconds: Double
        var waits = DelayedQueue<any Expiring>()
        /// A timer is set for this lane.
        var isTimed = false
    }

    private let timers: TimerThread
    private let lock = AdaptiveLock()
    /// A few lanes at most (one per commit timeout in use): searched in order.
    private var lanes: [Lane] = []

    init(timers: TimerThread) { self.timers = timers }

    /// `waiter` expires `seconds` from now unless it is settled by then.
    func add(_ waiter: any Expiring, after seconds: Double) {
        let deadline = monotonicSeconds() + seconds
        let mustTime = lock.withLock { () -> Bool in
            let at = laneIndex(seconds)
            // Settled waiters at the front go now: commits come in the order of proposals.
            _ = lanes[at].waits.takeFront { waiter, _ in waiter.isSettled }
            lanes[at].waits.append([waiter], due: deadline)
            guard !lanes[at].isTimed else { return false }
            lanes[at].isTimed = true
            return true
        }
        if mustTime { timeLane(seconds, at: deadline) }
    }

    /// Waiters in the lanes (answered ones not yet dropped included).
    var count: Int { lock.withLock { lanes.reduce(0) { $0 + $1.waits.count } } }

    private func laneIndex(_ seconds: Double) -> Int {
        if let at = lanes.firstIndex(where: { $0.seconds == seconds }) { return at }
        lanes.append(Lane(seconds: seconds))
        return lanes.count - 1
    }

    private func timeLane(_ seconds: Double, at deadline: Double) {
        timers.schedule(after: deadline - monotonicSeconds()) { [self] in sweep(seconds) }
    }

    /// Takes the lane's front waiters that are due or settled (expiring a settled one does
    /// nothing), then sets the timer for the new front.
    private func sweep(_ seconds: Double) {
        let now = monotonicSeconds()
        let (taken, next) = lock.withLock { () -> ([any Expiring], Double?) in
            let at = laneIndex(seconds)
            let taken = lanes[at].waits.takeFront { waiter, due in due <= now || waiter.isSettled }
            lanes[at].isTimed = !lanes[at].waits.isEmpty
            return (taken, lanes[at].waits.firstDue)
        }
        for waiter in taken { waiter.expire() }
        if let next { timeLane(seconds, at: next) }
    }
}
