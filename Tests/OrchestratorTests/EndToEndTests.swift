#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Testing

/// Real processes on free ports, real HTTP, real files. Serialized: each test runs a
/// 5-node cluster, and the machine has two cores.
@Suite(.serialized) struct EndToEndTests {
    private func placement(_ service: [String: Any]) -> [String: Int] {
        service["placement"] as? [String: Int] ?? [:]
    }

    @Test func seedCommandsWorkAndReplicasArePlacedByLoad() throws {
        let orchestrator = try OrchestratorHarness()
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()

        // Seed 003: stats, then each payload shape.
        let stats = try orchestrator.json("GET", "/clusters/0/stats")
        #expect(stats.status == 200)
        let statsBody = try #require(stats.body as? [String: Any])
        #expect(statsBody["leader"] is String && (statsBody["nodes"] as? [Any])?.count == 5)

        let one = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 5, "replicas": 25}}"#)
        #expect(one.status == 201, "\(one.text)")
        let oneService = try #require(((one.body as? [String: Any])?["services"] as? [[String: Any]])?.first)
        #expect(placement(oneService).values.reduce(0, +) == 25 && placement(oneService).values.allSatisfy { $0 == 5 })

        let two = try orchestrator.json("POST", "/clusters/0/service", #"{"containers": [{"description": "container 0", "replicas": 10}, {"description": "container 1", "replicas": 10}]}"#)
        #expect(two.status == 201, "\(two.text)")
        let twoServices = try #require((two.body as? [String: Any])?["services"] as? [[String: Any]])
        #expect(twoServices.count == 2 && twoServices.allSatisfy { placement($0).values.reduce(0, +) == 10 })

        // 99 on 5 equally loaded nodes: 20+20+20+20+19, never 100.
        let three = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 5, "label": "web"}, "replicas": 99}"#)
        #expect(three.status == 201, "\(three.text)")
        let threeService = try #require(((three.body as? [String: Any])?["services"] as? [[String: Any]])?.first)
        #expect(placement(threeService).values.sorted() == [19, 20, 20, 20, 20])
        #expect(threeService["label"] as? String == "web" && threeService["pending"] as? Int == 0)

        // Capacity is never exceeded: what does not fit is pending, with a reason.
        let huge = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 9, "replicas": 500}}"#)
        #expect(huge.status == 201)
        let hugeService = try #require(((huge.body as? [String: Any])?["services"] as? [[String: Any]])?.first)
        let placedTotal = placement(hugeService).values.reduce(0, +)
        #expect(placedTotal + (hugeService["pending"] as? Int ?? -1) == 500)
        #expect((hugeService["pendingReason"] as? String)?.contains("insufficient capacity") == true)
        for node in try orchestrator.nodes() {
            let nodeStats = try #require(try orchestrator.json("GET", "/stats", port: node.port).body as? [String: Any])
            let load = try #require(nodeStats["load"] as? [String: Int])
            #expect(load["slots"]! <= 100, "node \(node.port) over capacity: \(load)")
        }
        // A full cluster is not searched again while nothing that decides a fit changes; when
        // room frees, the pending replicas are placed.
        let leaderPort = try #require(try orchestrator.nodes().first { $0.state == "leader" }?.port)
        let skipped = try orchestrator.waitUntil("the leader skips a search of the full cluster", seconds: 10) { () -> Bool in
            let metrics = try orchestrator.json("GET", "/metrics", port: leaderPort).text
            return metrics.split(separator: "\n").contains { $0.hasPrefix("node_pending_searches_skipped_total") && !$0.hasSuffix(" 0") }
        }
        #expect(skipped)
        let hugeID = try #require(hugeService["id"] as? Int), threeID = try #require(threeService["id"] as? Int)
        #expect(try orchestrator.json("DELETE", "/clusters/0/services/\(threeID)").status == 204)
        let placedAfterDelete = try orchestrator.waitUntil("pending replicas placed once room frees", seconds: 10) { () -> Bool in
            let service = try orchestrator.json("GET", "/clusters/0/services/\(hugeID)").body as? [String: Any]
            return (service?["pending"] as? Int).map { $0 <= 500 - placedTotal - 99 } ?? false
        }
        #expect(placedAfterDelete, "the pending replicas of service \(hugeID) stayed pending after service \(threeID) was deleted")

        // A follower forwards to its leader; the answer says who served it.
        let followers = try orchestrator.nodes().filter { $0.state == "follower" }
        let follower = try #require(followers.first)
        let forwarded = try orchestrator.json("POST", "/service", #"{"container": {"id": 6, "replicas": 3}}"#, port: follower.port)
        #expect(forwarded.status == 201, "\(forwarded.text)")

        // Seed 000's queries, read linearizably through the leader.
        let latest = try orchestrator.json("GET", "/clusters/0/services/latest")
        #expect((latest.body as? [String: Any])?["containerId"] as? Int == 6)
        let all = try orchestrator.json("GET", "/clusters/0/services")
        #expect(((all.body as? [String: Any])?["metadata"] as? [String: Int])?["count"] == 5)  // six created, one deleted
        #expect(try orchestrator.json("GET", "/clusters/0/services/999").status == 404)
        let state = try orchestrator.json("GET", "/clusters/0/state")
        #expect(((state.body as? [String: Any])?["services"] as? [Any])?.count == 5)

        // Bad input: JSON errors with the right status, never HTML, never a 500.
        let badPayload = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 5, "replicas": "lots"}}"#)
        #expect(badPayload.status == 400 && badPayload.text.contains("container.replicas"))
        let zero = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 5, "replicas": 0}}"#)
        #expect(zero.status == 400)
        let unknownCluster = try orchestrator.json("GET", "/clusters/42/stats")
        #expect(unknownCluster.status == 404 && unknownCluster.text.hasPrefix(#"{"error""#))
        let badLink = try orchestrator.json("POST", "/connections/", #"{"localhost:8999": 0}"#, port: follower.port)
        #expect(badLink.status == 400 && badLink.text.contains("unknown peer"))
        let badValue = try orchestrator.json("POST", "/connections/", #"{"\#(orchestrator.port + 1 == follower.port ? orchestrator.port + 2 : orchestrator.port + 1)": "down"}"#, port: follower.port)
        #expect(badValue.status == 400)
    }

    @Test func aServiceLoadIsReplicatedAndEveryNodeReportsItsShare() throws {
        let orchestrator = try OrchestratorHarness()
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let created = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 5, "cpu": 100}}"#)
        #expect(created.status == 201, "\(created.text)")
        let set = try orchestrator.json("PUT", "/clusters/0/services/1/load", #"{"pattern": "constant", "millicores": 1000}"#)
        #expect(set.status == 200, "\(set.text)")
        let load = try #require(try orchestrator.json("GET", "/clusters/0/services/1/load").body as? [String: Any])
        #expect(load["pattern"] as? String == "constant" && load["offeredMillicores"] as? Int == 1_000)
        #expect((load["perReplica"] as? [String: Any])?["cpuPercent"] as? Double == 200)
        // Every node applies the entry and reports the share of its one replica: 1000 / 5.
        let deadline = Date().addingTimeInterval(10)
        var shares: [Int: Int] = [:]
        while Date() < deadline {
            for node in try orchestrator.nodes() {
                let stats = try orchestrator.json("GET", "/stats", port: node.port).body as? [String: Any]
                shares[node.port] = (stats?["offeredLoad"] as? [String: Any])?["cpuMillicores"] as? Int
            }
            if shares.count == 5, shares.values.allSatisfy({ $0 == 200 }) { break }
            usleep(50_000)
        }
        #expect(shares.values.sorted() == [200, 200, 200, 200, 200], "\(shares)")
        // Each node's simulated container reports the same figures.
        for node in try orchestrator.nodes() {
            let containers = (try orchestrator.json("GET", "/runtime", port: node.port).body as? [String: Any])?["containers"] as? [[String: Any]]
            #expect(containers?.map { $0["cpuUsage"] as? Int } == [200], "\(String(describing: containers))")
        }
        // Bad input names the problem; an unknown service is 404.
        let bad = try orchestrator.json("PUT", "/clusters/0/services/1/load", #"{"pattern": "sine", "mean": 5}"#)
        #expect(bad.status == 400 && bad.text.contains("amplitude"), "\(bad.text)")
        #expect(try orchestrator.json("PUT", "/clusters/0/services/99/load", #"{"pattern": "constant", "millicores": 1}"#).status == 404)
    }

    @Test func theAutoscalerFollowsTheLoadAndEveryNodeAppliesTheSameSteps() throws {
        let orchestrator = try OrchestratorHarness()
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let created = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 2, "cpu": 100}}"#)
        #expect(created.status == 201, "\(created.text)")
        // 1200m of load on 2 replicas: 600% each; a 60% target needs 20.
        #expect(try orchestrator.json("PUT", "/clusters/0/services/1/load", #"{"pattern": "constant", "millicores": 1200}"#).status == 200)
        let set = try orchestrator.json("PUT", "/clusters/0/services/1/autoscaler",
                                        #"{"cpuTarget": 60, "minReplicas": 1, "maxReplicas": 30, "intervalMs": 200}"#)
        #expect(set.status == 200, "\(set.text)")
        let deadline = Date().addingTimeInterval(20)
        var view: [String: Any] = [:]
        while Date() < deadline {
            view = try orchestrator.json("GET", "/clusters/0/services/1/autoscaler").body as? [String: Any] ?? [:]
            if let average = view["avg_cpu_usage"] as? Double, abs(average - 60) <= 12 { break }
            usleep(100_000)
        }
        let average = try #require(view["avg_cpu_usage"] as? Double, "\(view)")
        #expect(abs(average - 60) <= 12, "\(view)")
        #expect((view["constants"] as? [String: Double])?["kp"] == 0.01 && view["cpu_target"] as? Double == 60)
        #expect((view["cpu_usage"] as? [Double])?.count == view["containers"] as? Int)
        // PATCH changes one constant and keeps the others; bad values name the field.
        let patched = try orchestrator.json("PATCH", "/clusters/0/services/1/autoscaler", #"{"kd": 0.5}"#)
        #expect((patched.body as? [String: Any]).flatMap { $0["constants"] as? [String: Double] } == ["kp": 0.01, "ki": 0.03, "kd": 0.5], "\(patched.text)")
        let bad = try orchestrator.json("PATCH", "/clusters/0/services/1/autoscaler", #"{"minReplicas": 0}"#)
        #expect(bad.status == 400 && bad.text.contains("minReplicas"), "\(bad.text)")
        // Every node applied the same steps: where two nodes hold a step of the same time, it is the same step.
        var stepsByNode: [[Double: String]] = []
        for node in try orchestrator.nodes() {
            let services = (try orchestrator.json("GET", "/services?local", port: node.port).body as? [String: Any])?["results"] as? [[String: Any]]
            let decisions = (services?.first?["autoscaler"] as? [String: Any])?["decisions"] as? [[String: Any]] ?? []
            stepsByNode.append(Dictionary(decisions.map { ($0["atMs"] as? Double ?? -1, "\($0["toReplicas"] ?? "") \($0["integral"] ?? "")") }) { a, _ in a })
        }
        #expect(stepsByNode.filter { !$0.isEmpty }.count == 5)
        for a in stepsByNode {
            for b in stepsByNode {
                for (time, step) in a { if let other = b[time] { #expect(other == step) } }
            }
        }
        #expect(try orchestrator.json("DELETE", "/clusters/0/services/1/autoscaler").status == 204)
        #expect(try orchestrator.json("GET", "/clusters/0/services/1/autoscaler").status == 404)
    }

    @Test func aNewLeaderContinuesTheAutoscalerFromTheLastCommittedStep() throws {
        let orchestrator = try OrchestratorHarness()
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let leader = Int((summary["leader"] as! String).split(separator: ":").last!)!
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 2, "cpu": 100}}"#).status == 201)
        #expect(try orchestrator.json("PUT", "/clusters/0/services/1/load", #"{"pattern": "constant", "millicores": 150}"#).status == 200)
        // A target just under the load (75% on 2 replicas, target 70): the error stays small and
        // the integral grows step by step, with a long cool-down so the count holds.
        let set = try orchestrator.json("PUT", "/clusters/0/services/1/autoscaler",
                                        #"{"cpuTarget": 70, "kp": 0, "ki": 0.001, "minReplicas": 1, "maxReplicas": 3, "intervalMs": 200, "cooldownMs": 60000}"#)
        #expect(set.status == 200, "\(set.text)")
        func decisions() throws -> [[String: Any]] {
            (try orchestrator.json("GET", "/clusters/0/services/1/autoscaler").body as? [String: Any])?["decisions"] as? [[String: Any]] ?? []
        }
        let deadline = Date().addingTimeInterval(10)
        while try decisions().count < 3, Date() < deadline { usleep(100_000) }
        let before = try decisions()
        #expect(before.count >= 3)
        let target = try orchestrator.follower(besides: leader)
        #expect(try orchestrator.json("POST", "/clusters/0/leader", #"{"node": \#(target)}"#).status == 200)
        while try decisions().count < before.count + 3, Date() < deadline { usleep(100_000) }
        let after = try decisions()
        // Across the change of leader every step continues the last one's integral:
        // integral(k+1) = integral(k) + error(k+1) × dt(k+1), never a restart from zero.
        for (previous, next) in zip(after, after.dropFirst()) {
            let dt = ((next["atMs"] as? Double ?? 0) - (previous["atMs"] as? Double ?? 0)) / 1_000
            let expected = (previous["integral"] as? Double ?? .nan) + (next["error"] as? Double ?? .nan) * dt
            #expect(abs((next["integral"] as? Double ?? .nan) - expected) < 1e-6, "\(previous) -> \(next)")
        }
        #expect(after.count >= before.count + 2)
    }

    @Test func seed001ContainersAreCreatedStartedAndStoppedThroughTheLog() throws {
        let orchestrator = try OrchestratorHarness()
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let created = try orchestrator.json("POST", "/clusters/0/containers", #"{"image": "golang:alpine", "cmd": ["sh", "-c", "while true; do sleep 1; done"]}"#)
        #expect(created.status == 201, "\(created.text)")
        let container = try #require(created.body as? [String: Any])
        let id = try #require(container["id"] as? Int)
        #expect(container["state"] as? String == "running" && container["node"] is String)
        let stopped = try orchestrator.json("POST", "/clusters/0/containers/\(id)/stop")
        #expect(stopped.status == 200 && (stopped.body as? [String: Any])?["state"] as? String == "stopped", "\(stopped.text)")
        #expect((stopped.body as? [String: Any])?["keepsReservation"] as? Bool == true)
        // Starting twice is not an error.
        for _ in 0..<2 {
            let started = try orchestrator.json("POST", "/clusters/0/containers/\(id)/start")
            #expect(started.status == 200 && (started.body as? [String: Any])?["state"] as? String == "running", "\(started.text)")
        }
        let history = (try orchestrator.json("GET", "/clusters/0/containers/\(id)").body as? [String: Any])?["history"] as? [[String: Any]]
        #expect(history?.map { $0["state"] as? String ?? "" } == ["created", "running", "stopped", "running"])
        let all = try orchestrator.json("GET", "/clusters/0/containers")
        #expect(((all.body as? [String: Any])?["metadata"] as? [String: Int])?["count"] == 1)
        #expect(try orchestrator.json("POST", "/clusters/0/containers/99/start").status == 404)
        #expect(try orchestrator.json("GET", "/clusters/0/containers/abc").status == 404)
        let bad = try orchestrator.json("POST", "/clusters/0/containers", #"{"cmd": "sh"}"#)
        #expect(bad.status == 400 && bad.text.contains("image"), "\(bad.text)")
        #expect(try orchestrator.json("DELETE", "/clusters/0/containers/\(id)").status == 204)
        #expect(try orchestrator.json("GET", "/clusters/0/containers/\(id)").status == 404)
    }

    @Test func oneWayCutFromLeaderToFollowerKeepsLeaderAndTerm() throws {
        let orchestrator = try OrchestratorHarness()
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let leader = try #require(summary["leader"] as? String)
        let term = try #require(summary["term"] as? Int)
        let leaderPort = Int(leader.split(separator: ":").last!)!
        let follower = try orchestrator.follower(besides: leaderPort)
        // Seed 003's command, aimed from the leader to one follower; 127.0.0.1 names it too.
        let cut = try orchestrator.json("POST", "/connections/", #"{"127.0.0.1:\#(follower)": 0}"#, port: leaderPort)
        #expect(cut.status == 200 && (cut.body as? [String: Any])?["localhost:\(follower)"] as? Int == 0)
        // Four election timeouts: long enough for the cut follower to try, and fail, to take over.
        let until = Date().addingTimeInterval(2)
        while Date() < until {
            let now = try orchestrator.json("GET", "/clusters/0").body as? [String: Any]
            #expect(now?["leader"] as? String == leader)
            #expect(now?["term"] as? Int == term)
            usleep(100_000)
        }
        // Writes still commit with the follower cut off.
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 2}}"#).status == 201)
    }

    @Test func isolatedLeaderIsReplacedAndStepsDownThenHealLeavesOneLeader() throws {
        let orchestrator = try OrchestratorHarness()
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let leader = try #require(summary["leader"] as? String)
        let term = try #require(summary["term"] as? Int)
        let oldPort = Int(leader.split(separator: ":").last!)!
        let cut = try orchestrator.json("POST", "/clusters/0/partition", #"{"groups": [[\#(oldPort)]]}"#)
        #expect(cut.status == 200, "\(cut.text)")

        // The majority elects a new leader in a higher term; the old one steps down (check-quorum).
        var newLeader: String?
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let nodes = try orchestrator.nodes()
            let leaders = nodes.filter { $0.state == "leader" }
            if let fresh = leaders.first(where: { $0.port != oldPort && ($0.term ?? 0) > term }),
               nodes.first(where: { $0.port == oldPort })?.state != "leader"
            {
                newLeader = "localhost:\(fresh.port)"
                break
            }
            usleep(50_000)
        }
        #expect(newLeader != nil, "no new leader, or the old one did not step down")
        // Writes go to the new leader meanwhile.
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 2, "replicas": 5}}"#).status == 201)

        #expect(try orchestrator.json("POST", "/clusters/0/heal").status == 200)
        let healed = Date().addingTimeInterval(10)
        var leaderCount = 0
        var agreed = false
        while Date() < healed {
            let nodes = try orchestrator.nodes()
            leaderCount = nodes.filter { $0.state == "leader" }.count
            agreed = Set(nodes.compactMap(\.term)).count == 1 && nodes.allSatisfy { $0.state != nil }
            if leaderCount == 1 && agreed { break }
            usleep(50_000)
        }
        #expect(leaderCount == 1 && agreed)
        // The old leader catches up with the write it missed (within a few heartbeats: agreeing
        // on the term does not mean it has applied everything yet).
        var services = 0
        let caughtUp = Date().addingTimeInterval(5)
        while Date() < caughtUp {
            services = (try orchestrator.json("GET", "/stats", port: oldPort).body as? [String: Any])?["services"] as? Int ?? 0
            if services == 1 { break }
            usleep(20_000)
        }
        #expect(services == 1)
    }

    @Test func twoClustersSideBySideDoNotInterfere() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let created = try orchestrator.json("POST", "/clusters", #"{"nodes": 3, "id": "experiment", "heartbeatMs": 30, "electionTimeoutMs": 300}"#)
        #expect(created.status == 201, "\(created.text)")
        try orchestrator.waitForLeader(cluster: "experiment")
        let ports0 = try orchestrator.nodes().map(\.port)
        let ports1 = try orchestrator.nodes(cluster: "experiment").map(\.port)
        #expect(Set(ports0).isDisjoint(with: ports1) && ports1 == Array(ports0.max()! + 1...ports0.max()! + 3))

        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 6}}"#).status == 201)
        #expect(try orchestrator.json("POST", "/clusters/experiment/service", #"{"container": {"id": 2, "replicas": 9}}"#).status == 201)
        #expect(try orchestrator.json("POST", "/clusters/experiment/service", #"{"container": {"id": 3, "replicas": 3}}"#).status == 201)
        let services0 = try orchestrator.json("GET", "/clusters/0/services").body as? [String: Any]
        let services1 = try orchestrator.json("GET", "/clusters/experiment/services").body as? [String: Any]
        #expect((services0?["metadata"] as? [String: Int])?["count"] == 1)
        #expect((services1?["metadata"] as? [String: Int])?["count"] == 2)
        // Raft messages of one cluster are refused by the other.
        let foreign = try orchestrator.client.send("POST", host: "127.0.0.1", port: ports1[0], path: "/raft/messages",
                                                  headers: .init([("X-Cluster-ID", "0")]), body: [0, 0, 0, 0])
        #expect(foreign.status.rawValue == 403)
        // Nor may another cluster's node open a stream of them (the way nodes send).
        let foreignStream = try orchestrator.client.send("POST", host: "127.0.0.1", port: ports1[0], path: "/raft/stream",
                                                        headers: .init([("X-Cluster-ID", "0"), ("Connection", "Upgrade"), ("Upgrade", "raft-frames")]))
        #expect(foreignStream.status.rawValue == 403)

        let list = try orchestrator.json("GET", "/clusters").body as? [String: Any]
        #expect((list?["metadata"] as? [String: Int])?["count"] == 2)
        let experimentPIDs = orchestrator.nodePIDs
        #expect(try orchestrator.json("DELETE", "/clusters/experiment").status == 204)
        #expect(try orchestrator.json("GET", "/clusters/experiment").status == 404)
        _ = experimentPIDs
        let remaining = try orchestrator.json("GET", "/clusters").body as? [String: Any]
        #expect((remaining?["metadata"] as? [String: Int])?["count"] == 1)
        // The same id again starts fresh, and writes reach the new cluster, never another one
        // (the orchestrator's remembered leader of the old cluster must not be reused).
        #expect(try orchestrator.json("POST", "/clusters", #"{"nodes": 3, "id": "experiment"}"#).status == 201)
        try orchestrator.waitForLeader(cluster: "experiment")
        #expect(try orchestrator.json("POST", "/clusters/experiment/service", #"{"container": {"id": 4, "replicas": 1}}"#).status == 201)
        let again = try orchestrator.json("GET", "/clusters/experiment/services").body as? [String: Any]
        #expect((again?["metadata"] as? [String: Int])?["count"] == 1)
        let zero = try orchestrator.json("GET", "/clusters/0/services").body as? [String: Any]
        #expect((zero?["metadata"] as? [String: Int])?["count"] == 1)
    }

    @Test func leaderTransferMovesLeadershipWellUnderAnElectionTimeout() throws {
        let orchestrator = try OrchestratorHarness(nodes: 5)
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let leader = Int((summary["leader"] as! String).split(separator: ":").last!)!
        let term = try #require(summary["term"] as? Int)
        let target = try orchestrator.follower(besides: leader)
        let moved = try orchestrator.json("POST", "/clusters/0/leader", #"{"node": \#(target)}"#)
        #expect(moved.status == 200, "\(moved.text)")
        let answer = try #require(moved.body as? [String: Any])
        #expect(answer["to"] as? String == "localhost:\(target)")
        #expect((answer["term"] as? Int ?? 0) > term)
        #expect((answer["milliseconds"] as? Double ?? 1e9) < 250)  // T is 500 ms
        #expect(try orchestrator.waitForLeader()["leader"] as? String == "localhost:\(target)")
        #expect(try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 2}}"#).status == 201)
        #expect(try orchestrator.json("POST", "/clusters/0/leader", #"{"node": 9}"#).status == 400)
    }

    @Test func nodesOfAKilledOrchestratorExitOnTheirOwn() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        #expect(orchestrator.nodePIDs.count == 3)
        kill(orchestrator.process.processIdentifier, SIGKILL)
        let deadline = Date().addingTimeInterval(1.5)
        while Date() < deadline, !orchestrator.livingNodes().isEmpty { usleep(10_000) }
        #expect(orchestrator.livingNodes().isEmpty, "nodes still running 1.5 s after the orchestrator was killed")
    }

    @Test func startingOnATakenPortFailsNamingThePort() throws {
        let first = try OrchestratorHarness(nodes: 1)
        defer { first.stop() }
        try first.waitForLeader()
        let second = Process()
        second.executableURL = URL(fileURLWithPath: OrchestratorHarness.executable)
        second.arguments = ["--port", String(first.port), "--nodes", "1", "--data-dir", first.dataDirectory + "-second"]
        let output = Pipe()
        second.standardOutput = output
        second.standardError = output
        try second.run()
        second.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(second.terminationStatus != 0)
        #expect(text.contains("port \(first.port) is taken"), "\(text)")
    }
}
