#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The seed of the simulation running now, so a trap inside the core (a failed
/// `precondition`, which ends the process) still says which seed to replay.
private let runningSeed = Atomic<UInt64>(0)
private let isInstalled = Atomic<Bool>(false)

/// Prints the running simulation's seed and replay command if the process traps.
public enum CrashReporter {
    /// Installs the handler once; later calls do nothing.
    public static func install() {
        guard isInstalled.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        for signalNumber in [SIGILL, SIGTRAP, SIGABRT, SIGSEGV] {
            signal(signalNumber, reportAndReraise)
        }
    }

    /// Records the seed about to run (0 when none is running).
    public static func setRunningSeed(_ seed: UInt64) {
        runningSeed.store(seed, ordering: .relaxed)
    }
}

/// Async-signal-safe: formats digits by hand and writes with write(2).
private func reportAndReraise(_ signalNumber: Int32) {
    let seed = runningSeed.load(ordering: .relaxed)
    if seed != 0 {
        var digits = [UInt8](repeating: 0, count: 20)
        var value = seed
        var count = 0
        repeat {
            digits[19 - count] = UInt8(48 + value % 10)
            value /= 10
            count += 1
        } while value > 0
        func put(_ text: StaticString) { _ = write(2, text.utf8Start, text.utf8CodeUnitCount) }
        put("\nsimulation crashed inside the core; replay: swift run -c release orchestrator simulate --seed ")
        digits.withUnsafeBufferPointer { _ = write(2, $0.baseAddress! + (20 - count), count) }
        put("\n")
    }
    signal(signalNumber, SIG_DFL)
    raise(signalNumber)
}
