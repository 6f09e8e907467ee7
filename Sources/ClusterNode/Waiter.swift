import Foundation

/// A one-shot result that one thread waits for and another delivers.
final class Waiter<Result: Sendable>: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var result: Result?

    /// Delivers the result; later deliveries are ignored.
    func deliver(_ value: Result) {
        let isFirst = lock.withLock { () -> Bool in
            guard result == nil else { return false }
            result = value
            return true
        }
        if isFirst { semaphore.signal() }
    }

    /// Waits up to `seconds`; nil on timeout.
    func wait(seconds: Double) -> Result? {
        guard semaphore.wait(timeout: .now() + seconds) == .success else { return nil }
        return lock.withLock { result }
    }
}
