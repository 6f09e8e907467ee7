import ClusterNode
import Raft
import Testing

/// The controller against the load model's plant: average CPU = 100 × load / (replicas × request).
@Suite struct AutoscalerTests {
    struct Run {
        var replicas: [Int] = []
        var averages: [Double] = []
    }

    /// Steps the controller once per interval over `loads` (millicores, one per interval).
    static func run(_ spec: AutoscalerSpec, startingAt start: Int, loads: [Int], request: Int = 100) -> Run {
        var state = AutoscalerState(spec: spec, replicas: start)
        var replicas = start
        var run = Run()
        for (k, load) in loads.enumerated() {
            let average = 100 * Double(load) / Double(replicas * request)
            let decision = state.step(averageCPU: average, replicas: replicas, nowMs: Int64(k * spec.intervalMs))
            state.record(decision)
            replicas = decision.toReplicas
            run.replicas.append(replicas)
            run.averages.append(100 * Double(load) / Double(replicas * request))
        }
        return run
    }

    static let spec = AutoscalerSpec(cpuTarget: 60, minReplicas: 1, maxReplicas: 30, intervalMs: 1_000)
    /// Within a fifth of the target: 48% to 72%.
    static func inBand(_ average: Double) -> Bool { abs(average - 60) <= 12 }

    @Test func aStepUpReachesTheBandWithinTenIntervalsAndSettlesWithoutOscillating() {
        // 2 replicas at 60% (120m of load), then 1200m: 20 replicas' worth.
        let loads = Array(repeating: 120, count: 5) + Array(repeating: 1_200, count: 40)
        let run = Self.run(Self.spec, startingAt: 2, loads: loads)
        #expect(run.replicas.prefix(5).allSatisfy { $0 == 2 }, "scaled with the load on target: \(run.replicas)")
        let reached = run.averages.indices.dropFirst(5).first { Self.inBand(run.averages[$0]) }
        #expect(reached.map { $0 - 5 < 10 } == true, "band not reached within 10 intervals: \(run.replicas)")
        if let reached {
            #expect(run.averages[reached...].allSatisfy(Self.inBand), "left the band: \(run.replicas)")
            // It may overshoot once inside the band, then settles: at most one change of
            // direction, and the last ten intervals at one count.
            let after = Array(run.replicas[reached...])
            let moves = zip(after, after.dropFirst()).map { $1 - $0 }.filter { $0 != 0 }
            let turns = zip(moves, moves.dropFirst()).filter { ($0 > 0) != ($1 > 0) }.count
            #expect(turns <= 1, "oscillates after reaching the band: \(after)")
            #expect(Set(after.suffix(10)).count == 1, "not settled: \(after)")
        }
    }

    @Test func aStepDownScalesBackAndNeverBelowTheMinimum() {
        let spec = AutoscalerSpec(cpuTarget: 60, minReplicas: 3, maxReplicas: 30, intervalMs: 1_000)
        let loads = Array(repeating: 1_200, count: 30) + Array(repeating: 60, count: 40)
        let run = Self.run(spec, startingAt: 20, loads: loads)
        #expect(run.replicas.allSatisfy { $0 >= 3 })
        #expect(run.replicas.last == 3, "\(run.replicas)")
        let down = Array(run.replicas[30...])
        #expect(zip(down, down.dropFirst()).allSatisfy { $0 >= $1 }, "not monotone on the way down: \(down)")
    }

    @Test func theIntegralDoesNotWindUpAtTheMaximum() {
        // Far more load than 5 replicas can take, for a minute; then a load 2 replicas carry.
        let spec = AutoscalerSpec(cpuTarget: 60, minReplicas: 1, maxReplicas: 5, intervalMs: 1_000)
        let run = Self.run(spec, startingAt: 5, loads: Array(repeating: 5_000, count: 60) + Array(repeating: 120, count: 20))
        #expect(run.replicas[59] == 5)
        // Without anti-windup the integral would hold it at 5 for a long while.
        let firstBelow = run.replicas.indices.dropFirst(60).first { run.replicas[$0] < 5 }
        #expect(firstBelow.map { $0 - 60 <= 3 } == true, "\(run.replicas)")
    }

    @Test func theOutputIsRoundedToTheNearestCountNotUp() {
        // kp only: output = min + kp × error. 1 + 0.1 × 14 = 2.4 → 2 (seed 002's ceil gave 3).
        var spec = AutoscalerSpec(cpuTarget: 50, kp: 0.1, ki: 0, kd: 0, minReplicas: 1, maxReplicas: 10, intervalMs: 1_000)
        spec.cooldownMs = 0
        let state = AutoscalerState(spec: spec, replicas: 1)
        #expect(state.step(averageCPU: 64, replicas: 1, nowMs: 0).toReplicas == 2)
        #expect(state.step(averageCPU: 66, replicas: 1, nowMs: 0).toReplicas == 3)
    }

    @Test func theDerivativeActsOnTheErrorsChangeOverRealTime() {
        var spec = AutoscalerSpec(cpuTarget: 50, kp: 0, ki: 0, kd: 1, minReplicas: 1, maxReplicas: 100, intervalMs: 1_000)
        spec.cooldownMs = 0
        var state = AutoscalerState(spec: spec, replicas: 1)
        state.record(state.step(averageCPU: 50, replicas: 1, nowMs: 0))
        // The error rose by 10 points in 2 s: +5 per second, so the output rises (seed 002 had the sign flipped).
        let rising = state.step(averageCPU: 60, replicas: 1, nowMs: 2_000)
        #expect(rising.derivative == 5)
        #expect(rising.toReplicas == 6)
    }

    @Test func aChangeIsFollowedByACoolDown() {
        let spec = AutoscalerSpec(cpuTarget: 60, kp: 0.05, ki: 0, kd: 0, minReplicas: 1, maxReplicas: 30, intervalMs: 1_000, cooldownMs: 3_000)
        var state = AutoscalerState(spec: spec, replicas: 1)
        let first = state.step(averageCPU: 200, replicas: 1, nowMs: 0)
        #expect(first.toReplicas > 1)
        state.record(first)
        let held = state.step(averageCPU: 300, replicas: first.toReplicas, nowMs: 1_000)
        #expect(held.toReplicas == first.toReplicas && held.reason.hasPrefix("cooling down"))
        #expect(state.step(averageCPU: 300, replicas: first.toReplicas, nowMs: 3_000).toReplicas != first.toReplicas)
    }

    static func entry(_ index: UInt64, _ command: ClusterCommand) -> Entry {
        Entry(term: 1, index: LogIndex(index), data: ClusterCommandCodec.encode(command))
    }

    @Test func stepsAreReplicatedStateThatSurvivesSnapshotsAndStaleStepsChangeNothing() throws {
        var state = ClusterState(members: [8001, 8002], nodeResources: .standard(slots: 20))
        _ = state.apply(Self.entry(1, .createServices(requestID: "c", services: [PlannedService(spec: ServiceSpec(replicas: 2),
                                       decision: Placement.Decision(replicas: [8001: 1, 8002: 1], pending: 0, pendingReason: nil))])))
        let spec = AutoscalerSpec(cpuTarget: 60)
        #expect(state.apply(Self.entry(2, .setAutoscaler(requestID: "a", serviceID: 1, spec: spec))) == .services([1]))
        let autoscaler = try #require(state.services[1]?.autoscaler)
        let decision = autoscaler.step(averageCPU: 240, replicas: 2, nowMs: 10_000)
        #expect(decision.toReplicas > 2)
        let placement = Placement.Decision(replicas: [8001: decision.toReplicas / 2, 8002: decision.toReplicas - decision.toReplicas / 2],
                                           pending: 0, pendingReason: nil)
        let command = ClusterCommand.autoscale(serviceID: 1, decision: decision, placement: placement)
        #expect(try ClusterCommandCodec.decode(ClusterCommandCodec.encode(command)) == command)
        #expect(state.apply(Self.entry(3, command)) == .services([1]))
        #expect(state.services[1]?.spec.replicas == decision.toReplicas && state.services[1]?.placedCount == decision.toReplicas)
        #expect(state.services[1]?.autoscaler?.decisions == [decision])
        // The same step again (an old leader's, committed late) is stale.
        guard case .rejected = state.apply(Self.entry(4, command)) else {
            Issue.record("a stale step was applied")
            return
        }
        let restored = try ClusterState(snapshotData: state.snapshotData())
        #expect(restored.services[1]?.autoscaler == state.services[1]?.autoscaler)
        #expect(restored.snapshotData() == state.snapshotData())
        // New constants keep the controller's memory; the integral term stays what it was.
        var changed = spec
        changed.ki = 0.06
        let before = try #require(state.services[1]?.autoscaler)
        _ = state.apply(Self.entry(5, .setAutoscaler(requestID: "k", serviceID: 1, spec: changed)))
        let after = try #require(state.services[1]?.autoscaler)
        #expect(after.decisions == before.decisions && after.spec == changed)
        #expect(abs(after.integral * 0.06 - before.integral * spec.ki) < 1e-9)
        _ = state.apply(Self.entry(6, .setAutoscaler(requestID: "b", serviceID: 1, spec: nil)))
        #expect(state.services[1]?.autoscaler == nil)
    }
}
