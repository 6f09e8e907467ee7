#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation

/// A thread about to sleep for work that usually comes within microseconds polls for it a
/// moment first, yielding the CPU between looks: on a virtual machine a sleeping thread's
/// wake-up (a futex or epoll wake, an inter-processor interrupt to a halted virtual CPU, the
/// switch back) costs tens of microseconds, more than the wait it ends, and a commit at one
/// connection crosses several such hand-offs on three nodes.
///
/// The poll is meant to take only CPU nobody else wants: it stops at once when a yield gave
/// the CPU to another thread (the machine is busy, and the poll would only delay that
/// thread). A yield sees only its own CPU's queue, so a thread waiting on the other CPU's
/// is not noticed; hence also the second bound: a thread polls only while its work comes in
/// quick succession (`BusyTracker`), so an idle node sleeps as before.
public enum BriefSpin {
    /// The longest poll (300 us measured no better at one connection, and costs more where
    /// nothing comes).
    public static let budgetSeconds = 0.000_1
    /// A yield that took longer than this ran another thread.
    static let contendedYieldSeconds = 0.000_005

    /// Polls `isReady` until it says true (returns true), the budget runs out or another
    /// thread wanted the CPU (returns false: the caller sleeps as usual).
    public static func poll(_ isReady: () -> Bool) -> Bool {
        let deadline = monotonicSeconds() + budgetSeconds
        while true {
            if isReady() { return true }
            let yielded = monotonicSeconds()
            guard yielded < deadline else { return false }
            sched_yield()
            if monotonicSeconds() - yielded > contendedYieldSeconds { return isReady() }
        }
    }
}

/// Whether work comes in quick succession: `burst` pieces within `window` make the thread
/// busy until `window` after the latest. An idle node's heartbeats (a leader hears its
/// followers' answers to one heartbeat within a millisecond) stay below that; one client's
/// commits (a request and two followers' answers every few hundred microseconds) do not.
/// One thread's own state (not thread-safe).
public struct BusyTracker {
    public static let window = 0.002
    public static let burst = 4
    /// The times of the latest `burst` pieces of work, a ring.
    private var recent = [Double](repeating: -Double.infinity, count: BusyTracker.burst)
    private var next = 0
    private var busyUntil = -Double.infinity

    public init() {}

    /// Notes work arriving at `now`.
    public mutating func noteWork(at now: Double) {
        recent[next] = now
        next = (next + 1) % Self.burst
        // `next` now points at the oldest of the latest `burst`.
        if now - recent[next] < Self.window { busyUntil = now + Self.window }
    }

    /// True while work keeps coming (a brief poll before sleeping is likely to pay).
    public func isBusy(at now: Double) -> Bool { now < busyUntil }
}
