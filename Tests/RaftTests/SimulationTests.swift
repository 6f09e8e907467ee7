import Foundation
import Raft
import RaftSimulation
import Testing

/// The seeded simulation: `RAFT_SIMULATION_SEEDS` raises the number of seeds (default
/// 500), `RAFT_SIMULATION_FIRST_SEED` moves the range, `RAFT_SIMULATION_SEED` replays one,
/// `RAFT_SIMULATION_NODES` fixes the cluster size.
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
        let nodes = environment["RAFT_SIMULATION_NODES"].flatMap(Int.init)
        var totals = SimulationReport(seed: 0, nodeCount: 0)
        for seed in seeds {
            CrashReporter.setRunningSeed(seed, nodes: nodes)
            do {
                var options = SimulationOptions(seed: seed)
                options.nodeCount = nodes
                let report = try Simulation(options: options).run()
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

    /// Seeds that once failed, each for a bug now fixed (in the core, the storage or the
    /// checker): 247 stalled proposals, 40286 the crash-survival rule, 552 probing stuck at
    /// the compaction point, 9660 a snapshot resend storm, 169 the removed-voter deadlock,
    /// 2776 quorum after a truncated membership entry, 16687 a removed server asked back,
    /// 370 a rotated segment's hard state lost to compaction, 6847 entries after a recovered
    /// snapshot dropped by the next recovery, 14237 and 14245 a single voter's election undone
    /// by a crash before its fsync. (Since the simulation runs the real write-ahead log the
    /// older seeds' event sequences differ from when they failed; they still must pass.)
    /// Together they show snapshots, membership changes and reads exercised.
    @Test func formerlyFailingSeedsPass() throws {
        CrashReporter.install()
        defer { CrashReporter.setRunningSeed(0) }
        var installed = 0
        var changes = 0
        for seed in [247, 40286, 552, 9660, 169, 2776, 16687, 370, 6847, 14237, 14245] as [UInt64] {
            CrashReporter.setRunningSeed(seed)
            let report = try Simulation(options: SimulationOptions(seed: seed)).run()
            #expect(report.proposalsAcknowledged > 0, "seed \(seed) acknowledged nothing")
            installed += report.snapshotsInstalled
            changes += report.membershipChanges
        }
        #expect(installed > 0 && changes > 0)
    }

    /// Single-node clusters are real (they run end to end), and every size up to nine:
    /// seed 1 with one node trapped inside the simulation's fault picker once.
    @Test(arguments: [1, 2, 8, 9])
    func everyClusterSizeKeepsEverySafetyProperty(nodes: Int) throws {
        CrashReporter.install()
        var acknowledged = 0
        for seed in UInt64(1)...20 {
            CrashReporter.setRunningSeed(seed, nodes: nodes)
            var options = SimulationOptions(seed: seed)
            options.nodeCount = nodes
            let report = try Simulation(options: options).run()
            #expect(report.nodeCount == nodes)
            acknowledged += report.proposalsAcknowledged
        }
        CrashReporter.setRunningSeed(0)
        #expect(acknowledged > 0)
    }

    @Test func failureReplayNamesAFixedClusterSize() {
        #expect(Simulation.replayCommand(seed: 7, nodes: 1).contains("--seed 7 --nodes 1"))
        #expect(!Simulation.replayCommand(seed: 7).contains("--nodes"))
    }
}
