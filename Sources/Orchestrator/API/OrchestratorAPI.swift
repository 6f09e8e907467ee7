import ClusterNode
import Foundation
import Transport

/// The orchestrator's REST API (API.md, "Orchestrator"). It talks to nodes over HTTP like
/// any client; it never reaches into Raft.
struct OrchestratorAPI: Sendable {
    let supervisor: ClusterSupervisor
    let defaults: ClusterSettings
    let searchFrom: Int
    /// The desired-state file (`--desired-state`) every new cluster gets, if one was given.
    var desiredState: [UInt8]? = nil
    /// Experiments started through the API.
    let experiments = ExperimentRegistry()
    /// Live events for `GET /events` and `GET /clusters/:id/events`.
    let events = EventHub()
    /// `http_request_duration_seconds` of this API.
    let requests = RequestMetrics()
    /// Per-cluster counts for `GET /metrics`.
    let clusterMetrics = ClusterMetrics()

    /// One node as a cluster summary shows it.
    struct NodeSummary: Codable {
        var address: String
        var port: Int
        var pid: Int32?
        var process: String
        var accessible: Bool
        var state: String?
        var term: UInt64?
        var leader: String?
        var error: String?
    }

    struct ClusterSummary: Codable {
        var id: String
        var nodes: [NodeSummary]
        var leader: String?
        var term: UInt64?
        var settings: ClusterSettings
        var dataDirectory: String
    }

    /// Requests the cluster's leader answers: the node serves each at the path after
    /// "/clusters/:id" (seed 001's containers under "/cluster/containers", since a node's
    /// own "/containers" is seed 004's view of what runs on it).
    static let forwarded: [(methods: [String], pattern: String, nodePrefix: String)] = [
        (["POST"], "/service", ""), (["GET"], "/state", ""), (["POST"], "/leader", ""),
        (["GET", "POST"], "/services", ""), (["GET"], "/services/running", ""), (["GET"], "/services/latest", ""), (["GET"], "/services/latest/:image", ""),
        (["PUT", "GET"], "/desired-state", ""), (["DELETE"], "/services/:sid/replicas/:member", ""),
        (["GET"], "/services/name/:name", ""), (["GET", "PATCH", "DELETE"], "/services/:sid", ""),
        (["PUT", "GET"], "/services/:sid/load", ""), (["PUT", "PATCH", "DELETE", "GET"], "/services/:sid/autoscaler", ""),
        (["POST", "GET"], "/containers", "/cluster"), (["GET", "DELETE"], "/containers/:cid", "/cluster"),
        (["POST"], "/containers/:cid/start", "/cluster"), (["POST"], "/containers/:cid/stop", "/cluster"),
    ]

    func router() -> Router {
        var router = Router()
        router.add("GET", "/") { request in
            JSONBody.response(["service": "orchestrator", "clusters": "/clusters", "docs": "README.md"], for: request)
        }
        router.add("GET", "/clusters") { request in
            JSONBody.response(ListEnvelope(supervisor.allClusters.map(summary)), for: request)
        }
        router.add("POST", "/clusters") { request in try createCluster(request) }
        router.add("GET", "/clusters/:id") { request in JSONBody.response(summary(try cluster(request)), for: request) }
        router.add("PUT", "/clusters/:id") { request in try resize(try cluster(request), request) }
        router.add("DELETE", "/clusters/:id") { request in
            let cluster = try cluster(request)
            supervisor.log.write("cluster \(cluster.id) deleted (asked by \(request.remoteAddress ?? "a client")): stopping nodes \(cluster.ports), removing \(cluster.dataDirectory)")
            supervisor.removeCluster(cluster.id, deleteData: true)
            clusterMetrics.forget(cluster: cluster.id)
            events.publish("cluster", cluster: cluster.id, ["change": "deleted"])
            return HTTPResponse(status: .noContent)
        }
        router.add("GET", "/clusters/:id/stats") { request in JSONBody.response(stats(try cluster(request)), for: request) }
        for route in Self.forwarded {
            for method in route.methods {
                router.add(method, "/clusters/:id" + route.pattern) { request in
                    let prefix = "/clusters/" + (try request.parameter("id"))
                    return try toLeader(try cluster(request), request, path: route.nodePrefix + String(request.path.dropFirst(prefix.count)))
                }
            }
        }
        addExperimentRoutes(&router)
        router.add("GET", "/events") { request in try events.response(for: request, cluster: nil) }
        router.add("GET", "/clusters/:id/events") { request in try events.response(for: request, cluster: try cluster(request).id) }
        router.add("GET", "/dashboard") { _ in
            HTTPResponse(headers: HTTPHeaders([("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-cache")]), body: Array(DashboardPage.html.utf8))
        }
        router.add("POST", "/clusters/:id/links") { request in try setLink(try cluster(request), request) }
        router.add("POST", "/clusters/:id/partition") { request in try partition(try cluster(request), request) }
        router.add("POST", "/clusters/:id/heal") { request in try heal(try cluster(request), request) }
        router.add("POST", "/clusters/:id/nodes/:node/:action") { request in try nodeFault(try cluster(request), request) }
        router.add("GET", "/metrics") { _ in metricsText().response }
        router.observer = { request, route, status, seconds in observe(request, route: route, status: status, seconds: seconds) }
        router.serveOpenAPI(OrchestratorAPIDocument.document(forwarded: Self.forwarded))
        return router
    }

    private func cluster(_ request: HTTPRequest) throws(HTTPError) -> ManagedCluster {
        let id = try request.parameter("id")
        guard let cluster = supervisor.cluster(id) else { throw HTTPError(.notFound, "unknown cluster \(id)") }
        return cluster
    }

    // MARK: - Clusters

    private func createCluster(_ request: HTTPRequest) throws -> HTTPResponse {
        struct Create: Decodable {
            var nodes: Int?
            var id: String?
            var heartbeatMs: Int?
            var electionTimeoutMs: Int?
            var capacity: Int?
            var unhealthyAfterMs: Int?
            var electionJitterMs: Int?
            var snapshotEveryEntries: Int?
            /// The cluster's desired-state file inline (else the orchestrator's `--desired-state`).
            var desiredState: JSONValue?
            var preVote: Bool?
            var checkQuorum: Bool?
            var tickUs: Int?
            var fixedElectionTimeout: Bool?
            var fastFirstElection: Bool?
        }
        let body = request.body.isEmpty ? Create() : try JSONBody.decode(Create.self, from: request)
        var settings = ClusterSettings(nodes: body.nodes ?? defaults.nodes, heartbeatMs: body.heartbeatMs ?? defaults.heartbeatMs,
                                       electionTimeoutMs: body.electionTimeoutMs ?? defaults.electionTimeoutMs, capacity: body.capacity ?? defaults.capacity,
                                       unhealthyAfterMs: body.unhealthyAfterMs ?? defaults.unhealthyAfterMs)
        settings.electionJitterMs = body.electionJitterMs
        settings.snapshotEveryEntries = body.snapshotEveryEntries ?? defaults.snapshotEveryEntries
        settings.preVote = body.preVote
        settings.checkQuorum = body.checkQuorum
        settings.tickUs = body.tickUs
        settings.fixedElectionTimeout = body.fixedElectionTimeout
        settings.fastFirstElection = body.fastFirstElection
        try settings.validate()
        if let id = body.id {
            guard !id.isEmpty, id.count <= 64, id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw HTTPError(.badRequest, "id must be 1 to 64 letters, digits, - or _, got \(JSONText.quote(id))")
            }
        }
        var desired = desiredState
        if let inline = body.desiredState {
            desired = Array(try JSONEncoder().encode(inline))
            do {
                try DesiredState.check(desired!)
            } catch {
                throw HTTPError(.badRequest, "desiredState: \(error.httpError.message)")
            }
        }
        let highest = supervisor.highestUsedPort ?? searchFrom - 1
        let cluster = try supervisor.createCluster(id: body.id, settings: settings, basePort: nil, searchFrom: max(searchFrom, highest + 1))
        if let desired { try applyDesiredState(desired, to: cluster) }
        events.publish("cluster", cluster: cluster.id, ["change": "created", "nodes": cluster.ports])
        return JSONBody.response(summary(cluster), status: .created, for: request)
    }

    /// Commits a desired-state file in a new cluster once it has a leader (its reconcile
    /// loop then creates the vital services); throws when the leader refuses it.
    func applyDesiredState(_ bytes: [UInt8], to cluster: ManagedCluster) throws {
        let response = try cluster.client.sendToLeader(method: "PUT", path: "/desired-state", body: bytes, patienceSeconds: 15, clusterID: cluster.id)
        guard response.status == .ok else {
            throw SupervisorError.leaderDidNotAnswer("cluster \(cluster.id) refused its desired state (\(response.status.rawValue)): \(response.bodyText)")
        }
        supervisor.log.write("cluster \(cluster.id): desired state committed (\(response.bodyText.prefix(300)))")
    }

    func summary(_ cluster: ManagedCluster) -> ClusterSummary {
        let nodes = parallelMap(cluster.nodes) { node -> NodeSummary in
            var summary = NodeSummary(address: "localhost:\(node.port)", port: node.port, pid: node.pid, process: node.status.rawValue, accessible: false)
            guard node.status == .running else {
                summary.error = "node process is \(node.status.rawValue)"
                return summary
            }
            do {
                let definition = try cluster.client.definition(of: node.port, timeoutSeconds: 0.5)
                summary.accessible = true
                summary.state = definition.state
                summary.term = definition.term
                summary.leader = definition.leader
            } catch {
                summary.error = "\(error)"
            }
            return summary
        }
        let leader = nodes.filter { $0.state.flatMap(NodeRole.init(rawValue:)) == .leader }.max { ($0.term ?? 0) < ($1.term ?? 0) }
        return ClusterSummary(id: cluster.id, nodes: nodes, leader: leader?.address, term: leader?.term,
                              settings: cluster.settings, dataDirectory: cluster.dataDirectory)
    }

    // MARK: - Stats

    struct StaleLeader: Codable {
        var address: String
        var term: UInt64
    }

    struct ClusterStats: Codable {
        var cluster: String
        var leader: String?
        var term: UInt64?
        /// Nodes still claiming leadership in an older term (they have not heard the new one yet).
        var staleLeaders: [StaleLeader]
        var nodes: [NodeReport]
        /// Row: from, column: to; 1 up, 0 cut, or the link's faults.
        var links: [String: [String: LinkState]]
        var services: [ServiceView]
        /// Why `services` is empty although there may be services: no leader, or the
        /// leader could not read them (a minority leader cannot confirm it still leads).
        var servicesError: String?
    }

    /// A node's stats, or why they could not be had.
    enum NodeReport: Codable {
        case accessible(NodeStats)
        case inaccessible(address: String, process: String, error: String)

        func encode(to encoder: any Encoder) throws {
            switch self {
            case .accessible(let stats):
                try stats.encode(to: encoder)
                var container = encoder.container(keyedBy: ExtraKeys.self)
                try container.encode(true, forKey: .accessible)
            case .inaccessible(let address, let process, let error):
                var container = encoder.container(keyedBy: ExtraKeys.self)
                try container.encode(address, forKey: .address)
                try container.encode(false, forKey: .accessible)
                try container.encode(process, forKey: .process)
                try container.encode(error, forKey: .error)
            }
        }

        init(from decoder: any Decoder) throws { self = .accessible(try NodeStats(from: decoder)) }

        enum ExtraKeys: String, CodingKey { case address, accessible, process, error }
    }

    func stats(_ cluster: ManagedCluster) -> ClusterStats {
        let reports = parallelMap(cluster.nodes) { node -> NodeReport in
            let address = "localhost:\(node.port)"
            guard node.status == .running else {
                return .inaccessible(address: address, process: node.status.rawValue, error: "node process is \(node.status.rawValue)")
            }
            do {
                let response = try supervisor.client.get(host: "127.0.0.1", port: node.port, path: "/stats", timeoutSeconds: 0.5)
                guard response.status == .ok else { return .inaccessible(address: address, process: "running", error: "answered \(response.status.rawValue)") }
                return .accessible(try JSONBody.decode(NodeStats.self, from: response.body))
            } catch {
                return .inaccessible(address: address, process: node.status.rawValue, error: "\(error)")
            }
        }
        let accessible = reports.compactMap { if case .accessible(let stats) = $0 { stats } else { nil } }
        let claimants = accessible.filter { NodeRole(rawValue: $0.state) == .leader }
        let leader = claimants.max { $0.term < $1.term }
        let stale = claimants.filter { $0.term < (leader?.term ?? 0) }.map { StaleLeader(address: $0.address, term: $0.term) }
        var links: [String: [String: LinkState]] = [:]
        for stats in accessible { links[stats.address] = stats.connections }
        // A failed read leaves the list empty and says why; the node reports above still stand.
        var services: [ServiceView] = []
        var servicesError: String? = "no leader"
        if let leader {
            do {
                let response = try supervisor.client.get(host: "127.0.0.1", port: Int(leader.id), path: "/services", timeoutSeconds: 1)
                if response.status == .ok {
                    services = try JSONBody.decode(ListEnvelope<ServiceView>.self, from: response.body).results
                    servicesError = nil
                } else {
                    servicesError = "the leader answered \(response.status.rawValue): " + ((try? JSONBody.decode([String: String].self, from: response.body))?["error"] ?? response.bodyText)
                }
            } catch {
                servicesError = "the leader did not answer: \(error)"
            }
        }
        return ClusterStats(cluster: cluster.id, leader: leader?.address, term: leader?.term, staleLeaders: stale,
                            nodes: reports, links: links, services: services, servicesError: servicesError)
    }

    // MARK: - Leader requests

    /// Sends the request to the cluster's leader, rediscovering it while leadership moves,
    /// and passes its answer through. 503 with Retry-After when no leader answers in time.
    private func toLeader(_ cluster: ManagedCluster, _ request: HTTPRequest, path: String) throws -> HTTPResponse {
        let query = request.target.firstIndex(of: "?").map { String(request.target[$0...]) } ?? ""
        var headers = HTTPHeaders([("Content-Type", request.headers["content-type"] ?? "application/json")])
        if let key = request.headers["idempotency-key"] { headers.add("Idempotency-Key", key) }
        let response = try sendToLeader(cluster, method: request.method, path: path + query, headers: headers, body: request.body)
        if request.method != "GET", (200..<300).contains(response.status.rawValue) {
            // A change of the desired state (services, containers, loads, autoscalers, leader).
            events.publish("change", cluster: cluster.id, ["method": request.method, "path": request.path, "status": response.status.rawValue])
        }
        return response
    }

    /// Sends one request to the cluster's leader (see `toLeader`).
    func sendToLeader(_ cluster: ManagedCluster, method: String, path: String, headers: HTTPHeaders = HTTPHeaders([("Content-Type", "application/json")]),
                      body: [UInt8] = [], timeoutSeconds: Double = 7) throws -> HTTPResponse {
        try cluster.client.sendToLeader(method: method, path: path, headers: headers, body: body, timeoutSeconds: timeoutSeconds, clusterID: cluster.id)
    }

    // MARK: - Faults

    struct FaultResult: Codable {
        var applied: [String]
        var failed: [String: String]
    }

    private func partition(_ cluster: ManagedCluster, _ request: HTTPRequest) throws -> HTTPResponse {
        struct Partition: Decodable { var groups: [[JSONValue]] }
        let body = try JSONBody.decode(Partition.self, from: request)
        var groupOf: [Int: Int] = [:]
        for (position, group) in body.groups.enumerated() {
            for member in group {
                let port: Int?
                switch member {
                case .number(let number): port = Int(exactly: number)
                case .string(let text): port = NodeAddress(parsing: text)?.port
                default: port = nil
                }
                guard let port, cluster.ports.contains(port) else {
                    throw HTTPError(.badRequest, "groups[\(position)]: \(member.summary) is not a node of cluster \(cluster.id) (nodes: \(cluster.ports.map(String.init).joined(separator: ", ")))")
                }
                guard groupOf[port] == nil else { throw HTTPError(.badRequest, "node \(port) is in more than one group") }
                groupOf[port] = position
            }
        }
        guard !groupOf.isEmpty else { throw HTTPError(.badRequest, "groups is empty") }
        // Nodes in no group form one more group together.
        for port in cluster.ports where groupOf[port] == nil { groupOf[port] = body.groups.count }
        let groups = groupOf
        let described = Dictionary(grouping: groups.keys, by: { groups[$0]! }).sorted { $0.key < $1.key }.map { $0.value.sorted() }
        supervisor.log.write("fault: cluster \(cluster.id) partitioned into \(described) (asked by \(request.remoteAddress ?? "a client"))")
        let result = applyLinks(cluster) { from, to in groups[from] == groups[to] ? "1" : "0" }
        events.publish("fault", cluster: cluster.id, ["action": "partition", "groups": described])
        return JSONBody.response(result, for: request)
    }

    private func heal(_ cluster: ManagedCluster, _ request: HTTPRequest) throws -> HTTPResponse {
        supervisor.log.write("fault: cluster \(cluster.id) healed, every link restored (asked by \(request.remoteAddress ?? "a client"))")
        events.publish("fault", cluster: cluster.id, ["action": "heal"])
        return JSONBody.response(applyLinks(cluster) { _, _ in #"{"up": true, "delayMs": 0, "loss": 0}"# }, for: request)
    }

    /// Posts to every node its new outgoing links, `value(from, to)` as JSON text.
    private func applyLinks(_ cluster: ManagedCluster, value: @escaping @Sendable (Int, Int) -> String) -> FaultResult {
        let outcomes = parallelMap(cluster.nodes) { node -> (String, String?) in
            let peers = cluster.ports.filter { $0 != node.port }
            // A node alone in its cluster has no link to set (and a node refuses an empty table).
            guard !peers.isEmpty else { return ("localhost:\(node.port)", nil) }
            let body = "{" + peers.map { "\"localhost:\($0)\": \(value(node.port, $0))" }.joined(separator: ", ") + "}"
            do {
                let response = try supervisor.client.postJSON(host: "127.0.0.1", port: node.port, path: "/connections", body: Array(body.utf8), timeoutSeconds: 1, isIdempotent: true)
                return ("localhost:\(node.port)", response.status == .ok ? nil : "answered \(response.status.rawValue): \(response.bodyText)")
            } catch {
                return ("localhost:\(node.port)", "\(error)")
            }
        }
        return FaultResult(applied: outcomes.filter { $0.1 == nil }.map(\.0),
                           failed: Dictionary(uniqueKeysWithValues: outcomes.compactMap { outcome in outcome.1.map { (outcome.0, $0) } }))
    }

    private func nodeFault(_ cluster: ManagedCluster, _ request: HTTPRequest) throws -> HTTPResponse {
        let name = try request.parameter("node")
        guard let node = cluster.node(name) else { throw HTTPError(.notFound, "unknown node \(name) in cluster \(cluster.id)") }
        let action = try request.parameter("action")
        // A node faulted here may be the leader this API remembers: look it up afresh.
        if cluster.client.rememberedLeader == node.port { cluster.client.forgetLeader() }
        if ["kill", "stop", "pause", "resume", "restart", "start", "isolate"].contains(action) {
            supervisor.log.write("fault: cluster \(cluster.id) node \(node.port) \(action) (pid \(node.pid.map(String.init) ?? "-"), asked by \(request.remoteAddress ?? "a client"))")
        }
        switch action {
        case "kill":
            node.killNow()
        case "stop":
            node.terminate()
        case "pause":
            guard node.send(SIGSTOP) else { throw HTTPError(.conflict, "node \(node.port) is not running (\(node.status.rawValue))") }
            node.markStatus(.paused)
        case "resume":
            guard node.send(SIGCONT) else { throw HTTPError(.conflict, "node \(node.port) is not running (\(node.status.rawValue))") }
            node.markStatus(.running)
        case "restart", "start":
            node.terminate()
            try supervisor.start(node, in: cluster)
            try supervisor.waitUntilReady([node], seconds: 15)
        case "isolate":
            // Cut every link to and from this node, both directions.
            let result = applyLinks(cluster) { from, to in from == node.port || to == node.port ? "0" : "1" }
            guard result.failed.isEmpty else { return JSONBody.response(result, status: .badGateway, for: request) }
        default:
            throw HTTPError(.notFound, "unknown action \(action) (kill, stop, pause, resume, restart, isolate)")
        }
        events.publish("fault", cluster: cluster.id, ["action": action, "node": node.port])
        return JSONBody.response(summary(cluster), for: request)
    }
}
