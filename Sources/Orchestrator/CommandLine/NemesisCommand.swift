import ClusterNode
import Foundation
import Transport

/// `orchestrator nemesis`: see `Nemesis`.
enum NemesisCommand {
    static let usage = """
        usage: orchestrator nemesis [--url http://127.0.0.1:8000] [--cluster ID | --nodes 5 [--keep-cluster]] [--seconds 60]
                                    [--seed N] [--clients 4] [--json]
          Without --cluster it creates a cluster for the run on the orchestrator (capacity large
          enough for every replica) and deletes it afterwards.
          Against a running orchestrator: random leader kills, restarts, pauses, one-way cuts,
          partitions and lossy links while clients submit services; then heals everything and
          checks that every acknowledged service is on every node with its replicas placed,
          that all logs agree on every committed index, that no two leaders shared a term, and
          that the nodes converge. Exits 1 if any check fails.
        """

    static func run(_ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(words, options: ["url", "cluster", "nodes", "seconds", "seed", "clients", "converge-seconds"], flags: ["json", "keep-cluster", "help"])
        if arguments.has("help") {
            print(usage)
            return 0
        }
        var options = Nemesis.Options()
        if let url = arguments.options["url"] {
            let trimmed = url.replacingOccurrences(of: "http://", with: "").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            let parts = trimmed.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else { throw CommandLineArguments.Problem(description: "--url must look like http://127.0.0.1:8000, got \(url)") }
            options.host = String(parts[0])
            options.port = port
        }
        options.cluster = arguments.options["cluster"]
        options.nodes = try arguments.integer("nodes", default: 5, in: ClusterLimits.nodes)
        options.keepCluster = arguments.has("keep-cluster")
        options.seconds = Double(try arguments.integer("seconds", default: 60, in: 1...86_400))
        options.clients = try arguments.integer("clients", default: 4, in: 1...64)
        options.convergenceSeconds = Double(try arguments.integer("converge-seconds", default: 30, in: 1...600))
        if let seed = try arguments.unsigned("seed") { options.seed = seed }
        let report = try Nemesis(options: options).run()
        if arguments.has("json") {
            print(String(decoding: try JSONBody.encode(report, pretty: true), as: UTF8.self))
        } else {
            print("nemesis seed \(report.seed), \(Int(report.seconds)) s")
            print("  faults: " + report.faults.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            print("  requests: " + report.requests.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            print("  acknowledged services: \(report.acknowledgedServices); logs compared through committed index \(report.committedIndex); \(report.leaderTerms) terms with a known leader")
            print("  converged after healing: " + (report.convergenceSeconds.map { String(format: "%.2f s", $0) } ?? "no"))
            if report.passed {
                print("  PASSED: every acknowledged service on every node with its replicas placed, logs agree, one leader per term")
            } else {
                print("  FAILED:")
                for problem in report.problems { print("    - \(problem)") }
            }
        }
        return report.passed ? 0 : 1
    }
}
