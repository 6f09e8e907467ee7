import ClusterNode
import Foundation
import Transport

/// What the orchestrator counts for `GET /metrics` beyond its request histograms: API
/// requests per cluster, and leader changes per cluster: the terms in which some node led,
/// gathered at each scrape from every node's recent leader history (`GET /`). A leadership
/// is known to the nodes that followed it, so one whose leader was killed before any scrape
/// still counts; one that no node answering a scrape heard of is missed (a leader that
/// died before its first heartbeat arrived, or more than 16 terms behind every node's
/// latest).
final class ClusterMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: [String: Int]] = [:]  // cluster → status class → count
    /// One cluster's leader changes: the led terms remembered (those above `floor`, at most
    /// about `trackedTerms`) and how many were counted in all.
    private struct LedTerms {
        var terms: Set<UInt64> = []
        var floor: UInt64 = 0
        var count = 0
    }
    private var ledTerms: [String: LedTerms] = [:]
    /// Led terms remembered per cluster: a term this far below the highest seen is no
    /// longer remembered, and is not counted (again) if a node reports it late.
    static let trackedTerms: UInt64 = 1_024

    func countRequest(cluster: String, status: HTTPStatus) {
        lock.withLock { requests[cluster, default: [:]]["\(status.rawValue / 100)xx", default: 0] += 1 }
    }

    /// Counts the terms in `led` (terms in which a node reports a leader) that the cluster's
    /// count does not hold yet.
    func observeLedTerms(cluster: String, _ led: some Sequence<UInt64>) {
        lock.withLock {
            var known = ledTerms[cluster] ?? LedTerms()
            for term in led where term > known.floor && known.terms.insert(term).inserted { known.count += 1 }
            if known.terms.count > Int(Self.trackedTerms), let highest = known.terms.max() {
                known.floor = highest - Self.trackedTerms
                known.terms = known.terms.filter { $0 > known.floor }
            }
            ledTerms[cluster] = known
        }
    }

    /// Forgets a deleted cluster's series.
    func forget(cluster: String) {
        lock.withLock {
            requests[cluster] = nil
            ledTerms[cluster] = nil
        }
    }

    func values(cluster: String) -> (requests: [String: Int], leaderChanges: Int) {
        lock.withLock { (requests[cluster] ?? [:], ledTerms[cluster]?.count ?? 0) }
    }
}

extension OrchestratorAPI {
    /// Node states in `orchestrator_cluster_nodes`: the roles, then why a node plays none.
    static let nodeStates = ["leader", "follower", "candidate", "paused", "stopped", "unreachable"]

    /// `GET /metrics`: every cluster in one scrape. Nodes are asked for their role
    /// concurrently, a quarter second at most each.
    func metricsText() -> MetricsText {
        var text = MetricsText()
        let clusters = supervisor.allClusters
        text.gauge("orchestrator_clusters", "Clusters managed.", Double(clusters.count))
        let views = parallelMap(clusters) { cluster in (cluster, cluster.client.definitions(timeoutSeconds: 0.25)) }
        for (cluster, definitions) in views {
            let labels = ["cluster": cluster.id]
            var states = Dictionary(uniqueKeysWithValues: Self.nodeStates.map { ($0, 0) })
            var term: UInt64 = 0
            for node in cluster.nodes {
                let answered = definitions.first { $0.port == node.port }?.definition
                text.gauge("orchestrator_node_up", "1 when the node process runs.", node.status == .running ? 1 : 0,
                           labels: ["cluster": cluster.id, "node": "localhost:\(node.port)", "process": node.status.rawValue])
                if let answered {
                    states[answered.state, default: 0] += 1
                    term = max(term, answered.term)
                    if let recent = answered.recentLeaders { clusterMetrics.observeLedTerms(cluster: cluster.id, recent.keys.compactMap { UInt64($0) }) }
                } else {
                    switch node.status {
                    case .paused: states["paused", default: 0] += 1
                    case .running: states["unreachable", default: 0] += 1
                    case .stopped, .killed, .exited: states["stopped", default: 0] += 1
                    }
                }
            }
            for (state, count) in states.sorted(by: { $0.key < $1.key }) {
                text.gauge("orchestrator_cluster_nodes", "Nodes of the cluster by what they are now: a Raft role, or paused, stopped or unreachable.",
                           Double(count), labels: labels.merging(["state": state]) { $1 })
            }
            text.gauge("orchestrator_cluster_term", "Highest Raft term a node of the cluster reports.", Double(term), labels: labels)
            let counted = clusterMetrics.values(cluster: cluster.id)
            text.counter("orchestrator_cluster_leader_changes_total", "Leaderships in the cluster: terms in which a node led, from the nodes' recent leader histories.",
                         Double(counted.leaderChanges), labels: labels)
            for code in ["2xx", "3xx", "4xx", "5xx"] {
                text.counter("orchestrator_cluster_api_requests_total", "API requests about the cluster (paths under /clusters/:id), by status class.",
                             Double(counted.requests[code] ?? 0), labels: labels.merging(["code": code]) { $1 })
            }
        }
        requests.write(into: &text)
        return text
    }

    /// Counts every answered request by route, and per cluster where the path names one.
    func observe(_ request: HTTPRequest, route: String?, status: HTTPStatus, seconds: Double) {
        requests.observe(method: request.method, route: route, status: status, seconds: seconds)
        if let id = request.pathParameters["id"], route?.hasPrefix("/clusters/:id") == true, supervisor.cluster(id) != nil {
            clusterMetrics.countRequest(cluster: id, status: status)
        }
    }
}
