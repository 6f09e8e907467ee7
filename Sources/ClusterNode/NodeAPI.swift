import Foundation
import Raft
import Transport

/// The HTTP API of one node (API.md, "Node"): its definition, links, stats, services,
/// seed 004's host and container views, metrics, and the internal Raft endpoint.
public enum NodeAPI {
    /// The node's routes.
    public static func router(for node: Node) -> Router {
        var router = Router()
        router.add("GET", "/") { request in JSONBody.response(node.service.definition(), for: request) }
        router.add("GET", "/connections") { request in connections(node, request) }
        router.add("POST", "/connections") { request in
            try node.links.update(from: request.body)
            node.log.write("links set by \(request.remoteAddress ?? "a client"): \(String(decoding: request.body.prefix(512), as: UTF8.self)); now \(String(decoding: node.links.renderJSON(pretty: false), as: UTF8.self))")
            return connections(node, request)
        }
        router.add("GET", "/stats") { request in JSONBody.response(node.service.stats(links: node.links), for: request) }
        router.add("GET", "/log") { request in
            func number(_ name: String, _ fallback: UInt64) throws(HTTPError) -> UInt64 {
                guard let text = request.query[name] else { return fallback }
                guard let value = UInt64(text) else { throw HTTPError(.badRequest, "\(name) must be a non-negative whole number, got \(JSONText.quote(text))") }
                return value
            }
            return JSONBody.response(node.service.logPage(from: try number("from", 1), to: try number("to", UInt64.max)), for: request)
        }
        router.add("GET", "/metrics") { _ in node.service.metricsText().response }
        addRaftRoutes(&router, node)
        addServiceRoutes(&router, node)
        addServiceQueryRoutes(&router, node)
        addAgentRoutes(&router, node)
        router.serveOpenAPI(NodeAPIDocument.document())
        let requests = node.service.metrics.requests
        router.observer = { request, route, status, seconds in
            requests.observe(method: request.method, route: route, status: status, seconds: seconds)
        }
        return router
    }

    private static func connections(_ node: Node, _ request: HTTPRequest) -> HTTPResponse {
        HTTPResponse(headers: HTTPHeaders([("Content-Type", "application/json")]), body: node.links.renderJSON(pretty: request.wantsPrettyJSON))
    }

    /// The 201 answer to a service request.
    struct CreatedServices: Codable, JSONWritable {
        var index: UInt64
        var term: UInt64
        var requestId: String
        var leader: String
        var services: [ServiceView]

        func writeJSON(to writer: inout JSONObjectWriter) throws {
            writer.field("index", index)
            writer.field("leader", leader)
            writer.field("requestId", requestId)
            try writer.field("services", services)
            writer.field("term", term)
        }
    }

    /// The answer to a scale request: what this request did (the count it set and the entry
    /// that carried it), then the service as it is now, which a later request may have changed.
    struct ScaledService: Codable {
        var requestId: String
        var replicas: Int
        var index: UInt64
        var term: UInt64
        var service: ServiceView?
    }

    private static func createdResponse(_ node: Node, _ request: HTTPRequest, _ requestID: String, _ created: ClusterService.CreatedServices) -> HTTPResponse {
        let answer = CreatedServices(index: created.index, term: created.term, requestId: requestID, leader: address(node.configuration.id),
                                     services: created.records.map(ServiceView.init))
        return JSONBody.response(answer, status: .created, for: request)
    }

    /// `POST /service` through a task (`ClusterService.createServices`).
    private static func createServices(_ node: Node, _ request: HTTPRequest, _ specs: [ServiceSpec], _ requestID: String) async throws -> HTTPResponse {
        createdResponse(node, request, requestID, try await node.service.createServices(specs, requestID: requestID))
    }

    private static func addServiceRoutes(_ router: inout Router, _ node: Node) {
        // The hot path: a settled leader serves it without a task (`ClusterService.proposeWithoutTask`);
        // the rest (a follower forwarding, the wait after an election, a refusal to confirm)
        // goes through a suspending handler as every other proposal does.
        router.addReplying("POST", "/service") { request, reply in
            do {
                try checkIdempotencyKey(request)
                let (specs, bodyRequestID) = try ServiceRequest.specs(from: request.body)
                let requestID = try bodyRequestID ?? NodeAPI.requestID(request)
                func throughTask() {
                    reply.suspend { request in try await onLeader(node, request) { try await createServices(node, request, specs, requestID) } }
                }
                let begun = node.service.createServicesWithoutTask(specs, requestID: requestID,
                                                                   hops: .init(toLoop: reply.onLoop, toAnswer: reply.whereCheapest)) { outcome in
                    switch outcome {
                    case .done(.success(let committed)):
                        reply.send(createdResponse(node, request, requestID, node.service.created(committed, requestID: requestID)))
                    case .done(.failure(.notLeader(let leader))):
                        reply.suspend { request in
                            try await notLeader(leader, node, request) { try await createServices(node, request, specs, requestID) }
                        }
                    case .done(.failure(let error)):
                        reply.send(error)
                    case .needsTask:
                        throughTask()
                    }
                }
                if !begun { throughTask() }
            } catch {
                reply.send(error)
            }
        }
        router.addSuspending("POST", "/leader") { request in
            try await onLeader(node, request) {
                struct Transfer: Decodable { var node: JSONValue }
                let target = try memberID(try JSONBody.decode(Transfer.self, from: request).node)
                return JSONBody.response(try await node.service.transferLeadership(to: target), for: request)
            }
        }
        router.add("GET", "/members") { request in JSONBody.response(node.service.membershipView(), for: request) }
        router.addSuspending("POST", "/members") { request in
            try await onLeader(node, request) {
                struct Add: Decodable { var node: JSONValue }
                let target = try memberID(try JSONBody.decode(Add.self, from: request).node)
                let membership = node.service.membershipView()
                if !(membership.voters + membership.learners).contains(address(target)) {
                    try await runBlocking { try checkAnswersAsMember(node, target) }
                }
                return JSONBody.response(try await node.service.addMember(target), for: request)
            }
        }
        router.addSuspending("DELETE", "/members/:member") { request in
            try await onLeader(node, request) {
                JSONBody.response(try await node.service.removeMember(try LinkTable.peerID(from: try request.parameter("member"))), for: request)
            }
        }
    }

    /// The services one by one: seed 000's queries (linearizable through the leader, or this
    /// node's own applied state with `?local`), scale and delete, and `/state`.
    private static func addServiceQueryRoutes(_ router: inout Router, _ node: Node) {
        router.addSuspending("GET", "/services") { request in
            if request.query["local"] != nil {
                // This node's own applied state, not linearizable: for checking replicas agree.
                let services = node.service.appliedServices()
                return JSONBody.response(ListEnvelope(services), for: request)
            }
            return try await onLeader(node, request) {
                let services = try await node.service.readLinearizably { state in state.services.values.map(ServiceView.init) }
                return JSONBody.response(ListEnvelope(services), for: request)
            }
        }
        router.addSuspending("POST", "/services") { request in
            try await onLeader(node, request) {
                let (spec, bodyRequestID) = try SimpleServiceRequest.spec(from: request.body)
                let (records, _, _) = try await node.service.createServices([spec], requestID: bodyRequestID ?? requestID(request))
                guard let record = records.first else { throw NodeError.notFound("the service was deleted before this request's answer") }
                return JSONBody.response(ServiceView(record), status: .created, for: request)
            }
        }
        router.addSuspending("GET", "/services/running") { request in
            try await onLeader(node, request) {
                let running = try await node.service.readLinearizably { state in
                    state.services.values.filter { $0.placedCount > 0 }.map(ServiceView.init)
                }
                return JSONBody.response(ListEnvelope(running), for: request)
            }
        }
        router.addSuspending("PUT", "/desired-state") { request in
            try await onLeader(node, request) {
                let (specs, bodyRequestID) = try DesiredState.specs(from: request.body)
                return JSONBody.response(try await node.service.setDesiredState(specs, requestID: bodyRequestID ?? requestID(request)), for: request)
            }
        }
        router.addSuspending("GET", "/desired-state") { request in
            try await onLeader(node, request) {
                JSONBody.response(try await node.service.readLinearizably { state in DesiredState.View(state, term: node.service.currentTerm) }, for: request)
            }
        }
        router.addSuspending("GET", "/services/latest") { request in
            try await onLeader(node, request) {
                let latest = try await node.service.readLinearizably { state in state.services.last.map(ServiceView.init) }
                guard let latest else { throw HTTPError(.notFound, "Not found") }
                return JSONBody.response(latest, for: request)
            }
        }
        router.addSuspending("GET", "/services/latest/:image") { request in
            try await onLeader(node, request) {
                let image = try request.parameter("image")
                let latest = try await node.service.readLinearizably { state in
                    state.services.values.filter { $0.spec.image == image }.last.map(ServiceView.init)
                }
                guard let latest else { throw HTTPError(.notFound, "Not found") }
                return JSONBody.response(latest, for: request)
            }
        }
        router.addSuspending("GET", "/services/name/:name") { request in
            try await onLeader(node, request) {
                let name = try request.parameter("name")
                let found = try await node.service.readLinearizably { state in
                    state.services.values.filter { $0.spec.name == name }.map(ServiceView.init)
                }
                guard !found.isEmpty else { throw HTTPError(.notFound, "Not found") }
                return JSONBody.response(ListEnvelope(found), for: request)
            }
        }
        router.addSuspending("GET", "/services/:sid") { request in
            try await onLeader(node, request) {
                let id = try serviceID(request)
                guard let record = try await node.service.readLinearizably({ state in state.services[id] }) else { throw HTTPError(.notFound, "Not found") }
                return JSONBody.response(ServiceView(record), for: request)
            }
        }
        router.addSuspending("PATCH", "/services/:sid") { request in
            try await onLeader(node, request) {
                struct Scale: Decodable { var replicas: Int; var requestId: String? }
                let id = try serviceID(request)
                let scale = try JSONBody.decode(Scale.self, from: request)
                guard scale.replicas >= 0, scale.replicas <= ServiceRequest.maxReplicas else {
                    throw HTTPError(.badRequest, "replicas must be a whole number from 0 to \(ServiceRequest.maxReplicas), got \(scale.replicas)")
                }
                let requestID = try NodeError.checkRequestID(scale.requestId) ?? NodeAPI.requestID(request)
                let result = try await node.service.scaleService(id, replicas: scale.replicas, requestID: requestID)
                return JSONBody.response(ScaledService(requestId: requestID, replicas: result.replicas, index: result.index, term: result.term,
                                                       service: result.service.map(ServiceView.init)), for: request)
            }
        }
        router.addSuspending("PUT", "/services/:sid/load") { request in
            try await onLeader(node, request) {
                let id = try serviceID(request)
                let (pattern, bodyRequestID) = try LoadPattern.parse(request.body)
                let requestID = try bodyRequestID ?? NodeAPI.requestID(request)
                let result = try await node.service.setLoad(id, pattern: pattern, requestID: requestID)
                return JSONBody.response(LoadSet(requestId: requestID, index: result.index, term: result.term,
                                                 service: result.service.map { ServiceView($0) }), for: request)
            }
        }
        router.addSuspending("GET", "/services/:sid/load") { request in
            try await onLeader(node, request) {
                let id = try serviceID(request)
                guard let record = try await node.service.readLinearizably({ state in state.services[id] }) else { throw HTTPError(.notFound, "Not found") }
                guard let view = ServiceView(record).load else { throw HTTPError(.notFound, "service \(id) has no load set; PUT one first") }
                return JSONBody.response(view, for: request)
            }
        }
        addAutoscalerRoutes(&router, node)
        addClusterContainerRoutes(&router, node)
        router.addSuspending("DELETE", "/services/:sid") { request in
            try await onLeader(node, request) {
                let requestID = try NodeAPI.requestID(request)
                try await node.service.deleteService(try serviceID(request), requestID: requestID)
                return HTTPResponse(status: .noContent)
            }
        }
        router.addSuspending("GET", "/state") { request in
            try await onLeader(node, request) {
                let services = try await node.service.readLinearizably { state in state.services.values.map(ServiceView.init) }
                return JSONBody.response(StateView(leader: address(node.configuration.id), term: node.service.definition().term,
                                                   calls: node.service.recentServiceCalls(), services: services), for: request)
            }
        }
    }

    /// Seed 001's containers of the cluster, through the leader (under `/cluster/containers`
    /// on a node: `/containers` is seed 004's view of the containers on this node).
    private static func addClusterContainerRoutes(_ router: inout Router, _ node: Node) {
        router.addSuspending("POST", "/cluster/containers") { request in try await createContainer(node, request) }
        router.addSuspending("GET", "/cluster/containers") { request in
            try await onLeader(node, request) {
                let all = try await node.service.readLinearizably { state in state.containers.values.sorted { $0.id < $1.id }.map(ContainerView.init) }
                return JSONBody.response(ListEnvelope(all), for: request)
            }
        }
        router.addSuspending("GET", "/cluster/containers/:cid") { request in
            try await onLeader(node, request) {
                let id = try containerID(request)
                guard let record = try await node.service.readLinearizably({ state in state.containers[id] }) else { throw HTTPError(.notFound, "Not found") }
                return JSONBody.response(ContainerView(record), for: request)
            }
        }
        for (action, isRunning) in [("start", true), ("stop", false)] {
            router.addSuspending("POST", "/cluster/containers/:cid/" + action) { request in
                try await onLeader(node, request) {
                    let record = try await node.service.setContainerRunning(try containerID(request), isRunning: isRunning, requestID: requestID(request))
                    return JSONBody.response(ContainerView(record), for: request)
                }
            }
        }
        router.addSuspending("DELETE", "/cluster/containers/:cid") { request in
            try await onLeader(node, request) {
                let onNode = try request.query["node"].map { text throws(NodeError) in try memberID(.string(text)) }
                try await node.service.deleteContainer(try containerID(request), onNode: onNode, requestID: requestID(request))
                return HTTPResponse(status: .noContent)
            }
        }
    }

    /// `POST /cluster/containers` (seed 001's create; seed 004's, forwarded with `node` set):
    /// 201 with the container, in seed 001's shape or, with `?view=docker`, Docker's.
    static func createContainer(_ node: Node, _ request: HTTPRequest) async throws -> HTTPResponse {
        try await onLeader(node, request) {
            // Checked before anything is created: a refused request changes nothing.
            guard request.query["view"] == nil || request.query["view"] == "docker" else {
                throw HTTPError(.badRequest, "view must be docker (Docker's inspect shape) or left out, got \(JSONText.quote(request.query["view"] ?? ""))")
            }
            let (spec, pinnedTo, bodyRequestID) = try ContainerRequest.spec(from: request.body)
            let record = try await node.service.createContainer(spec, pinnedTo: pinnedTo, requestID: bodyRequestID ?? requestID(request))
            if request.query["view"] == "docker" {
                return JSONBody.response(DockerContainer(SimulatedContainer(record)), status: .created, for: request)
            }
            return JSONBody.response(ContainerView(record), status: .created, for: request)
        }
    }

    private static func containerID(_ request: HTTPRequest) throws(HTTPError) -> Int {
        guard let id = Int(try request.parameter("cid")), id > 0 else { throw HTTPError(.notFound, "Not found") }
        return id
    }

    /// The request's `Idempotency-Key` (checked like a body's `requestId`), or a fresh UUID.
    static func requestID(_ request: HTTPRequest) throws(NodeError) -> String {
        do {
            return try NodeError.checkRequestID(request.headers["idempotency-key"]) ?? RandomID.uuidString()
        } catch {
            throw .invalid("Idempotency-Key must be a non-empty string of at most 256 bytes")
        }
    }

    /// Refuses a malformed `Idempotency-Key`, even where a body's `requestId` takes precedence.
    static func checkIdempotencyKey(_ request: HTTPRequest) throws(NodeError) {
        if request.headers["idempotency-key"] != nil { _ = try requestID(request) }
    }

    /// Seed 002's autoscaler per service: `PUT` sets it, `PATCH` changes some settings (the
    /// others keep their values), `DELETE` stops it, `GET` shows it and its latest steps.
    private static func addAutoscalerRoutes(_ router: inout Router, _ node: Node) {
        for method in ["PUT", "PATCH"] {
            router.addSuspending(method, "/services/:sid/autoscaler") { request in
                try await onLeader(node, request) {
                    let id = try serviceID(request)
                    let current = try await node.service.readLinearizably { state in state.services[id] }
                    guard let current else { throw HTTPError(.notFound, "Not found") }
                    if method == "PATCH", current.autoscaler == nil { throw HTTPError(.notFound, "service \(id) has no autoscaler; PUT one first") }
                    let (spec, bodyRequestID) = try AutoscalerRequest.spec(from: request.body, over: method == "PATCH" ? current.autoscaler?.spec : nil)
                    let requestID = try bodyRequestID ?? NodeAPI.requestID(request)
                    guard let service = try await node.service.setAutoscaler(id, spec: spec, requestID: requestID), let autoscaler = service.autoscaler else {
                        throw HTTPError(.notFound, "service \(id) was deleted before this change applied")
                    }
                    return JSONBody.response(AutoscalerView(service: service, autoscaler: autoscaler, nowMs: LoadView.nowMs()), for: request)
                }
            }
        }
        router.addSuspending("DELETE", "/services/:sid/autoscaler") { request in
            try await onLeader(node, request) {
                let requestID = try NodeAPI.requestID(request)
                _ = try await node.service.setAutoscaler(try serviceID(request), spec: nil, requestID: requestID)
                return HTTPResponse(status: .noContent)
            }
        }
        router.addSuspending("GET", "/services/:sid/autoscaler") { request in
            try await onLeader(node, request) {
                let id = try serviceID(request)
                guard let service = try await node.service.readLinearizably({ state in state.services[id] }) else { throw HTTPError(.notFound, "Not found") }
                guard let autoscaler = service.autoscaler else { throw HTTPError(.notFound, "service \(id) has no autoscaler") }
                return JSONBody.response(AutoscalerView(service: service, autoscaler: autoscaler, nowMs: LoadView.nowMs()), for: request)
            }
        }
    }

    /// The answer to `PUT /services/:sid/load`: the entry that carried it and the service now.
    struct LoadSet: Codable {
        var requestId: String
        var index: UInt64
        var term: UInt64
        var service: ServiceView?
    }

    /// `/state`: the service calls (queued, committed, failed) and the replicated desired state.
    struct StateView: Codable {
        var leader: String
        var term: UInt64
        var calls: [ServiceCall]
        var services: [ServiceView]
    }

    /// A node joins only if it runs and belongs to this cluster: a learner nobody runs would
    /// stay in the membership and the request would wait for it to catch up in vain.
    private static func checkAnswersAsMember(_ node: Node, _ target: UInt64) throws(NodeError) {
        let definition: NodeDefinition
        do {
            let response = try node.client.send("GET", host: "127.0.0.1", port: Int(target), path: "/", timeoutSeconds: 1)
            definition = try JSONBody.decode(NodeDefinition.self, from: response.body)
        } catch {
            throw .rejected("\(address(target)) does not answer as a node (\(error)); start it with --cluster \(node.configuration.clusterID) first")
        }
        guard definition.cluster == node.configuration.clusterID else {
            throw .rejected("\(address(target)) is a node of cluster \(definition.cluster), not \(node.configuration.clusterID)")
        }
    }

    /// A node named in a body: its port, or "localhost:PORT".
    static func memberID(_ value: JSONValue) throws(NodeError) -> UInt64 {
        switch value {
        case .number(let number) where number == number.rounded() && number > 0 && number <= 65_535: return UInt64(number)
        case .string(let text): return try LinkTable.peerID(from: text)
        default: throw .invalid(#"node must be a port or "localhost:PORT", e.g. {"node": 8003}"#)
        }
    }

    private static func serviceID(_ request: HTTPRequest) throws(HTTPError) -> Int {
        let text = try request.parameter("sid")
        guard let id = Int(text), id > 0 else { throw HTTPError(.notFound, "Not found") }
        return id
    }
}
