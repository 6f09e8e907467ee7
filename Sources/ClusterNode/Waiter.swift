import Foundation
import Transport

/// A one-shot result that one side waits for and another delivers: a thread that blocks
/// (`wait`) or a task that suspends without holding a thread (`value`).
final class Waiter<Result: Sendable>: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var result: Result?
    private var continuation: CheckedContinuation<Result?, Never>?

    /// Delivers the result; later deliveries are ignored.
    func deliver(_ value: Result) {
        let waiting = lock.withLock { () -> (isFirst: Bool, continuation: CheckedContinuation<Result?, Never>?) in
            guard result == nil else { return (false, nil) }
            result = value
            defer { continuation = nil }
            return (true, continuation)
        }
        guard waiting.isFirst else { return }
        semaphore.signal()
        waiting.continuation?.resume(returning: value)
    }

    /// Blocks up to `seconds`; nil on timeout.
    func wait(seconds: Double) -> Result? {
        guard semaphore.wait(timeout: .now() + seconds) == .success else { return nil }
        return lock.withLock { result }
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
