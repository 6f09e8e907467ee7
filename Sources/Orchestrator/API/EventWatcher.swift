import ClusterNode
import Foundation
import Transport

/// Turns what the nodes report into events, while someone is subscribed (nothing is polled
/// otherwise): every 500 ms each node's role, term and leader (`GET /`), and every 2 s each
/// cluster's commit progress (the leader's `/stats`) and each node's links. (At 200 ms and
/// 1 s, an open stream over 20 clusters of 5 nodes cost 7 to 15% of a core.)
final class EventWatcher: @unchecked Sendable {
    let hub: EventHub
    let supervisor: ClusterSupervisor
    let http: HTTPClient
    private var roles: [String: String] = [:]  // "cluster/port" → "role term leader"
    private var leaders: [String: String] = [:]  // cluster → leader address
    private var commits: [String: (index: UInt64, time: Date, port: Int, latency: HistogramSnapshot?)] = [:]
    private var links: [Int: String] = [:]  // port → its link table's JSON

    init(hub: EventHub, supervisor: ClusterSupervisor) {
        self.hub = hub
        self.supervisor = supervisor
        var configuration = HTTPClient.Configuration()
        configuration.requestTimeoutSeconds = 0.5
        http = HTTPClient(configuration: configuration)
    }

    func start() {
        startNamedThread("event-watcher") { [self] in
            var pass = 0
            while true {
                usleep(500_000)
                guard hub.hasSubscribers else {
                    // Nobody listens: forget, so that a new subscriber hears the state afresh.
                    roles.removeAll()
                    leaders.removeAll()
                    commits.removeAll()
                    links.removeAll()
                    continue
                }
                pass += 1
                for cluster in supervisor.allClusters {
                    watchRoles(cluster)
                    if pass % 4 == 0 { watchCommitsAndLinks(cluster) }
                }
            }
        }
    }

    private func watchRoles(_ cluster: ManagedCluster) {
        var leader: String?
        for node in cluster.nodes {
            let definition = try? cluster.client.definition(of: node.port, timeoutSeconds: 0.15)
            let role = definition?.state ?? (node.status == .running ? "unreachable" : node.status.rawValue)
            let view = "\(role) \(definition?.term ?? 0) \(definition?.leader ?? "-")"
            let key = "\(cluster.id)/\(node.port)"
            if roles[key] != view {
                roles[key] = view
                var fields: [String: Any] = ["node": node.port, "role": role, "process": node.status.rawValue]
                if let definition {
                    fields["term"] = definition.term
                    if let known = definition.leader { fields["leader"] = known }
                    if let since = definition.roleSince { fields["since"] = since }
                }
                hub.publish("role", cluster: cluster.id, fields)
            }
            if role == "leader" { leader = definition?.address }
        }
        if let leader, leaders[cluster.id] != leader {
            leaders[cluster.id] = leader
            hub.publish("leader", cluster: cluster.id, ["leader": leader])
        }
    }

    private func watchCommitsAndLinks(_ cluster: ManagedCluster) {
        if let leader = leaders[cluster.id], let port = NodeAddress(parsing: leader)?.port,
           let response = try? http.send("GET", host: "127.0.0.1", port: port, path: "/stats", timeoutSeconds: 0.3),
           let stats = try? JSONBody.decode(NodeStats.self, from: response.body)
        {
            let now = Date()
            if let last = commits[cluster.id], stats.commitIndex != last.index {
                let rate = Double(stats.commitIndex &- last.index) / max(0.001, now.timeIntervalSince(last.time))
                var fields: [String: Any] = ["commitIndex": stats.commitIndex, "term": stats.term, "perSecond": (rate * 10).rounded() / 10]
                // Client commit latency over the interval, from the leader's histogram (not
                // across a change of leader: the new one's counts began elsewhere).
                if let latency = stats.commitLatency, last.port == port, let earlier = last.latency {
                    let interval = latency.since(earlier)
                    if interval.count > 0, let p50 = interval.quantile(0.5), let p99 = interval.quantile(0.99) {
                        fields["latencyMs"] = ["p50": (p50 * 10_000).rounded() / 10, "p99": (p99 * 10_000).rounded() / 10, "requests": interval.count]
                    }
                }
                hub.publish("commit", cluster: cluster.id, fields)
            }
            commits[cluster.id] = (stats.commitIndex, now, port, stats.commitLatency)
        }
        for node in cluster.nodes where node.status == .running {
            guard let response = try? http.send("GET", host: "127.0.0.1", port: node.port, path: "/connections", timeoutSeconds: 0.3),
                  response.status == .ok else { continue }
            let text = response.bodyText
            if links[node.port] != text {
                let isFirst = links[node.port] == nil
                links[node.port] = text
                if !isFirst, let table = try? JSONSerialization.jsonObject(with: Data(response.body)) {
                    hub.publish("links", cluster: cluster.id, ["node": node.port, "links": table])
                }
            }
        }
    }
}
