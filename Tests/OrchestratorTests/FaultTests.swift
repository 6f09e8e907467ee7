#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Testing
import Transport

/// Process faults and durability on real processes: kill -9 under load, corrupted logs,
/// and a short nemesis run with its checks.
@Suite(.serialized) struct FaultTests {
    /// Clients posting services until told to stop, remembering what was answered 201.
    final class Writers: @unchecked Sendable {
        let lock = NSLock()
        var acknowledged: [String: Int] = [:]  // requestId -> replicas
        var isRunning = true
        var threads = 0

        func start(_ count: Int, port: Int, cluster: String = "0") {
            for writer in 0..<count {
                lock.withLock { threads += 1 }
                Thread { [self] in
                    let client = HTTPClient()
                    var sequence = 0
                    while lock.withLock({ isRunning }) {
                        sequence += 1
                        let requestID = "w\(writer)-\(sequence)"
                        let body = #"{"container": {"id": \#(sequence), "replicas": 2}, "requestId": "\#(requestID)"}"#
                        if let response = try? client.postJSON(host: "127.0.0.1", port: port, path: "/clusters/\(cluster)/service", body: Array(body.utf8), timeoutSeconds: 8),
                           response.status == .created
                        {
                            lock.withLock { acknowledged[requestID] = 2 }
                        } else {
                            usleep(20_000)
                        }
                    }
                    lock.withLock { threads -= 1 }
                }.start()
            }
        }

        func stop() {
            lock.withLock { isRunning = false }
            while lock.withLock({ threads }) > 0 { usleep(5_000) }
        }

        var count: Int { lock.withLock { acknowledged.count } }
    }

    /// Waits until every node answers with the same commit index, all applied.
    private func waitForConvergence(_ orchestrator: OrchestratorHarness, seconds: Double = 20) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let ports = try orchestrator.nodes().map(\.port)
            let stats = ports.compactMap { port -> [String: Any]? in
                guard let answer = try? orchestrator.json("GET", "/stats", port: port), answer.status == 200 else { return nil }
                return answer.body as? [String: Any]
            }
            let commits = Set(stats.compactMap { $0["commitIndex"] as? Int })
            if stats.count == ports.count, commits.count == 1, stats.allSatisfy({ ($0["appliedIndex"] as? Int) == ($0["commitIndex"] as? Int) }),
               stats.contains(where: { $0["state"] as? String == "leader" })
            {
                return
            }
            usleep(50_000)
        }
        throw HarnessError("cluster did not converge within \(seconds) s")
    }

    /// Every acknowledged request must be in every node's own applied state.
    private func expectAllAcknowledgedEverywhere(_ orchestrator: OrchestratorHarness, _ acknowledged: [String: Int]) throws {
        for node in try orchestrator.nodes() {
            let answer = try orchestrator.json("GET", "/services?local=true", port: node.port)
            let results = (answer.body as? [String: Any])?["results"] as? [[String: Any]] ?? []
            let present = Set(results.compactMap { $0["requestId"] as? String })
            let missing = acknowledged.keys.filter { !present.contains($0) }
            #expect(missing.isEmpty, "node \(node.port) lost \(missing.count) of \(acknowledged.count) acknowledged services, e.g. \(missing.prefix(3))")
        }
    }

    /// A write to cluster 0 answers 503 within 2 s, its error containing `reason`.
    private static func expectWriteRefusedAtOnce(_ orchestrator: OrchestratorHarness, saying reason: String) throws {
        let started = monotonicSeconds()
        let write = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"name": "web", "replicas": 1}}"#)
        #expect(write.status == 503)
        #expect(write.text.contains(reason), "\(write.text)")
        #expect(monotonicSeconds() - started < 2, "the write waited \(monotonicSeconds() - started) s")
    }

    /// With every node of a cluster killed no leader can come: a write answers 503 at once,
    /// saying so, instead of waiting out the orchestrator's patience (6 s) for a leader. (A
    /// fuzzer that killed a one-node cluster spent minutes on such waits.) A node started
    /// again serves writes again.
    @Test func writesToAClusterWithNoNodeRunningFailAtOnce() throws {
        let orchestrator = try OrchestratorHarness(nodes: 1)
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let node = Int((summary["leader"] as! String).split(separator: ":").last!)!
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(node)/kill").status == 200)
        try Self.expectWriteRefusedAtOnce(orchestrator, saying: "0 of 1 nodes running")
        let resize = try orchestrator.json("PUT", "/clusters/0", #"{"nodes": 2}"#)
        #expect(resize.status == 503 && resize.text.contains("not a majority"), "\(resize.text)")
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(node)/start").status == 200)
        try orchestrator.waitForLeader()
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"name": "web", "replicas": 1}}"#).status == 201)
    }

    /// With a majority of a cluster's nodes killed or paused no leader can come (and one that
    /// has not noticed yet cannot commit): a write answers 503 at once, saying so. (A fuzzer
    /// that killed two of three nodes spent five minutes on 6 s waits.) Resumed, it serves.
    @Test func writesToAClusterWithoutAMajorityRunningFailAtOnce() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let leader = Int((summary["leader"] as! String).split(separator: ":").last!)!
        let followers = try orchestrator.nodes().map(\.port).filter { $0 != leader }
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(followers[0])/kill").status == 200)
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(followers[1])/pause").status == 200)
        try Self.expectWriteRefusedAtOnce(orchestrator, saying: "1 of 3 nodes running, not a majority")
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(followers[1])/resume").status == 200)
        let deadline = monotonicSeconds() + 10
        var status = 0
        while monotonicSeconds() < deadline {
            status = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"name": "web", "replicas": 1}}"#).status
            if status == 201 { break }
            usleep(100_000)
        }
        #expect(status == 201)
    }

    @Test func leaderKilledWhileWritingLosesNothingItAcknowledged() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let leader = Int((summary["leader"] as! String).split(separator: ":").last!)!
        let writers = Writers()
        writers.start(3, port: orchestrator.port)
        while writers.count < 50 { usleep(10_000) }
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(leader)/kill").status == 200)
        let acknowledgedAtKill = writers.count
        while writers.count < acknowledgedAtKill + 50 { usleep(10_000) }  // the others carry on with a new leader
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(leader)/restart").status == 200)
        writers.stop()
        try orchestrator.waitForLeader()
        try waitForConvergence(orchestrator)
        try expectAllAcknowledgedEverywhere(orchestrator, writers.acknowledged)
    }

    /// One client's writes, one at a time, leave each follower idle between its rounds: it
    /// syncs such a round on the event loop that began it (`ReplicaDriver.syncsWhereBegun`),
    /// every one an fdatasync before its acknowledgement; a leader hands its syncs to its round
    /// thread. The leader then killed, what it acknowledged is on both others, which go on.
    @Test func followersSyncTheirSparseRoundsOnTheirLoopsAndLoseNothing() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        let leader = try MetricsTests.leaderPort(orchestrator)
        let syncedBefore = try MetricsTests.value(MetricsTests.scrape(orchestrator, port: leader), "node_rounds_synced_on_event_loops_total") ?? -1
        var acknowledged: [String: Int] = [:]
        for sequence in 1...40 {
            let requestID = "one-\(sequence)"
            let body = #"{"container": {"id": \#(sequence), "replicas": 1}, "requestId": "\#(requestID)"}"#
            if try orchestrator.json("POST", "/service", body, port: leader).status == 201 { acknowledged[requestID] = 1 }
        }
        #expect(acknowledged.count == 40)
        for node in try orchestrator.nodes() {
            let metrics = try MetricsTests.scrape(orchestrator, port: node.port)
            let syncedOnLoops = MetricsTests.value(metrics, "node_rounds_synced_on_event_loops_total") ?? -1
            let fsyncs = MetricsTests.value(metrics, "node_fsyncs_total") ?? -1
            if node.port == leader {
                // What it synced on its loops it did as a follower, before it led.
                #expect(syncedOnLoops == syncedBefore, "the leader synced \(syncedOnLoops - syncedBefore) rounds on its loops")
            } else {
                // Most of the 40 (40-42 here, the election's rounds among them; 29-38 with two
                // processes spinning on both cores): fewer on a loaded machine, where the round
                // thread may be awake (a tick) when an append comes and runs that round itself.
                #expect(syncedOnLoops >= 5 && fsyncs >= syncedOnLoops, "follower \(node.port): \(syncedOnLoops) synced on loops, \(fsyncs) fsyncs")
            }
        }
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(leader)/kill").status == 200)
        let after = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"name": "after", "replicas": 1}}"#)
        #expect(after.status == 201, "\(after.text)")
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(leader)/restart").status == 200)
        try waitForConvergence(orchestrator)
        try expectAllAcknowledgedEverywhere(orchestrator, acknowledged)
    }

    /// After an election the leader waits (at most 2 H + 20 ms) for every healthy member's
    /// first answer before placing a client's replicas; the leader it replaces is not waited
    /// for, killed (its connections close) or paused (it went silent for an election
    /// timeout). H = 400 ms makes the wait 0.82 s; the write must come well before.
    @Test(arguments: ["kill", "pause"])
    func firstWriteAfterFailoverDoesNotWaitForTheOldLeader(fault: String) throws {
        let orchestrator = try OrchestratorHarness(nodes: 3, extraArguments: ["--heartbeat-ms", "400", "--election-timeout-ms", "2000"])
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let leader = Int((summary["leader"] as! String).split(separator: ":").last!)!
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"name": "before", "replicas": 1}}"#).status == 201)
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(leader)/\(fault)").status == 200)
        defer { if fault == "pause" { _ = try? orchestrator.json("POST", "/clusters/0/nodes/\(leader)/resume") } }
        var newLeader: Int?
        #expect(try orchestrator.waitUntil("a new leader", seconds: 20) {
            for port in try orchestrator.nodes().map(\.port) where port != leader {
                if let state = (try? orchestrator.json("GET", "/", port: port))?.body as? [String: Any], state["state"] as? String == "leader" {
                    newLeader = port
                    return true
                }
            }
            return false
        })
        guard let newLeader else { return }
        let started = Date()
        let created = try orchestrator.json("POST", "/service", #"{"container": {"name": "after", "replicas": 1}}"#, port: newLeader)
        let seconds = Date().timeIntervalSince(started)
        #expect(created.status == 201, "\(created.text)")
        #expect(seconds < 0.4, "the first write after the election took \(seconds) s: it waited for the old leader's answer")
    }

    /// A leader that sent no heartbeats for an election timeout (paused here; under load, a
    /// long fdatasync can do the same) says so in its log when it runs again, with the likely
    /// cause, and counts it: the explanation of a leadership change with no fault injected.
    @Test func aLeaderThatHeldBackItsHeartbeatsSaysSo() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let leader = Int((summary["leader"] as! String).split(separator: ":").last!)!
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(leader)/pause").status == 200)
        // Paused until another node leads: at least an election timeout (500 ms) without ticks.
        #expect(try orchestrator.waitUntil("a new leader", seconds: 20) {
            try orchestrator.nodes().contains { $0.port != leader && $0.state == "leader" }
        })
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(leader)/resume").status == 200)
        let logPath = orchestrator.dataDirectory + "/cluster-0/node-\(leader).log"
        var line = ""
        #expect(try orchestrator.waitUntil("the old leader's log line", seconds: 10) {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            line = log.split(separator: "\n").last { $0.contains("heartbeats held back") }.map(String.init) ?? ""
            return !line.isEmpty
        })
        let words = line.split(separator: " ")
        let heldBack = words.firstIndex(of: "back").flatMap { Double(words[$0 + 1]) } ?? 0
        let lastSync = words.firstIndex(of: "took").flatMap { Double(words[$0 + 1]) } ?? -1
        #expect(heldBack >= 500 && lastSync >= 0, "\(line)")
        #expect(line.contains("election timeout (500 ms)"), "\(line)")
        // The cause named follows the last fdatasync's share of the gap (a disk that stalled
        // just before the pause would be named instead).
        let cause = lastSync >= heldBack / 2 ? "likely a slow disk" : "likely the process paused or starved of CPU"
        #expect(line.contains(cause), "\(line)")
        let stalls = MetricsTests.value(try MetricsTests.scrape(orchestrator, port: leader), "node_heartbeat_stalls_total")
        #expect((stalls ?? 0) >= 1)
    }

    @Test func everyNodeKilledAtOnceUnderLoadKeepsEveryAcknowledgedWrite() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let writers = Writers()
        writers.start(4, port: orchestrator.port)
        while writers.count < 100 { usleep(10_000) }
        // kill -9 every node in one loop, mid-write: only what reached a majority's disk survives.
        let pids = orchestrator.nodePIDs
        for pid in pids { kill(pid, SIGKILL) }
        writers.stop()
        let acknowledged = writers.acknowledged
        for node in try orchestrator.nodes() {
            let restarted = try orchestrator.json("POST", "/clusters/0/nodes/\(node.port)/restart")
            #expect(restarted.status == 200, "\(restarted.text)")
        }
        try orchestrator.waitForLeader()
        try waitForConvergence(orchestrator)
        try expectAllAcknowledgedEverywhere(orchestrator, acknowledged)
    }

    @Test func corruptedLogRefusesToStartNamingFileAndOffset() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        for index in 0..<20 {
            #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": \#(index), "replicas": 1}}"#).status == 201)
        }
        let victim = try orchestrator.nodes().first { $0.state == "follower" }!.port
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(victim)/kill").status == 200)
        let segment = orchestrator.dataDirectory + "/cluster-0/node-\(victim)/raft/wal-0000000000000001.log"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: segment)))
        #expect(bytes.count > 200)
        bytes[40] ^= 0x5A  // inside the first batch, with valid batches after it
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let restarted = try orchestrator.json("POST", "/clusters/0/nodes/\(victim)/restart")
        #expect(restarted.status >= 500 && restarted.text.contains("exited during start"), "\(restarted.text)")
        let log = try String(contentsOfFile: orchestrator.dataDirectory + "/cluster-0/node-\(victim).log", encoding: .utf8)
        #expect(log.contains("write-ahead log corrupted: \(segment) at offset 0"), "\(log)")
        // The rest of the cluster carries on.
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 99, "replicas": 1}}"#).status == 201)
    }

    @Test func nemesisFindsNothingLost() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let nemesis = Process()
        nemesis.executableURL = URL(fileURLWithPath: OrchestratorHarness.executable)
        nemesis.arguments = ["nemesis", "--url", "http://127.0.0.1:\(orchestrator.port)", "--seconds", "8", "--seed", "2026", "--clients", "3"]
        let output = Pipe()
        nemesis.standardOutput = output
        nemesis.standardError = FileHandle.nullDevice
        try nemesis.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        nemesis.waitUntilExit()
        #expect(nemesis.terminationStatus == 0, "\(text)")
        #expect(text.contains("PASSED"), "\(text)")
        #expect(!text.contains("acknowledged services: 0;"), "\(text)")
    }
}
