import Foundation

/// The report as one HTML page with inline SVG charts.
enum ReportPage {
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func html(_ results: ExperimentReport.Results) -> String {
        let plan = results.plan
        var page = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(escape(plan.name)): experiment report</title>
            <style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}table{border-collapse:collapse}
            td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
            pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:300px}.pass{color:#2a7}.fail{color:#c22}.warn{background:#fff3cd;padding:8px}
            svg{background:#fff;border:1px solid #ddd;margin:4px 0}h2{margin-top:2em}</style></head><body>
            <h1>Experiment \(escape(plan.name)): <span class="\(results.passed ? "pass" : "fail")">\(results.passed ? "passed" : "FAILED")</span>\(results.cancelled ? " (cancelled)" : "")</h1>
            <p>\(plan.clusters.count) cluster(s) side by side, \(Int(plan.seconds)) s, \(results.repetitions.count) repetition(s); machine: \(results.machine.cores) cores
            (\(escape(results.machine.cpuModel))), \(results.machine.memoryGiB) GiB, Linux \(escape(results.machine.kernel)), \(escape(results.machine.date)).</p>

            """
        if results.saturatedSeconds > 0 {
            page += "<p class=\"warn\">The machine's CPU was above 90% busy for \(results.saturatedSeconds) s of the run: the clusters competed for \(results.machine.cores) cores, and timings in those seconds (short timeouts most of all) are distorted rather than properties of the settings.</p>\n"
        }
        page += comparisonTable(results)
        let failovers = results.repetitions.flatMap(\.clusters).map { ($0.name, $0.summary?.failoversMs ?? []) }.filter { !$0.1.isEmpty }
        if !failovers.isEmpty {
            page += "<h3>Failover time, every cluster (leader fault to a new leader, per the nodes' own clocks)</h3>\n" + cdf(failovers, chartWidth: width)
        }
        for repetition in results.repetitions {
            if results.repetitions.count > 1 { page += "<h2>Repetition \(repetition.number)</h2>\n" }
            page += "<h3>Machine CPU use</h3>\n" + lineChart(seconds: plan.seconds, yLabel: "% busy", series: [("CPU busy", repetition.history.cpu.map { ($0.atMs / 1_000, $0.busyPercent) })],
                                                              shaded: [], yMax: 100)
            for (position, cluster) in repetition.clusters.enumerated() { page += clusterSection(cluster, position, repetition, plan) }
        }
        let planJSON = (try? JSONEncoder.pretty.encode(plan)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        page += "<h2>The experiment file</h2><pre>\(escape(planJSON))</pre>\n</body></html>\n"
        return page
    }

    private static func comparisonTable(_ results: ExperimentReport.Results) -> String {
        var table = "<h2>Comparison</h2><table><tr><th>cluster</th><th>nodes</th><th>H / T / jitter (ms)</th><th>pre-vote, check-quorum</th><th>ok ops/s</th><th>p50 ms</th><th>p99 ms</th><th>availability</th><th>leader changes</th><th>failover median / max ms</th><th>unknown</th><th>CPU per node</th><th>verdict</th></tr>\n"
        for repetition in results.repetitions {
            for cluster in repetition.clusters {
                let summary = cluster.summary
                let settings = cluster.settings
                let failovers = summary?.failoversMs ?? []
                var failover = failovers.isEmpty ? "-" : "\(Int(ExperimentReport.percentile(failovers, 0.5) ?? 0)) / \(Int(failovers.max() ?? 0))"
                if let missing = summary?.failoversWithoutLeader, missing > 0 { failover += " (\(missing) without a new leader)" }
                table += "<tr><td>\(escape(cluster.name))\(results.repetitions.count > 1 ? " #\(repetition.number)" : "")</td><td>\(settings.nodes)</td>"
                    + "<td>\(settings.heartbeatMs) / \(settings.electionTimeoutMs) / \(settings.electionJitterMs.map(String.init) ?? "\(settings.electionTimeoutMs)")</td>"
                    + "<td>\(settings.preVote ?? true ? "on" : "off"), \(settings.checkQuorum ?? true ? "on" : "off")</td>"
                    + "<td>\(String(format: "%.1f", summary?.throughputPerSecond ?? 0))</td><td>\(summary?.latencyP50Ms.map { String(format: "%.1f", $0) } ?? "-")</td>"
                    + "<td>\(summary?.latencyP99Ms.map { String(format: "%.1f", $0) } ?? "-")</td><td>\(Int((summary?.availability ?? 0) * 100))%</td>"
                    + "<td>\(summary?.leaderChanges ?? 0)</td><td>\(failover)</td><td>\(summary?.unknown ?? 0)</td>"
                    + "<td>\(cluster.cpuPerNodePercent.isEmpty ? "-" : String(format: "%.1f%%", cluster.cpuPerNodePercent.values.reduce(0, +) / Double(cluster.cpuPerNodePercent.count)))</td>"
                    + "<td class=\"\(cluster.verdict.passed ? "pass" : "fail")\">\(cluster.verdict.passed ? "passed" : "failed")</td></tr>\n"
            }
        }
        return table + "</table>\n"
    }

    private static func clusterSection(_ cluster: ExperimentReport.ClusterResult, _ position: Int, _ repetition: ExperimentReport.Repetition,
                                       _ plan: ExperimentPlan) -> String {
        let history = repetition.history
        let faults = history.faults.filter { $0.cluster == cluster.name && $0.action != "heal" }
        let shaded = faults.map { ($0.atMs / 1_000, ($0.endMs ?? plan.seconds * 1_000) / 1_000, $0.action) }
        let seconds = ExperimentReport.seconds(of: cluster.name, in: history, seconds: plan.seconds)
        var section = "<h2>Cluster \(escape(cluster.name))</h2>\n"
        section += "<p>Verdict: <b class=\"\(cluster.verdict.passed ? "pass" : "fail")\">\(cluster.verdict.passed ? "passed" : "failed")</b>; \(cluster.verdict.servicesChecked) service histories checked for linearizability"
            + (cluster.verdict.undecided > 0 ? " (\(cluster.verdict.undecided) undecided within the search budget)" : "")
            + "; converged \(cluster.convergenceSeconds.map { String(format: "%.2f s after healing", $0) } ?? "not within the settle time").</p>\n"
        if !cluster.verdict.problems.isEmpty {
            section += "<ul>" + cluster.verdict.problems.map { "<li class=\"fail\">\(escape($0))</li>" }.joined() + "</ul>\n"
        }
        if let counterexample = cluster.verdict.counterexample {
            let lines = counterexample.map { "\($0.kind) service \($0.service.map(String.init) ?? "-") value \($0.value.map(String.init) ?? "-")\($0.absent ? " (absent)" : "") [\(ExperimentReport.format($0.invokeMs)), \($0.completeMs.map(ExperimentReport.format) ?? "?")] \($0.outcome.rawValue)" }
            section += "<p>Smallest failing sub-history:</p><pre>\(escape(lines.joined(separator: "\n")))</pre>\n"
        }
        section += "<h3>Throughput and availability (operations per second)</h3>\n"
        section += lineChart(seconds: plan.seconds, yLabel: "ops/s", series: [
            ("ok", seconds.enumerated().map { (Double($0.offset) + 0.5, Double($0.element.ok)) }),
            ("failed", seconds.enumerated().map { (Double($0.offset) + 0.5, Double($0.element.failed)) }),
            ("unknown", seconds.enumerated().map { (Double($0.offset) + 0.5, Double($0.element.unknown)) }),
        ], shaded: shaded)
        section += "<h3>Latency of successful operations (ms)</h3>\n"
        section += lineChart(seconds: plan.seconds, yLabel: "ms", series: [
            ("p50", seconds.enumerated().compactMap { item in ExperimentReport.percentile(item.element.latencies, 0.5).map { (Double(item.offset) + 0.5, $0) } }),
            ("p99", seconds.enumerated().compactMap { item in ExperimentReport.percentile(item.element.latencies, 0.99).map { (Double(item.offset) + 0.5, $0) } }),
        ], shaded: shaded)
        section += "<h3>Who led, in which term</h3>\n" + timeline(history.roles.filter { $0.cluster == cluster.name }, seconds: plan.seconds, shaded: shaded)
        if let failovers = cluster.summary?.failoversMs, !failovers.isEmpty {
            section += "<h3>Failover time (leader fault to a new leader seen), CDF of \(failovers.count)</h3>\n" + cdf([(cluster.name, failovers)])
        }
        return section
    }

    // MARK: - Charts

    static let width = 1000.0
    static let height = 220.0
    static let left = 50.0
    static let bottom = 25.0

    private static func x(_ seconds: Double, of total: Double) -> Double { ((left + (width - left - 10) * seconds / max(total, 0.001)) * 10).rounded() / 10 }

    static func lineChart(seconds: Double, yLabel: String, series: [(String, [(Double, Double)])], shaded: [(Double, Double, String)], yMax: Double? = nil) -> String {
        let top = yMax ?? max(1, series.flatMap { $0.1.map(\.1) }.max() ?? 1) * 1.1
        func y(_ value: Double) -> Double { height - bottom - (height - bottom - 10) * value / top }
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        for (start, end, label) in shaded {
            svg += "<rect x=\"\(x(start, of: seconds))\" y=\"10\" width=\"\(String(format: "%.1f", max(1, x(end, of: seconds) - x(start, of: seconds))))\" height=\"\(height - bottom - 10)\" fill=\"#f3c4c4\" opacity=\"0.45\"><title>\(escape(label))</title></rect>"
        }
        svg += axes(seconds: seconds, top: top, yLabel: yLabel)
        for (index, (name, points)) in series.enumerated() where !points.isEmpty {
            let path = points.map { "\(String(format: "%.1f", x($0.0, of: seconds))),\(String(format: "%.1f", y($0.1)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(colors[index % colors.count])\" stroke-width=\"1.5\" points=\"\(path)\"/>"
            svg += "<text x=\"\(width - 120)\" y=\"\(20 + 14 * Double(index))\" fill=\"\(colors[index % colors.count])\">\(escape(name))</text>"
        }
        return svg + "</svg>\n"
    }

    private static func axes(seconds: Double, top: Double, yLabel: String) -> String {
        var svg = "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width - 10)\" y2=\"\(height - bottom)\" stroke=\"#888\"/>"
        svg += "<line x1=\"\(left)\" y1=\"10\" x2=\"\(left)\" y2=\"\(height - bottom)\" stroke=\"#888\"/>"
        let step = max(1, Int((seconds / 10).rounded(.up)))
        for second in stride(from: 0, through: Int(seconds), by: step) {
            svg += "<text x=\"\(x(Double(second), of: seconds) - 4)\" y=\"\(height - 8)\" font-size=\"10\">\(second)s</text>"
        }
        svg += "<text x=\"4\" y=\"18\" font-size=\"10\">\(String(format: "%.0f", top))</text><text x=\"4\" y=\"\(height - bottom)\" font-size=\"10\">0</text>"
        return svg + "<text x=\"4\" y=\"\((height - bottom) / 2)\" font-size=\"10\">\(escape(yLabel))</text>"
    }

    /// One row per node: its role over time (leader dark, candidate orange, follower light,
    /// down grey), the term written where it led.
    static func timeline(_ roles: [History.RoleChange], seconds: Double, shaded: [(Double, Double, String)]) -> String {
        let nodes = Array(Set(roles.map(\.node))).sorted()
        let rowHeight = 22.0
        let chartHeight = Double(nodes.count) * rowHeight + 35
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(chartHeight))\" xmlns=\"http://www.w3.org/2000/svg\">"
        for (start, end, label) in shaded {
            svg += "<rect x=\"\(x(start, of: seconds))\" y=\"5\" width=\"\(String(format: "%.1f", max(1, x(end, of: seconds) - x(start, of: seconds))))\" height=\"\(chartHeight - 30)\" fill=\"#f3c4c4\" opacity=\"0.45\"><title>\(escape(label))</title></rect>"
        }
        let fill = ["leader": "#1f4e79", "candidate": "#ff7f0e", "follower": "#9ecae1", "learner": "#c7e9c0", "down": "#bbbbbb"]
        for (row, node) in nodes.enumerated() {
            let y = 5 + Double(row) * rowHeight
            svg += "<text x=\"2\" y=\"\(y + 15)\" font-size=\"10\">\(node)</text>"
            // One bar per stretch in one role (a follower whose term or leader changed stays one bar).
            var changes: [History.RoleChange] = []
            for change in roles.filter({ $0.node == node }).sorted(by: { $0.atMs < $1.atMs }) {
                if let last = changes.last, last.role == change.role, change.role != "leader" || last.term == change.term { continue }
                changes.append(change)
            }
            for (index, change) in changes.enumerated() {
                let start = change.atMs / 1_000
                let end = index + 1 < changes.count ? changes[index + 1].atMs / 1_000 : seconds
                let tip = change.role == "follower" ? "" : "<title>\(change.role) term \(change.term.map(String.init) ?? "-") from \(ExperimentReport.format(start)) s</title>"
                svg += "<rect x=\"\(x(start, of: seconds))\" y=\"\(y)\" width=\"\(String(format: "%.1f", max(0.5, x(end, of: seconds) - x(start, of: seconds))))\" height=\"\(rowHeight - 4)\" fill=\"\(fill[change.role] ?? "#eee")\">\(tip)</rect>"
                if change.role == "leader", let term = change.term {
                    svg += "<text x=\"\(x(start, of: seconds) + 2)\" y=\"\(y + 13)\" font-size=\"10\" fill=\"#fff\">t\(term)</text>"
                }
            }
        }
        svg += "<text x=\"\(left)\" y=\"\(chartHeight - 8)\" font-size=\"10\">leader (dark, with its term) · candidate (orange) · follower (light) · down (grey) · faults shaded · 0 to \(Int(seconds)) s</text>"
        return svg + "</svg>\n"
    }

    /// Cumulative distributions, one line per series (Figure 16 of the Raft paper draws these).
    static func cdf(_ series: [(String, [Double])], chartWidth: Double = 500) -> String {
        // The axis ends a little past the 98th percentile: a few outliers (a stalled process)
        // would otherwise squeeze every curve against the left edge; they are counted instead.
        let all = series.flatMap(\.1)
        let top = min(all.max() ?? 1, (ExperimentReport.percentile(all, 0.98) ?? 1) * 1.3) * 1.05
        let beyond = all.filter { $0 > top }.count
        func px(_ value: Double) -> Double { ((left + (chartWidth - left - 10) * value / max(top, 0.001)) * 10).rounded() / 10 }
        func py(_ fraction: Double) -> Double { ((height - bottom - (height - bottom - 10) * fraction) * 10).rounded() / 10 }
        var svg = "<svg width=\"\(Int(chartWidth))\" height=\"\(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        svg += "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(chartWidth - 10)\" y2=\"\(height - bottom)\" stroke=\"#888\"/><line x1=\"\(left)\" y1=\"10\" x2=\"\(left)\" y2=\"\(height - bottom)\" stroke=\"#888\"/>"
        for (position, (name, values)) in series.enumerated() where !values.isEmpty {
            let sorted = values.sorted()
            var points = "\(px(0)),\(py(0))"
            for (index, value) in sorted.enumerated() where value <= top {
                points += " \(px(value)),\(py(Double(index) / Double(sorted.count))) \(px(value)),\(py(Double(index + 1) / Double(sorted.count)))"
            }
            let color = colors[position % colors.count]
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(points)\"/>"
            svg += "<text x=\"\(chartWidth - 150)\" y=\"\(height - bottom - 12 - 13 * Double(series.count - 1 - position))\" font-size=\"11\" fill=\"\(color)\">\(escape(name)) (\(sorted.count))</text>"
        }
        svg += "<text x=\"4\" y=\"18\" font-size=\"10\">100%</text><text x=\"\(chartWidth - 80)\" y=\"\(height - 8)\" font-size=\"10\">\(Int(top)) ms</text>"
        if beyond > 0 { svg += "<text x=\"\(chartWidth - 260)\" y=\"\(height - 8)\" font-size=\"10\">(\(beyond) value(s) beyond the axis)</text>" }
        return svg + "<text x=\"\(left)\" y=\"\(height - 8)\" font-size=\"10\">0 ms</text></svg>\n"
    }
}

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
