#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The seed of the simulation running now, so a trap inside the core (a failed
/// `precondition`, which ends the process) still says which seed to replay.
private let runningSeed = Atomic<UInt64>(0)
/// The cluster size the running seed was fixed to (0: drawn from the seed).
private let runningNodeCount = Atomic<Int>(0)
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

    /// Records the seed about to run (0 when none is running) and the cluster size it was
    /// fixed to, if any, so the replay command repeats both.
    public static func setRunningSeed(_ seed: UInt64, nodes: Int? = nil) {
        runningNodeCount.store(nodes ?? 0, ordering: .relaxed)
        runningSeed.store(seed, ordering: .relaxed)
    }
}

/// Writes `number` in decimal to standard error, async-signal-safe (no allocation).
private func putDigits(_ number: UInt64) {
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes on the stack: room for 20 digits
    withUnsafeMutableBytes(of: &digits) { buffer in
        var value = number
        var count = 0
        repeat {
            buffer[19 - count] = UInt8(48 + value % 10)
            value /= 10
            count += 1
        } while value > 0
        _ = write(2, buffer.baseAddress! + (20 - count), count)
    }
}

/// Async-signal-safe: formats digits by hand and writes with write(2).
private func reportAndReraise(_ signalNumber: Int32) {
    let seed = runningSeed.load(ordering: .relaxed)
    if seed != 0 {
        func put(_ text: StaticString) { _ = write(2, text.utf8Start, text.utf8CodeUnitCount) }
        put("\nsimulation crashed inside the core; replay: swift run -c release orchestrator simulate --seed ")
        putDigits(seed)
        let nodes = runningNodeCount.load(ordering: .relaxed)
        if nodes > 0 {
            put(" --nodes ")
            putDigits(UInt64(nodes))
        }
        put("\n")
    }
    signal(signalNumber, SIG_DFL)
    raise(signalNumber)
}
