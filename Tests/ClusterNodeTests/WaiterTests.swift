import Foundation
import Testing
import Transport
@testable import ClusterNode

@Suite struct WaiterTests {
    /// A waiter the test settles or lets expire, recording when it expired.
    private final class Probe: WaitDeadlines.Expiring, @unchecked Sendable {
        private let lock = NSLock()
        private var settled = false
        private(set) var expiredAt: Double?
        var isSettled: Bool { lock.withLock { settled } }
        func settle() { lock.withLock { settled = true } }
        func expire() {
            lock.withLock {
                guard !settled else { return }
                settled = true
                expiredAt = monotonicSeconds()
            }
        }
        var hasExpired: Bool { lock.withLock { expiredAt != nil } }
    }

    private static func wait(until condition: () -> Bool, seconds: Double = 5) {
        let deadline = monotonicSeconds() + seconds
        while !condition(), monotonicSeconds() < deadline { usleep(2_000) }
    }

    @Test func waitersExpireAtTheirDeadlinesNeverEarlyEachLengthInItsOwnLane() {
        let deadlines = WaitDeadlines(timers: TimerThread(name: "test-deadlines", resolution: 0.005))
        let start = monotonicSeconds()
        let long = Probe(), short = Probe(), later = Probe(), answered = Probe()
        deadlines.add(long, after: 0.30)
        deadlines.add(answered, after: 0.30)
        deadlines.add(short, after: 0.05)   // another length: expires first though added later
        deadlines.add(later, after: 0.30)
        answered.settle()
        Self.wait { long.hasExpired && short.hasExpired && later.hasExpired }
        #expect(short.expiredAt.map { $0 - start >= 0.05 } == true, "expired early or not at all")
        #expect(short.expiredAt.map { $0 - start < 0.25 } == true, "the short wait waited for the long one")
        #expect(long.expiredAt.map { $0 - start >= 0.30 } == true)
        #expect(later.expiredAt.map { $0 - start >= 0.30 } == true)
        #expect(!answered.hasExpired, "a settled waiter was expired")
        #expect(deadlines.count == 0)
    }

    @Test func answeredWaitersLeaveTheLaneAsNewOnesJoin() {
        let deadlines = WaitDeadlines(timers: TimerThread(name: "test-deadlines", resolution: 0.005))
        var inFlight: [Probe] = []
        // 10,000 waits answered in order, a few in flight at a time, as commits answer proposals.
        for _ in 0..<10_000 {
            let probe = Probe()
            deadlines.add(probe, after: 60)
            inFlight.append(probe)
            if inFlight.count > 4 { inFlight.removeFirst().settle() }
        }
        #expect(deadlines.count <= 5, "the lane kept \(deadlines.count) waiters")
        // One not answered holds back those behind it until its deadline, not longer.
        let other = WaitDeadlines(timers: TimerThread(name: "test-deadlines", resolution: 0.005))
        let stuck = Probe()
        other.add(stuck, after: 0.05)
        let behind = (0..<100).map { _ in Probe() }
        for probe in behind {
            other.add(probe, after: 0.05)
            probe.settle()
        }
        #expect(other.count == 101)
        Self.wait { stuck.hasExpired && other.count == 0 }
        #expect(stuck.hasExpired)
        #expect(other.count == 0)
        #expect(behind.allSatisfy { !$0.hasExpired })
    }

    @Test func aWaiterGetsItsResultOrNilAtItsTimeoutOnce() async {
        // Delivered from a thread of its own: the test's task pool may be busy for seconds
        // with other suites running beside this one.
        let answered = Waiter<Int>()
        Thread.detachNewThread {
            usleep(10_000)
            answered.deliver(7)
        }
        #expect(await answered.value(seconds: 120) == 7)
        let early = Waiter<Int>()
        early.deliver(3)
        early.deliver(4)  // ignored
        #expect(await early.value(seconds: 120) == 3)
        let unanswered = Waiter<Int>()
        let start = monotonicSeconds()
        #expect(await unanswered.value(seconds: 0.05) == nil)
        #expect(monotonicSeconds() - start >= 0.05)
        unanswered.deliver(9)  // too late: nothing to resume, no crash
    }
}

extension WaiterTests {
    /// Records each call of a waiter's callback.
    private final class Calls: @unchecked Sendable {
        private let lock = NSLock()
        private var results: [Int?] = []
        func note(_ result: Int?) { lock.withLock { results.append(result) } }
        var all: [Int?] { lock.withLock { results } }
    }

    @Test func aCallbackGetsTheResultOnceAtOnceIfDeliveredOrNilAtItsTimeout() {
        let early = Waiter<Int>(), earlyCalls = Calls()
        early.deliver(3)
        early.whenDelivered(seconds: 120) { earlyCalls.note($0) }
        #expect(earlyCalls.all == [3], "not called at once with a result already delivered")
        let later = Waiter<Int>(), laterCalls = Calls()
        later.whenDelivered(seconds: 120) { laterCalls.note($0) }
        #expect(laterCalls.all.isEmpty)
        later.deliver(7)
        later.deliver(8)  // ignored
        later.expire()  // over already: no second call
        #expect(laterCalls.all == [7])
        let unanswered = Waiter<Int>(), unansweredCalls = Calls()
        let start = monotonicSeconds()
        unanswered.whenDelivered(seconds: 0.05) { unansweredCalls.note($0) }
        Self.wait { !unansweredCalls.all.isEmpty }
        #expect(unansweredCalls.all == [nil])
        #expect(monotonicSeconds() - start >= 0.05)
        unanswered.deliver(9)  // too late: no second call
        #expect(unansweredCalls.all == [nil])
    }
}
