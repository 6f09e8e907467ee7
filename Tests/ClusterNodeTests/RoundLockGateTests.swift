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

    /// Rounds taking and releasing the lock on a thread of their own until `stop` is set.
    private static func startRounds(on gate: RoundLockGate, until stop: Flag) {
        Thread {
            while !stop.isSet {
                gate.roundTakesLock()
                usleep(20)
                gate.roundReleasedLock()
                usleep(20)
            }
        }.start()
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
        Self.startRounds(on: gate, until: stop)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<2_000 { group.addTask { await gate.passWhenRoundReleased() } }
        }
        stop.set()
        #expect(gate.waitingCount == 0)
    }
}

extension RoundLockGateTests {
    private final class Count: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func add() { lock.withLock { value += 1 } }
        var now: Int { lock.withLock { value } }
    }

    @Test func aCallbackIsKeptOnlyWhileARoundHoldsTheLockAndCalledWhenItIsReleased() {
        let gate = RoundLockGate()
        let calls = Count()
        #expect(!gate.callWhenRoundReleased { calls.add() }, "kept with no round holding the lock")
        #expect(calls.now == 0, "called though not kept (the caller goes on itself)")
        gate.roundTakesLock()
        #expect(gate.callWhenRoundReleased { calls.add() })
        #expect(gate.waitingCount == 1 && calls.now == 0)
        gate.roundReleasedLock()
        #expect(calls.now == 1 && gate.waitingCount == 0)
        gate.roundTakesLock()
        gate.roundReleasedLock()
        #expect(calls.now == 1, "called twice")
    }

    /// Many callbacks left while rounds come and go on another thread: every one kept is
    /// called (a release between the look and the keeping is not lost), none twice.
    @Test func noCallbackIsLeftWhileRoundsComeAndGo() {
        let gate = RoundLockGate()
        let stop = Flag(), calls = Count()
        Self.startRounds(on: gate, until: stop)
        // Left until 1,000 were kept (the round thread may start late on a loaded machine).
        var kept = 0, tries = 0
        let leaving = Date().addingTimeInterval(30)
        while kept < 1_000 || tries < 20_000, Date() < leaving {
            tries += 1
            if gate.callWhenRoundReleased({ calls.add() }) { kept += 1 }
        }
        let deadline = Date().addingTimeInterval(10)
        while calls.now < kept, Date() < deadline { usleep(1_000) }
        stop.set()
        #expect(kept >= 1_000, "only \(kept) of \(tries) callbacks found a round holding the lock")
        #expect(calls.now == kept && gate.waitingCount == 0)
    }
}
