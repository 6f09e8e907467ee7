import Foundation
import Transport

/// A one-shot result that a task waits for, suspended without holding a thread (`value`),
/// and another side delivers.
final class Waiter<Result: Sendable>: @unchecked Sendable {
    private let lock = AdaptiveLock()
    private var result: Result?
    private var continuation: CheckedContinuation<Result?, Never>?

    /// Delivers the result; later deliveries are ignored.
    func deliver(_ value: Result) {
        let waiting = lock.withLock { () -> CheckedContinuation<Result?, Never>? in
            guard result == nil else { return nil }
            result = value
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(returning: value)
    }

    /// Suspends up to `seconds` (one waiting task at a time); nil on timeout.
    func value(seconds: Double) async -> Result? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result?, Never>) in
            let delivered = lock.withLock { () -> Result? in
                if let result { return result }
                self.continuation = continuation
                return nil
            }
            if let delivered { return continuation.resume(returning: delivered) }
            TimerThread.shared.schedule(after: seconds) { [weak self] in self?.expire() }
        }
    }

    private func expire() {
        let expired = lock.withLock { () -> CheckedContinuation<Result?, Never>? in
            defer { continuation = nil }
            return result == nil ? continuation : nil
        }
        expired?.resume(returning: nil)
    }
}
