import Foundation

/// One thread that runs actions at their deadlines, for the many timeouts that almost never
/// fire (a request waiting for its commit, say): scheduling one is a heap insertion under a
/// lock, and the thread wakes only for the earliest deadline, at most once per `resolution`.
/// A dispatch timer per request cost a timer-manager wake-up and a pool thread each.
/// Actions must be short and must not block: they run one after another on this thread.
public final class TimerThread: @unchecked Sendable {
    public static let shared = TimerThread(name: "timeouts", resolution: 0.005)

    private let condition = NSCondition()
    private var heap = TimerHeap()
    private var wakeAt = Double.infinity
    private let resolution: Double

    /// `resolution`: deadlines are rounded up to a multiple of it, so that timeouts due
    /// close together are run by one wake-up.
    public init(name: String, resolution: Double) {
        self.resolution = resolution
        startNamedThread(name, stackSize: 256 << 10) { [self] in run() }
    }

    /// Runs `action` on this thread `seconds` from now (or a little later, within the resolution).
    public func schedule(after seconds: Double, _ action: @escaping @Sendable () -> Void) {
        let deadline = ((monotonicSeconds() + max(0, seconds)) / resolution).rounded(.up) * resolution
        condition.withLock {
            heap.push(deadline, action)
            if deadline < wakeAt { condition.signal() }
        }
    }

    private func run() {
        condition.lock()
        while true {
            let now = monotonicSeconds()
            var due: [() -> Void] = []
            while let action = heap.popDue(now: now) { due.append(action) }
            if !due.isEmpty {
                condition.unlock()
                for action in due { action() }
                condition.lock()
                continue
            }
            wakeAt = heap.earliest ?? .infinity
            if wakeAt == .infinity {
                condition.wait()
            } else {
                _ = condition.wait(until: Date(timeIntervalSinceNow: wakeAt - now))
            }
            wakeAt = .infinity
        }
    }
}
