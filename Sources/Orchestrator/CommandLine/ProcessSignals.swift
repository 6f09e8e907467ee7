import Foundation
import Transport

/// Notices that the process that spawned this one is gone: it holds the write end of our
/// standard input, so end-of-file means it exited (or was killed).
enum ParentWatch {
    /// Runs `action` on a thread of its own once standard input closes.
    static func onStandardInputClosed(_ action: @escaping @Sendable () -> Void) {
        startNamedThread("parent-watch") {
            var byte: UInt8 = 0
            while true {
                let count = read(0, &byte, 1)
                if count == 0 || (count < 0 && errno != EINTR) { break }
            }
            action()
        }
    }
}

/// SIGINT and SIGTERM, received by one thread with sigwait(3).
///
/// `install()` must run first thing in `main`, before any thread exists: it blocks both
/// signals so every later thread inherits the block and none can receive (and, with no
/// handler, lose) them; the waiting thread is then the only receiver.
enum Signals {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var handler: (@Sendable () -> Void)?

    static func install() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waited = set
        startNamedThread("signals") {
            var set = waited
            while true {
                var received: Int32 = 0
                guard sigwait(&set, &received) == 0 else { continue }
                if let handler = lock.withLock({ Signals.handler }) {
                    handler()
                } else {
                    // No command asked for a clean stop: end as the signal would have.
                    fflush(nil)
                    _exit(128 + received)
                }
            }
        }
    }

    /// Runs `handler` (once per signal) on SIGINT or SIGTERM instead of exiting at once.
    static func onTermination(_ handler: @escaping @Sendable () -> Void) {
        lock.withLock { Signals.handler = handler }
    }
}
