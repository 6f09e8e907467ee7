import Foundation
import RaftSimulation

/// `orchestrator simulate`: runs the deterministic Raft simulation over a range of seeds
/// (on every core), or replays one seed with its full report.
enum SimulateCommand {
    static let usage = """
        usage: orchestrator simulate [--seed N [--trace] | --seeds COUNT [--first N]] [--nodes 1-9] [--json]
          --seed N      replay one seed and print its report (--trace: its events as they happen)
          --seeds COUNT run COUNT seeds starting at --first (default 1), on every core
          --nodes N     fix the cluster size (1 to 9) instead of drawing 3 to 7 from each seed
        """

    static func run(_ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(words, options: ["seed", "seeds", "first", "nodes"], flags: ["json", "trace", "help"])
        if arguments.has("help") {
            print(usage)
            return 0
        }
        let nodes = arguments.options["nodes"] == nil ? nil : try arguments.integer("nodes", default: 5, in: 1...9)
        CrashReporter.install()
        if let seed = try arguments.unsigned("seed") {
            var options = SimulationOptions(seed: seed)
            options.nodeCount = nodes
            options.isTracing = arguments.has("trace")
            CrashReporter.setRunningSeed(seed, nodes: nodes)
            do {
                let report = try Simulation(options: options).run()
                print(describe(report))
                return 0
            } catch {
                print(error)
                return 1
            }
        }
        let first = try arguments.unsigned("first") ?? 1
        let count = try arguments.integer("seeds", default: 1_000, in: 1...100_000_000)
        return runMany(first: first, count: count, nodes: nodes, json: arguments.has("json"))
    }

    private static func runMany(first: UInt64, count: Int, nodes: Int?, json: Bool) -> Int32 {
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let state = ParallelRunState()
        let start = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var seed = first + UInt64(worker)
            while seed < first + UInt64(count), !state.hasFailed {
                var options = SimulationOptions(seed: seed)
                options.nodeCount = nodes
                CrashReporter.setRunningSeed(seed, nodes: nodes)
                do {
                    let report = try Simulation(options: options).run()
                    state.record(report, progressEvery: max(1, count / 20), total: count, json: json)
                } catch {
                    state.fail(error)
                }
                seed += UInt64(workers)
            }
        }
        let seconds = (ContinuousClock.now - start).seconds
        let totals = state.totals
        if let failure = state.failure {
            print(failure)
            return 1
        }
        let eventsPerSecond = Double(totals.events) / seconds
        if json {
            print(#"{"seeds": \#(count), "firstSeed": \#(first), "events": \#(totals.events), "seconds": \#(String(format: "%.2f", seconds)), "eventsPerSecond": \#(Int(eventsPerSecond)), "elections": \#(totals.elections), "crashes": \#(totals.crashes), "acknowledgedProposals": \#(totals.proposalsAcknowledged), "snapshotsInstalled": \#(totals.snapshotsInstalled), "membershipChanges": \#(totals.membershipChanges), "readsServed": \#(totals.readsServed), "failures": 0}"#)
        } else {
            print("\(count) seeds from \(first) passed: \(totals.events) events in \(String(format: "%.1f", seconds)) s (\(Int(eventsPerSecond)) events/s on \(workers) cores), \(totals.elections) elections, \(totals.crashes) crashes, \(totals.proposalsAcknowledged) acknowledged proposals, \(totals.snapshotsTaken) snapshots taken and \(totals.snapshotsInstalled) installed, \(totals.membershipChanges) membership changes asked, \(totals.readsServed) linearizable reads checked")
        }
        return 0
    }

    static func describe(_ report: SimulationReport) -> String {
        """
        seed \(report.seed): \(report.nodeCount) nodes, \(report.virtualMilliseconds) ms virtual
          events \(report.events), steps \(report.steps), messages \(report.messagesSent) (\(report.messagesDropped) dropped)
          elections \(report.elections) (max term \(report.maxTerm)), crashes \(report.crashes), pauses \(report.pauses), partitions \(report.partitions), leader transfers \(report.transfers)
          membership changes asked \(report.membershipChanges), snapshots taken \(report.snapshotsTaken), installed \(report.snapshotsInstalled), reads checked \(report.readsServed)
          proposals acknowledged \(report.proposalsAcknowledged), committed entries \(report.committedEntries)
          recovery after heal: \(report.recoveryMilliseconds) ms virtual
          all safety properties held after every event
        """
    }
}

/// Totals and the first failure of a parallel run, behind a lock.
final class ParallelRunState: @unchecked Sendable {
    private let lock = NSLock()
    private var done = 0
    private(set) var totals = SimulationReport(seed: 0, nodeCount: 0)
    private(set) var failure: (any Error)?

    var hasFailed: Bool { lock.withLock { failure != nil } }

    func record(_ report: SimulationReport, progressEvery: Int, total: Int, json: Bool) {
        lock.withLock {
            done += 1
            totals.events += report.events
            totals.elections += report.elections
            totals.crashes += report.crashes
            totals.proposalsAcknowledged += report.proposalsAcknowledged
            totals.snapshotsTaken += report.snapshotsTaken
            totals.snapshotsInstalled += report.snapshotsInstalled
            totals.membershipChanges += report.membershipChanges
            totals.readsServed += report.readsServed
            if !json, done % progressEvery == 0 {
                FileHandle.standardError.write(Data("  \(done)/\(total) seeds passed\n".utf8))
            }
        }
    }

    func fail(_ error: any Error) {
        lock.withLock { if failure == nil { failure = error } }
    }
}

extension Duration {
    /// This duration in seconds.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
