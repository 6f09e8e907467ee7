import Foundation
import Raft
import RaftSimulation
import Testing

/// The seeded simulation: `RAFT_SIMULATION_SEEDS` raises the number of seeds (default
/// 500), `RAFT_SIMULATION_FIRST_SEED` moves the range, `RAFT_SIMULATION_SEED` replays one.
@Suite struct SimulationTests {
    @Test func seededFaultySimulationsKeepEverySafetyPropertyAndRecover() {
        CrashReporter.install()
        let environment = ProcessInfo.processInfo.environment
        let seeds: ClosedRange<UInt64>
        if let one = environment["RAFT_SIMULATION_SEED"].flatMap(UInt64.init) {
            seeds = one...one
        } else {
            let first = environment["RAFT_SIMULATION_FIRST_SEED"].flatMap(UInt64.init) ?? 1
            let count = environment["RAFT_SIMULATION_SEEDS"].flatMap(UInt64.init) ?? 500
            seeds = first...(first + max(count, 1) - 1)
        }
        var totals = SimulationReport(seed: 0, nodeCount: 0)
        for seed in seeds {
            CrashReporter.setRunningSeed(seed)
            do {
                let report = try Simulation(options: SimulationOptions(seed: seed)).run()
                totals.events += report.events
                totals.elections += report.elections
                totals.crashes += report.crashes
                totals.proposalsAcknowledged += report.proposalsAcknowledged
            } catch {
                Issue.record("\(error)")
                break
            }
        }
        CrashReporter.setRunningSeed(0)
        print("simulated \(seeds.count) seeds: \(totals.events) events, \(totals.elections) elections, \(totals.crashes) crashes, \(totals.proposalsAcknowledged) acknowledged proposals")
        // The runs must have exercised faults and progress, or they proved nothing.
        #expect(totals.elections >= seeds.count)
        #expect(totals.proposalsAcknowledged > 0)
    }
}
