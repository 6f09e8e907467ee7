import Foundation
import Transport

/// An experiment's report: `results.json`, CSV files, and one self-contained HTML page with
/// inline SVG (no scripts, no fonts or styles from elsewhere: it opens offline).
enum ExperimentReport {
    struct ClusterResult: Codable, Sendable {
        var name: String
        var id: String
        var settings: ClusterSettings
        var convergenceSeconds: Double?
        var verdict: HistoryChecker.Verdict
        var summary: Summary? = nil
        /// Each node process's CPU use over the run (user + system time over wall time, % of one core).
        var cpuPerNodePercent: [String: Double] = [:]
    }

    /// One cluster's figures over one repetition.
    struct Summary: Codable, Sendable {
        var operations: Int
        var ok: Int
        var failed: Int
        var unknown: Int
        var throughputPerSecond: Double
        var latencyP50Ms: Double?
        var latencyP99Ms: Double?
        /// Seconds with at least one successful operation, as a share of all seconds.
        var availability: Double
        var leaderChanges: Int
        var highestTerm: UInt64
        /// Crash (or pause, or partition) of the leader to a new leader seen, per leader fault.
        var failoversMs: [Double]
        /// Leader faults after which no new leader was seen before the next fault or the end.
        var failoversWithoutLeader: Int
    }

    struct Repetition: Codable, Sendable {
        var number: Int
        var history: History
        var clusters: [ClusterResult]

        enum CodingKeys: String, CodingKey { case number, clusters }

        init(number: Int, history: History, clusters: [ClusterResult]) {
            self.number = number
            self.history = history
            self.clusters = clusters
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            number = try container.decode(Int.self, forKey: .number)
            clusters = try container.decode([ClusterResult].self, forKey: .clusters)
            history = History()
        }
    }

    struct Results: Codable, Sendable {
        var plan: ExperimentPlan
        var machine: MachineFacts
        var repetitions: [Repetition]
        var cancelled: Bool
        /// Seconds in which the machine's CPU was above 90% busy (timings then are distorted).
        var saturatedSeconds: Int = 0
        var passed: Bool { repetitions.allSatisfy { $0.clusters.allSatisfy(\.verdict.passed) } }

        init(plan: ExperimentPlan, machine: MachineFacts, repetitions: [Repetition], cancelled: Bool) {
            self.plan = plan
            self.machine = machine
            self.cancelled = cancelled
            self.repetitions = repetitions.map { repetition in
                var summarized = repetition
                for index in summarized.clusters.indices {
                    summarized.clusters[index].summary = ExperimentReport.summary(of: summarized.clusters[index].name, in: repetition.history, seconds: plan.seconds)
                }
                return summarized
            }
            saturatedSeconds = repetitions.reduce(0) { $0 + $1.history.cpu.filter { $0.busyPercent > 90 }.count }
        }
    }

    // MARK: - Figures

    static func percentile(_ values: [Double], _ fraction: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))]
    }

    /// Per second: successful, failed and unknown operations, and the p50 and p99 latency of
    /// the successful ones completed in it.
    struct Second: Sendable {
        var ok = 0
        var failed = 0
        var unknown = 0
        var latencies: [Double] = []
    }

    static func seconds(of cluster: String, in history: History, seconds: Double) -> [Second] {
        var result = Array(repeating: Second(), count: max(1, Int(seconds.rounded(.up))))
        for operation in history.operations where operation.cluster == cluster {
            let at = Int((operation.completeMs ?? operation.invokeMs) / 1_000)
            guard at >= 0, at < result.count else { continue }
            switch operation.outcome {
            case .ok:
                result[at].ok += 1
                if let latency = operation.latencyMs { result[at].latencies.append(latency) }
            case .failed: result[at].failed += 1
            case .unknown: result[at].unknown += 1
            }
        }
        return result
    }

    /// For each fault that took a leader away: milliseconds until the node's own record says
    /// another node became leader (nil: none did before the next leader fault).
    static func failovers(of cluster: String, in history: History) -> [Double?] {
        let roles = history.roles.filter { $0.cluster == cluster }.sorted { $0.atMs < $1.atMs }
        let faults = history.faults.filter { $0.cluster == cluster && ["kill-leader", "pause-leader", "partition-leader"].contains($0.action) }
            .compactMap { fault in fault.detail.split(separator: " ").compactMap({ Int($0) }).first.map { (fault.atMs, $0) } }
        return faults.enumerated().map { position, fault in
            let limit = position + 1 < faults.count ? faults[position + 1].0 : .infinity
            guard let next = roles.first(where: { $0.atMs > fault.0 && $0.atMs < limit && $0.role == "leader" && $0.node != fault.1 }) else { return nil }
            return next.atMs - fault.0
        }
    }

    static func summary(of cluster: String, in history: History, seconds span: Double) -> Summary {
        let operations = history.operations.filter { $0.cluster == cluster }
        let ok = operations.filter { $0.outcome == .ok }
        let latencies = ok.compactMap(\.latencyMs)
        let perSecond = seconds(of: cluster, in: history, seconds: span)
        let failovers = failovers(of: cluster, in: history)
        let leaders = history.roles.filter { $0.cluster == cluster && $0.role == "leader" }
        var changes = 0
        var lastLeader: (Int, UInt64?)?
        for change in leaders where lastLeader.map({ $0.0 != change.node || $0.1 != change.term }) ?? true {
            changes += 1
            lastLeader = (change.node, change.term)
        }
        return Summary(operations: operations.count, ok: ok.count, failed: operations.filter { $0.outcome == .failed }.count,
                       unknown: operations.filter { $0.outcome == .unknown }.count, throughputPerSecond: Double(ok.count) / max(1, span),
                       latencyP50Ms: percentile(latencies, 0.5), latencyP99Ms: percentile(latencies, 0.99),
                       availability: Double(perSecond.filter { $0.ok > 0 }.count) / Double(perSecond.count),
                       leaderChanges: max(0, changes - 1), highestTerm: history.roles.filter { $0.cluster == cluster }.compactMap(\.term).max() ?? 0,
                       failoversMs: failovers.compactMap { $0 }, failoversWithoutLeader: failovers.filter { $0 == nil }.count)
    }

    // MARK: - Files

    static func write(_ results: Results, to directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(results).write(to: URL(fileURLWithPath: directory + "/results.json"))
        var operations = "repetition,cluster,client,kind,service,value,absent,invoke_ms,complete_ms,outcome,status\n"
        var series = "repetition,cluster,second,ok,failed,unknown,latency_p50_ms,latency_p99_ms\n"
        var failovers = "repetition,cluster,failover_ms\n"
        for repetition in results.repetitions {
            for operation in repetition.history.operations {
                operations += "\(repetition.number),\(operation.cluster),\(operation.client),\(operation.kind),\(operation.service.map(String.init) ?? ""),"
                    + "\(operation.value.map(String.init) ?? ""),\(operation.absent),\(format(operation.invokeMs)),\(operation.completeMs.map(format) ?? ""),"
                    + "\(operation.outcome.rawValue),\(operation.status.map(String.init) ?? "")\n"
            }
            for cluster in repetition.clusters {
                for (second, figures) in seconds(of: cluster.name, in: repetition.history, seconds: results.plan.seconds).enumerated() {
                    series += "\(repetition.number),\(cluster.name),\(second),\(figures.ok),\(figures.failed),\(figures.unknown),"
                        + "\(percentile(figures.latencies, 0.5).map(format) ?? ""),\(percentile(figures.latencies, 0.99).map(format) ?? "")\n"
                }
                for value in cluster.summary?.failoversMs ?? [] { failovers += "\(repetition.number),\(cluster.name),\(format(value))\n" }
            }
        }
        try operations.write(toFile: directory + "/operations.csv", atomically: true, encoding: .utf8)
        try series.write(toFile: directory + "/series.csv", atomically: true, encoding: .utf8)
        try failovers.write(toFile: directory + "/failovers.csv", atomically: true, encoding: .utf8)
        try ReportPage.html(results).write(toFile: directory + "/report.html", atomically: true, encoding: .utf8)
    }

    static func format(_ value: Double) -> String { String(format: "%.1f", value) }
}
