import Foundation
import Testing

/// Experiments end to end: real node processes, a leader killed, the report checked.
@Suite(.serialized) struct ExperimentTests {
    @Test func twoClustersGetTheSameFaultAndTheReportHoldsBoth() throws {
        let directory = NSTemporaryDirectory() + "experiment-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = directory + "/plan.json"
        try #"""
        {"name": "test", "seconds": 8,
         "clusters": [{"name": "short", "nodes": 3, "heartbeatMs": 20, "electionTimeoutMs": 200},
                      {"name": "long", "nodes": 3, "heartbeatMs": 50, "electionTimeoutMs": 500}],
         "workload": {"clients": 2},
         "faults": [{"at": 3, "action": "kill-leader"}, {"at": 5.5, "action": "restart"}]}
        """#.write(toFile: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: OrchestratorHarness.executable)
        process.arguments = ["experiment", "run", file, "--out", directory + "/report", "--base-port", String(OrchestratorHarness.freePortRun(20))]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")

        let results = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/report/results.json"))) as? [String: Any])
        let clusters = try #require((results["repetitions"] as? [[String: Any]])?.first?["clusters"] as? [[String: Any]])
        #expect(clusters.map { $0["name"] as? String } == ["short", "long"])
        for cluster in clusters {
            let verdict = cluster["verdict"] as? [String: Any]
            #expect(verdict?["passed"] as? Bool == true, "\(cluster)")
            let summary = try #require(cluster["summary"] as? [String: Any])
            #expect((summary["ok"] as? Int ?? 0) > 50, "\(summary)")
            // The leader was killed once: one failover, measured, shorter than a few seconds.
            let failovers = summary["failoversMs"] as? [Double] ?? []
            #expect(failovers.count == 1 && failovers.allSatisfy { $0 > 0 && $0 < 5_000 }, "\(summary)")
        }
        let series = try String(contentsOfFile: directory + "/report/series.csv", encoding: .utf8)
        #expect(series.contains(",short,") && series.contains(",long,"))
        let page = try String(contentsOfFile: directory + "/report/report.html", encoding: .utf8)
        #expect(page.contains("<svg") && page.contains("Cluster short") && page.contains("Cluster long") && !page.contains("<script"))
        let history = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/report/history-1.json"))) as? [String: Any])
        let faults = history["faults"] as? [[String: Any]] ?? []
        // The same fault reached both clusters within a moment of each other.
        let kills = faults.filter { $0["action"] as? String == "kill-leader" }.compactMap { $0["atMs"] as? Double }
        #expect(kills.count == 2 && (kills.max()! - kills.min()!) < 500, "\(faults)")
    }

    @Test func theAPIRefusesBadFilesAndRunsOneExperimentAtATime() throws {
        let orchestrator = try OrchestratorHarness(nodes: 1)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let bad = try orchestrator.json("POST", "/experiments", #"{"name": "x", "seconds": 2, "clusters": [{"name": "a", "nodes": 99}]}"#)
        #expect(bad.status == 400 && bad.text.contains("nodes must be from 1"), "\(bad.text)")
        let started = try orchestrator.json("POST", "/experiments", #"{"name": "api", "seconds": 2, "clusters": [{"name": "a", "nodes": 1}], "workload": {"clients": 1}}"#)
        #expect(started.status == 202, "\(started.text)")
        let id = try #require((started.body as? [String: Any])?["id"] as? String)
        let second = try orchestrator.json("POST", "/experiments", #"{"name": "api2", "seconds": 2, "clusters": [{"name": "a", "nodes": 1}]}"#)
        #expect(second.status == 409, "\(second.text)")
        let deadline = Date().addingTimeInterval(30)
        var view: [String: Any] = [:]
        while Date() < deadline {
            view = try orchestrator.json("GET", "/experiments/\(id)").body as? [String: Any] ?? [:]
            if ["finished", "failed", "cancelled"].contains((view["progress"] as? [String: Any])?["state"] as? String) { break }
            usleep(100_000)
        }
        let progress = view["progress"] as? [String: Any]
        #expect(progress?["state"] as? String == "finished" && progress?["verdict"] as? String == "passed", "\(view)")
        let report = try orchestrator.client.send("GET", host: "127.0.0.1", port: orchestrator.port, path: "/experiments/\(id)/report")
        #expect(report.status.rawValue == 200 && report.headers["content-type"]?.hasPrefix("text/html") == true)
        if let path = view["report"] as? String { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path) }
        #expect(try orchestrator.json("GET", "/experiments/99").status == 404)
    }
}
