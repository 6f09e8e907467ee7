#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Testing
import Transport

/// What a newcomer and an adversarial tester broke, on real processes: data directories
/// owned by one process, a follower that lost its disk, answers from a deposed leader,
/// node health under one-way cuts.
@Suite(.serialized) struct HardeningTests {
    private func leaderPort(_ orchestrator: OrchestratorHarness, cluster: String = "0") throws -> Int {
        let summary = try orchestrator.waitForLeader(cluster: cluster)
        return Int((summary["leader"] as! String).split(separator: ":").last!)!
    }

    @Test func secondOrchestratorOnTheSameDataIsRefusedAndDeletesNothing() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 3}}"#).status == 201)
        let other = OrchestratorHarness.freePortRun(10)
        let second = try runOrchestrator(["--port", String(other), "--nodes", "3", "--data-dir", orchestrator.dataDirectory, "--watch-parent"])
        #expect(second.status != 0)
        #expect(second.output.contains("data directory \(orchestrator.dataDirectory) is in use by process \(orchestrator.process.processIdentifier)"), "\(second.output)")
        // Nothing of the running cluster was touched: its data is there and it keeps committing.
        for node in try orchestrator.nodes() {
            let walDirectory = orchestrator.dataDirectory + "/cluster-0/node-\(node.port)/raft"
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: walDirectory)) ?? []).contains { $0.hasPrefix("wal-") }, "\(walDirectory)")
        }
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 2, "replicas": 3}}"#).status == 201)
        // A node started by hand on a running node's directory is refused the same way.
        let victim = try orchestrator.nodes()[0].port
        let directory = orchestrator.dataDirectory + "/cluster-0/node-\(victim)"
        let node = try runOrchestrator(["node", "--port", String(other), "--members", String(victim), "--data-dir", directory])
        #expect(node.status != 0 && node.output.contains("data directory \(directory) is in use by process"), "\(node.output)")
    }

    @Test func followerThatLostItsDiskRejoinsAndCatchesUp() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        let leader = try leaderPort(orchestrator)
        for index in 0..<30 {
            #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": \#(index), "replicas": 1}}"#).status == 201)
        }
        let victim = try orchestrator.nodes().first { $0.port != leader }!.port
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(victim)/kill").status == 200)
        try FileManager.default.removeItem(atPath: orchestrator.dataDirectory + "/cluster-0/node-\(victim)")
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(victim)/restart").status == 200)
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 99, "replicas": 1}}"#).status == 201)
        let target = (try orchestrator.json("GET", "/stats", port: leader).body as? [String: Any])?["commitIndex"] as? Int ?? 0
        let deadline = Date().addingTimeInterval(10)
        var commit = 0
        while Date() < deadline {
            commit = (try? orchestrator.json("GET", "/stats", port: victim).body as? [String: Any])?["appliedIndex"] as? Int ?? 0
            if commit >= target { break }
            usleep(20_000)
        }
        #expect(commit >= target, "the emptied node applied \(commit) of \(target)")
        let services = (try orchestrator.json("GET", "/services?local=true", port: victim).body as? [String: Any])?["results"] as? [Any]
        #expect(services?.count == 31)
    }

    @Test func deposedLeaderNeverAnswersADefiniteNotFound() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        let old = try leaderPort(orchestrator)
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(old)/pause").status == 200)
        var newLeader = old
        let deadline = Date().addingTimeInterval(10)
        while newLeader == old, Date() < deadline {
            for node in try orchestrator.nodes() where node.port != old && node.state == "leader" { newLeader = node.port }
            usleep(20_000)
        }
        #expect(newLeader != old)
        let created = try orchestrator.json("POST", "/service", #"{"container": {"id": 7, "replicas": 2}}"#, port: newLeader)
        #expect(created.status == 201, "\(created.text)")
        let id = ((created.body as? [String: Any])?["services"] as? [[String: Any]])?.first?["id"] as? Int ?? 0
        // The paused old leader still believes it leads; its answer comes once it resumes.
        final class Answer: @unchecked Sendable { var value: (status: Int, body: Any?, text: String)? }
        let answer = Answer()
        let done = DispatchSemaphore(value: 0)
        Thread {
            answer.value = try? orchestrator.json("PATCH", "/services/\(id)", #"{"replicas": 3}"#, port: old)
            done.signal()
        }.start()
        usleep(100_000)  // let the request reach the paused process's socket before it resumes (no answer can come earlier)
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(old)/resume").status == 200)
        #expect(done.wait(timeout: .now() + 15) == .success)
        let status = answer.value?.status ?? 0
        #expect(status == 200 || status == 503, "the deposed leader answered \(status): \(answer.value?.text ?? "nothing")")
        #expect(status != 404)
    }

    @Test func oneWayCutFromLeaderMakesThatFollowerUnhealthyAndUnplaceable() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3, extraArguments: ["--unhealthy-after-ms", "1000"])
        defer { orchestrator.stop() }
        let leader = try leaderPort(orchestrator)
        let victim = try orchestrator.nodes().first { $0.port != leader }!.port
        let cut = try orchestrator.json("POST", "/connections", #"{"localhost:\#(victim)": 0}"#, port: leader)
        #expect(cut.status == 200, "\(cut.text)")
        // The follower still sends (it campaigns, unheard): only acknowledgements count.
        let deadline = Date().addingTimeInterval(10)
        var unhealthy: [String] = []
        while Date() < deadline {
            unhealthy = (try orchestrator.json("GET", "/stats", port: leader).body as? [String: Any])?["unhealthyNodes"] as? [String] ?? []
            if unhealthy.contains("localhost:\(victim)") { break }
            usleep(50_000)
        }
        #expect(unhealthy == ["localhost:\(victim)"])
        let created = try orchestrator.json("POST", "/service", #"{"container": {"id": 3, "replicas": 6}}"#, port: leader)
        let placement = ((created.body as? [String: Any])?["services"] as? [[String: Any]])?.first?["placement"] as? [String: Int] ?? [:]
        #expect(placement["localhost:\(victim)"] == nil && placement.values.reduce(0, +) == 6, "\(created.text)")
        // Restored: it acknowledges again and is marked healthy.
        #expect(try orchestrator.json("POST", "/connections", #"{"localhost:\#(victim)": 1}"#, port: leader).status == 200)
        let healed = Date().addingTimeInterval(10)
        while Date() < healed {
            unhealthy = (try orchestrator.json("GET", "/stats", port: leader).body as? [String: Any])?["unhealthyNodes"] as? [String] ?? []
            if unhealthy.isEmpty { break }
            usleep(50_000)
        }
        #expect(unhealthy.isEmpty)
    }

    @Test func killedNodeGetsNoNewReplicasBeforeItIsMarkedUnhealthy() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3, extraArguments: ["--unhealthy-after-ms", "60000"])
        defer { orchestrator.stop() }
        let leader = try leaderPort(orchestrator)
        let victim = try orchestrator.nodes().first { $0.port != leader }!.port
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(victim)/kill").status == 200)
        // Wait until the leader stops counting it as placeable (an election timeout of silence),
        // long before the 60 s grace marks it unhealthy.
        let deadline = Date().addingTimeInterval(10)
        var placeable = true
        while Date() < deadline {
            let stats = try orchestrator.json("GET", "/stats", port: leader).body as? [String: Any]
            let follower = (stats?["followers"] as? [String: Any])?["localhost:\(victim)"] as? [String: Any]
            placeable = follower?["placeable"] as? Bool ?? true
            if !placeable { break }
            usleep(20_000)
        }
        #expect(!placeable)
        let created = try orchestrator.json("POST", "/service", #"{"container": {"id": 4, "replicas": 4}}"#, port: leader)
        let service = ((created.body as? [String: Any])?["services"] as? [[String: Any]])?.first
        let placement = service?["placement"] as? [String: Int] ?? [:]
        #expect(placement["localhost:\(victim)"] == nil && placement.values.reduce(0, +) == 4, "\(created.text)")
        let unhealthy = (try orchestrator.json("GET", "/stats", port: leader).body as? [String: Any])?["unhealthyNodes"] as? [String] ?? []
        #expect(unhealthy.isEmpty)
    }

    @Test func linkFaultsOnALoneNodeSucceedWithNothingToCut() throws {
        // Found by schemathesis: isolating the only node posted it an empty link table, which
        // it refused, and the orchestrator answered 502.
        let orchestrator = try OrchestratorHarness(nodes: 1)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let port = try #require(try orchestrator.nodes().first?.port)
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(port)/isolate").status == 200)
        #expect(try orchestrator.json("POST", "/clusters/0/partition", #"{"groups": [[\#(port)]]}"#).status == 200)
        #expect(try orchestrator.json("POST", "/clusters/0/heal").status == 200)
    }

    @Test func aRefusedContainerRequestCreatesNothing() throws {
        // ?view was checked after the container was created: 400, and a container anyway.
        let orchestrator = try OrchestratorHarness(nodes: 1)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let refused = try orchestrator.json("POST", "/clusters/0/containers?view=yaml", #"{"image": "nginx"}"#)
        #expect(refused.status == 400 && refused.text.contains("view"), "\(refused.text)")
        let list = try orchestrator.json("GET", "/clusters/0/containers").body as? [String: Any]
        #expect((list?["results"] as? [Any])?.isEmpty == true, "\(String(describing: list))")
    }

    @Test func scaleAnswersWhatThisRequestSetAndKeyReuseIsRefused() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let first = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 2}, "requestId": "key-1"}"#)
        #expect(first.status == 201)
        let again = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 2}, "requestId": "key-1"}"#)
        #expect(again.status == 201)
        let firstServices = (first.body as? [String: Any])?["services"] as? [[String: Any]]
        let againServices = (again.body as? [String: Any])?["services"] as? [[String: Any]]
        #expect(firstServices?.first?["id"] as? Int == againServices?.first?["id"] as? Int)
        let reused = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 9}, "requestId": "key-1"}"#)
        #expect(reused.status == 422 && reused.text.contains("key-1"), "\(reused.text)")
        let id = firstServices?.first?["id"] as? Int ?? 0
        let scaled = try orchestrator.json("PATCH", "/clusters/0/services/\(id)", #"{"replicas": 5, "requestId": "scale-1"}"#)
        let body = scaled.body as? [String: Any]
        #expect(scaled.status == 200 && body?["replicas"] as? Int == 5 && (body?["index"] as? Int ?? 0) > 0, "\(scaled.text)")
        _ = try orchestrator.json("PATCH", "/clusters/0/services/\(id)", #"{"replicas": 1, "requestId": "scale-2"}"#)
        // The retry of scale-1 answers what scale-1 did, not the later count.
        let retried = try orchestrator.json("PATCH", "/clusters/0/services/\(id)", #"{"replicas": 5, "requestId": "scale-1"}"#)
        let retriedBody = retried.body as? [String: Any]
        #expect(retriedBody?["replicas"] as? Int == 5 && retriedBody?["index"] as? Int == body?["index"] as? Int, "\(retried.text)")
        #expect((retriedBody?["service"] as? [String: Any])?["replicas"] as? Int == 1, "\(retried.text)")
        #expect(try orchestrator.json("PATCH", "/clusters/0/services/\(id)", #"{"replicas": 4, "requestId": "scale-1"}"#).status == 422)
        // A retried delete answers as the first did (it once found its own deletion: 404, and an
        // experiment's checker caught that as a lost acknowledged write); a new key finds it gone.
        func delete(key: String) throws -> Int {
            try orchestrator.client.send("DELETE", host: "127.0.0.1", port: orchestrator.port, path: "/clusters/0/services/\(id)",
                                         headers: HTTPHeaders([("Idempotency-Key", key)])).status.rawValue
        }
        #expect(try delete(key: "delete-1") == 204)
        #expect(try delete(key: "delete-1") == 204)
        #expect(try delete(key: "delete-2") == 404)
    }
}

/// Limits one client could exhaust, on real processes.
@Suite(.serialized) struct ClientLimitTests {
    /// A plain TCP connection to 127.0.0.1:`port` (nil when refused).
    private func connect(_ port: Int) -> Int32? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else {
            close(descriptor)
            return nil
        }
        return descriptor
    }

    private func send(_ descriptor: Int32, _ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { return }
            sent += count
        }
    }

    /// The status line's code of whatever the server answered before closing or `seconds`.
    private func status(_ descriptor: Int32, seconds: Double = 5) -> Int? {
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        guard count >= 12 else { return nil }
        return Int(String(decoding: buffer[9..<12], as: UTF8.self))
    }

    @Test func idleConnectionsDoNotLockTheAPIOut() throws {
        let orchestrator = try OrchestratorHarness(nodes: 1)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        var idle: [Int32] = []
        defer { for descriptor in idle { close(descriptor) } }
        for _ in 0..<1_100 { if let descriptor = connect(orchestrator.port) { idle.append(descriptor) } }
        #expect(idle.count == 1_100)
        let started = Date()
        let fresh = try orchestrator.json("GET", "/clusters")
        #expect(fresh.status == 200, "\(fresh.text)")
        #expect(Date().timeIntervalSince(started) < 2)
    }

    @Test func nodesBoundBodiesPerRouteAndInTotal() throws {
        let orchestrator = try OrchestratorHarness(nodes: 1)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let node = try orchestrator.nodes()[0].port
        let head = { (path: String, length: Int) in Array("POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n\r\n".utf8) }
        // The API takes 1 MiB like the orchestrator; only the Raft endpoint takes more.
        let api = connect(node)!
        defer { close(api) }
        send(api, head("/service", 2 * 1024 * 1024))
        #expect(status(api) == 413)
        let raft = connect(node)!
        defer { close(raft) }
        send(raft, head("/raft/messages", 17 * 1024 * 1024))
        #expect(status(raft) == 413)
        // Sixteen uploads of 15 MiB at once: the node reads at most 64 MiB of bodies together.
        var uploads: [Int32] = []
        defer { for descriptor in uploads { close(descriptor) } }
        for _ in 0..<16 {
            guard let descriptor = connect(node) else { continue }
            send(descriptor, head("/raft/messages", 15 * 1024 * 1024) + [UInt8](repeating: 0, count: 1_024 * 1_024))
            uploads.append(descriptor)
        }
        let refused = uploads.filter { status($0, seconds: 1) == 503 }.count
        #expect(refused >= 12, "only \(refused) of 16 uploads refused")
        #expect(try orchestrator.json("GET", "/stats", port: node).status == 200)
    }
}

/// The command line as a newcomer meets it.
@Suite struct CommandLineTests {
    private func run(_ arguments: [String]) throws -> (status: Int32, output: String) { try runOrchestrator(arguments) }

    @Test(arguments: [["--help"], ["help"], ["serve", "--help"], ["node", "--help"], ["nemesis", "--help"], ["simulate", "--help"],
                      ["bench", "--help"], ["bench", "raft", "--help"], ["bench", "http", "--help"], ["bench", "failover", "--help"],
                      ["bench", "commit", "--help"], ["bench", "scale", "--help"], ["bench", "compaction", "--help"]])
    func everyCommandAnswersHelp(arguments: [String]) throws {
        let (status, output) = try run(arguments)
        #expect(status == 0, "\(arguments): \(output)")
        #expect(output.contains("usage: orchestrator"), "\(arguments): \(output)")
    }

    @Test func topLevelHelpListsEveryCommandAndBenchKind() throws {
        let output = try run(["--help"]).output
        for command in ["serve", "node", "nemesis", "simulate", "bench raft", "bench http", "bench failover", "bench commit", "bench scale", "bench compaction"] {
            #expect(output.contains(command), "\(command) missing from: \(output)")
        }
    }

    @Test func unknownCommandIsNamedBeforeTheUsage() throws {
        let (status, output) = try run(["frobnicate"])
        #expect(status == 2)
        #expect(output.hasPrefix("orchestrator: unknown command frobnicate"), "\(output)")
        #expect(output.contains("usage: orchestrator"))
    }

    @Test func singleNodeSimulationRunsAndSaysSo() throws {
        let (status, output) = try run(["simulate", "--seed", "1", "--nodes", "1"])
        #expect(status == 0, "\(output)")
        #expect(try run(["simulate", "--seeds", "20", "--nodes", "1"]).status == 0)
        #expect(try run(["simulate", "--help"]).output.contains("--nodes 1-9"))
    }
}

/// Node and orchestrator logs tell an operator what happened, across restarts.
@Suite struct LogTests {
    @Test func nodeLogsKeepEventsAcrossRestartsAndTheOrchestratorLogsFaults() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let leader = Int((summary["leader"] as! String).split(separator: ":").last!)!
        let follower = try orchestrator.follower(besides: leader)
        let logPath = orchestrator.dataDirectory + "/cluster-0/node-\(follower).log"
        #expect(try orchestrator.json("POST", "/connections", #"{"localhost:\#(leader)": {"up": true, "delayMs": 5, "loss": 0}}"#, port: follower).status == 200)
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(follower)/kill").status == 200)
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(follower)/restart").status == 200)
        let deadline = Date().addingTimeInterval(10)
        var text = ""
        while Date() < deadline {
            text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if text.components(separatedBy: "following leader").count >= 3 { break }
            usleep(20_000)
        }
        // Both runs are in the file, each line timestamped.
        #expect(text.components(separatedBy: "node \(follower) of cluster 0 starting").count == 3, "\(text)")
        #expect(text.contains("following leader localhost:\(leader)"), "\(text)")
        #expect(text.contains("links set by"), "\(text)")
        #expect(text.contains("recovered term"), "\(text)")
        for line in text.split(separator: "\n") {
            #expect(line.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "#, options: .regularExpression) != nil, "\(line)")
        }
        let leaderLog = (try? String(contentsOfFile: orchestrator.dataDirectory + "/cluster-0/node-\(leader).log", encoding: .utf8)) ?? ""
        #expect(leaderLog.contains("elected leader"), "\(leaderLog)")
        let orchestratorLog = (try? String(contentsOfFile: orchestrator.dataDirectory + "/orchestrator.log", encoding: .utf8)) ?? ""
        #expect(orchestratorLog.contains("cluster 0 created: nodes"), "\(orchestratorLog)")
        #expect(orchestratorLog.contains("fault: cluster 0 node \(follower) kill"), "\(orchestratorLog)")
        #expect(orchestratorLog.contains("fault: cluster 0 node \(follower) restart"), "\(orchestratorLog)")
    }
}

@Suite struct BadInputTests {
    @Test func unknownFieldsAndTypeErrorsAreNamedOnEveryRoute() throws {
        let orchestrator = try OrchestratorHarness(nodes: 1)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let node = try orchestrator.nodes()[0].port
        let cases: [(String, String, String, Int?, String)] = [
            ("POST", "/clusters", #"{"nodes": 1, "port": 9000, "basePort": 9000, "bogus": true}"#, nil, "unknown fields port, basePort, bogus"),
            ("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 1}, "cmd": "sh", "detached": true}"#, nil, "unknown fields cmd, detached"),
            ("POST", "/service", #"{"container": {"id": 1, "replicas": 1, "ports": [80]}}"#, node, "unknown field container.ports"),
            ("POST", "/containers", #"{"image": "nginx", "port": 80, "publish": 81}"#, node, "give port or publish, not both"),
            ("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 2.5}}"#, nil, "field container.replicas: expected a whole number, got 2.5"),
            ("POST", "/clusters/0/service", #"{"container": {"id": -3, "replicas": 1}}"#, nil, "container.id must be a whole number of at least 0"),
            ("POST", "/clusters/0/service", #"{"container": {"id": 1, "name": "", "replicas": 1}}"#, nil, "container.name is empty"),
            ("POST", "/clusters/0/partition", #"{"groups": [[1]], "extra": 1}"#, nil, "unknown field extra"),
            ("PATCH", "/clusters/0/services/1", #"{"replicas": 99999999999999999999999}"#, nil, "field replicas: expected a whole number from"),
            ("POST", "/clusters/0/leader", #"{"node": 1, "force": true}"#, nil, "unknown field force"),
        ]
        for (method, path, body, port, message) in cases {
            let answer = try orchestrator.json(method, path, body, port: port)
            let error = (answer.body as? [String: Any])?["error"] as? String ?? ""
            #expect(answer.status == 400 && error.hasPrefix(message), "\(method) \(path): \(answer.status) \(answer.text)")
        }
    }
}

@Suite struct TimeBaseTests {
    @Test func everyAnswerUsesUnixSeconds() throws {
        let orchestrator = try OrchestratorHarness(nodes: 1)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 1}}"#).status == 201)
        let now = Date().timeIntervalSince1970
        let node = try orchestrator.nodes()[0].port
        let containers = try orchestrator.json("GET", "/containers", port: node).body as? [[String: Any]] ?? []
        let created = Double(containers.first?["Created"] as? Int ?? 0)
        #expect(abs(created - now) < 60, "createdAt \(created), now \(now)")
        let calls = (try orchestrator.json("GET", "/clusters/0/state").body as? [String: Any])?["calls"] as? [[String: Any]] ?? []
        let received = calls.first?["receivedAt"] as? Double ?? 0
        #expect(abs(received - now) < 60, "receivedAt \(received), now \(now)")
        #expect(String(decoding: try JSONBody.encode(["at": Date(timeIntervalSince1970: 1_000)]), as: UTF8.self) == #"{"at":1000}"#)
    }
}

/// Runs the orchestrator executable with `arguments` to its end; its exit status and output.
func runOrchestrator(_ arguments: [String], seconds: Double = 20) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: OrchestratorHarness.executable)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = Pipe()  // with --watch-parent it ends when we do
    try process.run()
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning, Date() < deadline { usleep(10_000) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        throw HarnessError("\(arguments) did not exit within \(seconds) s")
    }
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return (process.terminationStatus, text)
}
