import Foundation

/// `orchestrator experiment run FILE [--out DIR]`: runs an experiment file's clusters side by
/// side with its workload and faults, checks the history and writes the report.
enum ExperimentCommand {
    static let usage = """
        usage: orchestrator experiment run FILE [--out DIR] [--base-port 20000]
               orchestrator experiment report DIR      (renders DIR/report.html again from its results and history)
          Starts every cluster of FILE at once (their own node processes, data in a temporary
          directory), gives each the same workload and the same faults at the same offsets,
          heals, checks the history and writes DIR/report.html, results.json, CSVs and the
          history (DIR defaults to experiments/NAME-DATE). Progress goes to stderr; Ctrl-C
          stops every process it started and reports what was recorded.
          Examples are in Experiments/.
        """

    static func run(_ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(words, options: ["out", "base-port"], flags: ["help"])
        if arguments.positional.first == "report", arguments.positional.count == 2 {
            // Renders the report again from a run's results.json and history files.
            let directory = arguments.positional[1]
            let saved = try JSONDecoder().decode(ExperimentReport.Results.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/results.json")))
            var repetitions = saved.repetitions
            for index in repetitions.indices {
                let path = directory + "/history-\(repetitions[index].number).json"
                repetitions[index].history = try JSONDecoder().decode(History.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            }
            var results = ExperimentReport.Results(plan: saved.plan, machine: saved.machine, repetitions: repetitions, cancelled: saved.cancelled)
            results.saturatedSeconds = saved.saturatedSeconds
            try ExperimentReport.write(results, to: directory)
            print("report: \(directory)/report.html")
            return 0
        }
        if arguments.has("help") || arguments.positional.first != "run" {
            print(usage)
            return arguments.has("help") ? 0 : 2
        }
        guard arguments.positional.count == 2 else { throw CommandLineArguments.Problem(description: "experiment run takes one FILE\n\(usage)") }
        let path = arguments.positional[1]
        guard let data = FileManager.default.contents(atPath: path) else { throw CommandLineArguments.Problem(description: "cannot read \(path)") }
        let plan = try ExperimentPlan.parse(Array(data))
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let output = arguments.options["out"] ?? "experiments/\(plan.name)-\(stamp)"
        let basePort = try arguments.integer("base-port", default: 20_000 + Int.random(in: 0..<20_000), in: 1_024...60_000)
        let dataRoot = NSTemporaryDirectory() + "orchestrator-experiment-" + UUID().uuidString
        let supervisor = try ClusterSupervisor(executable: ClusterSupervisor.currentExecutable(), dataRoot: dataRoot, keepData: false, echoesLog: false)
        defer {
            supervisor.stopAll()
            try? FileManager.default.removeItem(atPath: dataRoot)
        }
        let say: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        let runner = ExperimentRunner(plan: plan, supervisor: supervisor, outputDirectory: output, searchFrom: basePort, say: say)
        // Ctrl-C: stop the clients and faults, then heal, check and report what was recorded.
        Signals.onTermination {
            say("experiment: stopping (what was recorded is checked and reported)")
            runner.cancel()
        }
        say("experiment \(plan.name): \(plan.clusters.count) cluster(s), \(Int(plan.seconds)) s, \(plan.schedule().count) fault(s); report in \(output)")
        let results = try runner.run()
        for repetition in results.repetitions {
            for cluster in repetition.clusters {
                let summary = cluster.summary
                print("\(cluster.name)\(results.repetitions.count > 1 ? " #\(repetition.number)" : ""): \(cluster.verdict.passed ? "passed" : "FAILED")"
                    + ", \(summary?.ok ?? 0) ok of \(summary?.operations ?? 0) operations (\(summary?.unknown ?? 0) unknown)"
                    + ", p50 \(summary?.latencyP50Ms.map { String(format: "%.1f", $0) } ?? "-") ms, p99 \(summary?.latencyP99Ms.map { String(format: "%.1f", $0) } ?? "-") ms"
                    + ", failovers \(summary?.failoversMs.map { String(Int($0)) }.joined(separator: " ") ?? "-") ms")
                for problem in cluster.verdict.problems { print("  problem: \(problem)") }
            }
        }
        if results.saturatedSeconds > 0 { print("note: the CPU was above 90% busy for \(results.saturatedSeconds) s; timings then are distorted") }
        print("report: \(output)/report.html")
        return results.passed ? 0 : 1
    }
}
