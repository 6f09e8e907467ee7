import Foundation
import Testing
@testable import Transport

@Suite struct TimerThreadTests {
    private final class Record: @unchecked Sendable {
        let lock = NSLock()
        var ran: [(label: Int, at: Double)] = []
        func add(_ label: Int) { lock.withLock { ran.append((label, monotonicSeconds())) } }
        var count: Int { lock.withLock { ran.count } }
    }

    @Test func actionsRunAtTheirDeadlinesInOrderNeverEarly() throws {
        let timers = TimerThread(name: "test-timeouts", resolution: 0.005)
        let record = Record()
        let start = monotonicSeconds()
        let delays = [0.12, 0.02, 0.08, 0.05, 0.05]
        for (label, delay) in delays.enumerated() { timers.schedule(after: delay) { record.add(label) } }
        let deadline = Date().addingTimeInterval(5)
        while record.count < delays.count, Date() < deadline { usleep(5_000) }
        let ran = record.lock.withLock { record.ran }
        #expect(ran.map(\.label) == [1, 3, 4, 2, 0])
        for entry in ran { #expect(entry.at - start >= delays[entry.label] - 0.0005, "action \(entry.label) ran early") }
        // A later, earlier deadline wakes the thread sooner than the one it sleeps for.
        let far = Record()
        timers.schedule(after: 10) { far.add(0) }
        let soon = monotonicSeconds()
        timers.schedule(after: 0.01) { record.add(9) }
        while record.count < delays.count + 1, monotonicSeconds() - soon < 5 { usleep(2_000) }
        #expect(monotonicSeconds() - soon < 1, "the thread slept past a nearer deadline")
        #expect(far.count == 0)
    }
}
