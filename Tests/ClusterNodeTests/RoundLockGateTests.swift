import Foundation
import Testing
@testable import ClusterNode

@Suite struct RoundLockGateTests {
    private final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func set() { lock.withLock { value = true } }
        var isSet: Bool { lock.withLock { value } }
    }

    @Test func aRequestPassesAtOnceUnlessARoundHoldsTheLockThenWhenItIsReleased() async {
        let gate = RoundLockGate()
        await gate.passWhenRoundReleased()  // nothing held: returns at once
        gate.roundTakesLock()
        let passed = Flag()
        let task = Task {
            await gate.passWhenRoundReleased()
            passed.set()
        }
        let deadline = Date().addingTimeInterval(10)
        while gate.waitingCount == 0, Date() < deadline { try? await Task.sleep(nanoseconds: 1_000_000) }
        #expect(gate.waitingCount == 1)
        #expect(!passed.isSet, "passed while the round held the lock")
        gate.roundReleasedLock()
        await task.value
        #expect(passed.isSet)
        #expect(gate.waitingCount == 0)
    }

    /// Rounds taking and releasing the lock on one thread while many tasks pass: none is
    /// left waiting (a release between a task's look and its registration is not lost).
    /// Each round holds the lock a moment and the next comes a moment later, as real ones
    /// do (in a tight loop the thread would keep a core busy for as long as the tasks take).
    /// Alone this takes 10 ms; a full test run reports 79-97 s for it, as for the other
    /// async tests there, which wait for the cooperative pool that blocking tests occupy. The
    /// time limit only catches a task left waiting for good: one minute was once too short
    /// for that wait alone.
    @Test(.timeLimit(.minutes(5))) func noTaskIsLeftWaitingWhileRoundsComeAndGo() async {
        let gate = RoundLockGate()
        let stop = Flag()
        let rounds = Thread {
            while !stop.isSet {
                gate.roundTakesLock()
                usleep(20)
                gate.roundReleasedLock()
                usleep(20)
            }
        }
        rounds.start()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<2_000 { group.addTask { await gate.passWhenRoundReleased() } }
        }
        stop.set()
        #expect(gate.waitingCount == 0)
    }
}
