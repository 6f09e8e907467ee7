import Foundation
import Testing
import Transport
@testable import Orchestrator

/// `GET /metrics` of the orchestrator and of a node: histograms and per-cluster series hold
/// what happened, and promtool accepts both texts.
@Suite("Metrics", .serialized)
struct MetricsTests {
    /// The value of one sample line (`name{labels} value`) whose labels include all of `labels`.
    static func value(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            let head = line.prefix { $0 != " " }
            if labels.allSatisfy({ head.contains("\($0.key)=\"\($0.value)\"") }), let number = line.split(separator: " ").last.flatMap({ Double($0) }) {
                return number
            }
        }
        return nil
    }

    static func scrape(_ orchestrator: OrchestratorHarness, port: Int? = nil) throws -> String {
        let response = try orchestrator.client.send("GET", host: "127.0.0.1", port: port ?? orchestrator.port, path: "/metrics")
        #expect(response.status == .ok)
        #expect(response.headers["content-type"] == MetricsText.contentType)
        return response.bodyText
    }

    static func leaderPort(_ orchestrator: OrchestratorHarness) throws -> Int {
        let summary = try orchestrator.waitForLeader()
        return try #require((summary["leader"] as? String)?.split(separator: ":").last.flatMap { Int($0) })
    }

    @Test func histogramsAndPerClusterSeriesFollowWhatHappened() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        let first = try Self.leaderPort(orchestrator)
        // No scrape before the kill: the first leadership is counted from the survivors'
        // recent leader histories, not from the dead leader's own count.
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(first)/kill").status == 200)
        let deadline = Date().addingTimeInterval(10)
        var leader = first
        while leader == first, Date() < deadline {
            leader = (try? Self.leaderPort(orchestrator)) ?? first
            usleep(20_000)
        }
        #expect(leader != first, "no new leader after the kill")
        let recent = try #require((try orchestrator.json("GET", "/", port: leader).body as? [String: Any])?["recentLeaders"] as? [String: String])
        #expect(Set(recent.values).isSuperset(of: ["localhost:\(first)", "localhost:\(leader)"]), "the new leader's recent leaders: \(recent)")
        for index in 0..<6 {
            let created = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"name": "m\#(index)", "replicas": 1}}"#)
            #expect(created.status == 201, "\(created.text)")
        }

        let node = try Self.scrape(orchestrator, port: leader)
        let labels = ["node": "localhost:\(leader)"]
        #expect(try #require(Self.value(node, "raft_commit_duration_seconds_count", labels)) >= 6)
        #expect(try #require(Self.value(node, "raft_commit_duration_seconds_bucket", labels.merging(["le": "+Inf"]) { $1 })) >= 6)
        #expect(try #require(Self.value(node, "raft_fsync_duration_seconds_count", labels)) >= 6)
        // Rounds go on while the scrape is read (heartbeats), so the two families are read at
        // different moments: each counted every round the six commits needed, at least.
        #expect(try #require(Self.value(node, "raft_round_duration_seconds_count", labels)) >= 6)
        #expect(try #require(Self.value(node, "raft_apply_duration_seconds_count", labels)) >= 6)
        #expect(try #require(Self.value(node, "raft_election_duration_seconds_count", labels)) >= 1, "the new leader campaigned after losing its leader")
        #expect(try #require(Self.value(node, "http_request_duration_seconds_count", ["route": "/service", "method": "POST", "code": "2xx"])) >= 6)
        // Peers' messages came as frames on a stream each (one request to switch, then none),
        // not as a request per batch.
        #expect(try #require(Self.value(node, "node_messages_received_total", labels)) >= 6)
        #expect(Self.value(node, "http_request_duration_seconds_count", ["route": "/raft/messages"]) == nil)
        let streams = try #require(Self.value(node, "http_request_duration_seconds_count", ["route": "/raft/stream", "code": "1xx"]))
        #expect(streams >= 1 && streams <= 3, "\(streams) streams opened to the leader by its one live peer")
        // One client at a time on an idle node: the event loop that read a request began its
        // round itself (stepped, wrote, sent), leaving the round thread only the fdatasync.
        #expect(try #require(Self.value(node, "node_rounds_begun_on_event_loops_total", labels)) >= 1)

        let whole = try Self.scrape(orchestrator)
        let cluster = ["cluster": "0"]
        #expect(try #require(Self.value(whole, "orchestrator_cluster_leader_changes_total", cluster)) >= 2)
        #expect(try #require(Self.value(whole, "orchestrator_cluster_term", cluster)) >= 2)
        #expect(Self.value(whole, "orchestrator_cluster_nodes", ["cluster": "0", "state": "leader"]) == 1)
        #expect(Self.value(whole, "orchestrator_cluster_nodes", ["cluster": "0", "state": "stopped"]) == 1)
        #expect(Self.value(whole, "orchestrator_node_up", ["node": "localhost:\(first)"]) == 0)
        #expect(try #require(Self.value(whole, "orchestrator_cluster_api_requests_total", ["cluster": "0", "code": "2xx"])) >= 7)
        #expect(try #require(Self.value(whole, "http_request_duration_seconds_count", ["route": "/clusters/:id/service", "method": "POST", "code": "2xx"])) >= 6)
        #expect(Self.value(whole, "http_request_duration_seconds_count", ["route": "unmatched"]) == nil)
        _ = try orchestrator.json("GET", "/no/such/route")
        #expect(Self.value(try Self.scrape(orchestrator), "http_request_duration_seconds_count", ["route": "unmatched", "code": "4xx"]) == 1)
    }

    /// Leader changes are the led terms the nodes report, each counted once however many
    /// nodes report it and however often; a cluster's count is bounded in memory, and a term
    /// that fell below what it remembers is not counted again when a node reports it late.
    @Test func leaderChangesCountEachLedTermOnce() {
        let metrics = ClusterMetrics()
        metrics.observeLedTerms(cluster: "0", [1])
        metrics.observeLedTerms(cluster: "0", [1, 2])
        metrics.observeLedTerms(cluster: "0", [2, 1])
        metrics.observeLedTerms(cluster: "1", [1])
        #expect(metrics.values(cluster: "0").leaderChanges == 2)
        #expect(metrics.values(cluster: "1").leaderChanges == 1)
        // A node that missed terms 3 and 4 reports 5; another later reports 3 and 4.
        metrics.observeLedTerms(cluster: "0", [5])
        metrics.observeLedTerms(cluster: "0", [3, 4, 5])
        #expect(metrics.values(cluster: "0").leaderChanges == 5)

        let many = ClusterMetrics.trackedTerms + 10
        metrics.observeLedTerms(cluster: "0", 1...many)
        #expect(metrics.values(cluster: "0").leaderChanges == Int(many))
        metrics.observeLedTerms(cluster: "0", [1, 2, 3, many])
        #expect(metrics.values(cluster: "0").leaderChanges == Int(many), "terms below the remembered window are not counted again")
        metrics.observeLedTerms(cluster: "0", [many + 1])
        #expect(metrics.values(cluster: "0").leaderChanges == Int(many) + 1)

        metrics.forget(cluster: "0")
        #expect(metrics.values(cluster: "0").leaderChanges == 0)
        metrics.observeLedTerms(cluster: "0", [1])
        #expect(metrics.values(cluster: "0").leaderChanges == 1, "a cluster created again under the same id counts afresh")
    }

    @Test(.enabled(if: TestTools.find("promtool") != nil, "needs promtool (Debian's prometheus package; .ci/run installs it); skipped: not installed here"))
    func promtoolAcceptsTheOrchestratorsAndTheNodesMetrics() throws {
        let promtool = try #require(TestTools.find("promtool"))
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        let leader = try Self.leaderPort(orchestrator)
        _ = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"name": "p", "replicas": 2}}"#)
        for (what, port) in [("orchestrator", nil), ("leader node", leader)] as [(String, Int?)] {
            let text = try Self.scrape(orchestrator, port: port)
            let check = try TestTools.run(promtool, ["check", "metrics"], input: text)
            print("promtool check metrics (\(what), \(text.split(separator: "\n").count) lines): exit \(check.status)\(check.output.isEmpty ? ", no complaints" : ": " + check.output)")
            #expect(check.status == 0, "\(what): \(check.output)")
        }
    }
}
