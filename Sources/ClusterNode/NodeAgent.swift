import Foundation
import Transport

/// Seed 004's node agent, over this node's simulated containers: the host's status, the
/// containers here in Docker's shapes, and creating and removing containers on this node
/// (through the leader: every change is a log entry).
extension NodeAPI {
    static func addAgentRoutes(_ router: inout Router, _ node: Node) {
        router.add("GET", "/status") { request in
            JSONBody.response(HostStatus(node.containers.list(), resources: node.containers.resources), for: request)
        }
        router.add("GET", "/runtime") { request in
            let containers = node.containers.list()
            return JSONBody.response(RuntimeView(node: address(node.configuration.id), resources: node.containers.resources, load: node.containers.load(of: containers),
                                                 cores: ContainerRuntime.coreUse(of: containers, millicores: node.containers.resources.cpuMillicores),
                                                 containers: containers), for: request)
        }
        router.add("GET", "/containers") { request in
            // Docker's default: running containers only; `?all` lists every one.
            let showAll = request.query["all"].map { $0 != "false" && $0 != "0" } ?? false
            var containers = node.containers.list().filter { showAll || $0.state == "running" }
            if let service = request.query["service"] {
                containers = containers.filter { $0.service == service || $0.serviceID.map(String.init) == service }
            }
            return JSONBody.response(containers.map(DockerContainerSummary.init), for: request)
        }
        router.add("GET", "/container/:cid") { request in
            guard let container = node.containers.container(try request.parameter("cid")) else { throw HTTPError(.notFound, "not found") }
            return JSONBody.response(DockerContainer(container), for: request)
        }
        router.add("GET", "/container/:cid/status") { request in
            guard let container = node.containers.container(try request.parameter("cid")) else { throw HTTPError(.notFound, "not found") }
            return JSONBody.response(ContainerStatus(container), for: request)
        }
        router.addSuspending("POST", "/containers") { request in try await createContainer(node, try pinnedCreate(request, on: node.configuration.id)) }
        router.addSuspending("DELETE", "/container/:cid") { request in
            let id = try request.parameter("cid")
            guard let container = node.containers.container(id) else { throw HTTPError(.notFound, "not found") }
            if let containerID = container.containerID {
                var forwarded = HTTPRequest(method: "DELETE", target: "/cluster/containers/\(containerID)?node=\(node.configuration.id)", headers: request.headers)
                forwarded.remoteAddress = request.remoteAddress
                return try await onLeader(node, forwarded) {
                    try await node.service.deleteContainer(containerID, onNode: node.configuration.id, requestID: requestID(request))
                    return HTTPResponse(status: .noContent)
                }
            }
            // A replica that already left this node: only this node's memory of it goes.
            if container.state == "exited", node.containers.forgetExited(id) { return HTTPResponse(status: .noContent) }
            guard let serviceID = container.serviceID else { throw HTTPError(.notFound, "not found") }
            node.containers.stopFirst(id)  // this one, not another replica of the service, is the one that goes
            var forwarded = HTTPRequest(method: "DELETE", target: "/services/\(serviceID)/replicas/\(node.configuration.id)", headers: request.headers)
            forwarded.remoteAddress = request.remoteAddress
            forwarded.pathParameters = ["sid": String(serviceID), "member": String(node.configuration.id)]
            return try await removeReplica(node, forwarded)
        }
        router.addSuspending("DELETE", "/services/:sid/replicas/:member") { request in try await removeReplica(node, request) }
    }

    /// `DELETE /services/:sid/replicas/:member`: one replica fewer, the one removed on that node.
    private static func removeReplica(_ node: Node, _ request: HTTPRequest) async throws -> HTTPResponse {
        try await onLeader(node, request) {
            guard let serviceID = Int(try request.parameter("sid")), serviceID > 0 else { throw HTTPError(.notFound, "not found") }
            let member = try LinkTable.peerID(from: try request.parameter("member"))
            try await node.service.removeReplica(of: serviceID, from: member, requestID: requestID(request))
            return HTTPResponse(status: .noContent)
        }
    }

    /// Seed 004's `POST /containers` body (JSON, or form fields `image`, `service`, `port`)
    /// as the cluster's create request, pinned to `nodeID`: `port` becomes `publish` (none
    /// given: any free port, as seed 004 allocates one).
    static func pinnedCreate(_ request: HTTPRequest, on nodeID: UInt64) throws -> HTTPRequest {
        var fields: [String: JSONValue]
        // Form fields when the body is not JSON (curl -d sends either as a form's type).
        let contentType = request.headers["content-type"]?.lowercased() ?? ""
        let looksLikeJSON = request.body.first { ![UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t")].contains($0) } == UInt8(ascii: "{")
        if contentType.hasPrefix("application/x-www-form-urlencoded") && !looksLikeJSON {
            fields = [:]
            for (name, value) in HTTPRequest.formFields(request.body) {
                // Form values are text: numbers where the field is a number, so that the
                // JSON checks name a wrong value ("port must be ...").
                if ["port", "cpu", "memory", "privatePort"].contains(name), let number = Int(value) { fields[name] = .number(Double(number)) } else { fields[name] = .string(value) }
            }
        } else {
            guard !request.body.isEmpty else { throw HTTPError(.badRequest, #"request body is empty; expected JSON like {"image": "nginx", "service": "web"} or form fields image, service, port"#) }
            guard case .object(let object) = try JSONBody.decodeStrictly(JSONValue.self, from: request.body) else {
                throw HTTPError(.badRequest, "the body must be a JSON object")
            }
            fields = object
        }
        guard fields["node"] == nil else { throw HTTPError(.badRequest, "unknown field node: a container created on a node goes on that node") }
        switch (fields.removeValue(forKey: "port"), fields["publish"]) {
        case (.number(let port)?, nil) where port == port.rounded() && (1...65_535).contains(port): fields["publish"] = .number(port)
        case (let port?, nil): throw HTTPError(.badRequest, "port must be a port from 1 to 65535 (leave it out for any free one), got \(port.summary)")
        case (nil, nil): fields["publish"] = .bool(true)
        case (_?, _?): throw HTTPError(.badRequest, "give port or publish, not both")
        case (nil, _?): break
        }
        fields["node"] = .number(Double(nodeID))
        var headers = request.headers
        headers.set("Content-Type", "application/json")
        var forwarded = HTTPRequest(method: "POST", target: "/cluster/containers?view=docker", headers: headers, body: Array(try JSONEncoder().encode(fields)))
        forwarded.remoteAddress = request.remoteAddress
        return forwarded
    }
}

/// Seed 004's `GET /status`: the simulated host. `cpus` is each simulated core's use in
/// percent, `memory` and `free_memory` are kB, `net` is bytes per second per interface,
/// `nb_containers` counts the running containers.
struct HostStatus: Codable {
    struct Traffic: Codable {
        var rx: Int
        var tx: Int
    }

    var cpus: [String: Int]
    var memory: Int
    var free_memory: Int
    var net: [String: Traffic]
    var nb_containers: Int

    init(_ containers: [SimulatedContainer], resources: NodeResources) {
        let cores = ContainerRuntime.coreUse(of: containers, millicores: resources.cpuMillicores)
        cpus = Dictionary(uniqueKeysWithValues: cores.enumerated().map { ("cpu\($0.offset)", $0.element) })
        memory = resources.memoryMB * 1_024
        free_memory = max(0, memory - containers.reduce(0) { $0 + $1.memoryUsage } * 1_024)
        net = ["eth0": Traffic(rx: containers.reduce(0) { $0 + $1.rxBytesPerSecond }, tx: containers.reduce(0) { $0 + $1.txBytesPerSecond })]
        nb_containers = containers.filter { $0.state == "running" }.count
    }
}

/// `GET /runtime`: everything the node's simulated runtime knows, in this project's words.
struct RuntimeView: Codable {
    var node: String
    var resources: NodeResources
    /// CPU in use as a fraction of the node's CPU.
    var load: Double
    /// Each simulated core's use in percent.
    var cores: [Int]
    var containers: [SimulatedContainer]
}

/// Seed 004's `GET /container/:id/status`: `cpu` in percent of its CPU request, `memory` in
/// use and `free_memory` left of its request in kB, `net` in bytes per second.
struct ContainerStatus: Codable {
    var cpu: Double
    var memory: Int
    var free_memory: Int
    var net: HostStatus.Traffic
    var state: String

    init(_ container: SimulatedContainer) {
        cpu = container.cpuPercent
        memory = container.memoryUsage * 1_024
        free_memory = max(0, container.memoryRequest - container.memoryUsage) * 1_024
        net = HostStatus.Traffic(rx: container.rxBytesPerSecond, tx: container.txBytesPerSecond)
        state = container.state
    }
}

/// A published port in Docker's list shape.
struct DockerPort: Codable {
    var ip: String
    var privatePort: Int
    var publicPort: Int
    var type: String

    enum CodingKeys: String, CodingKey {
        case ip = "IP", privatePort = "PrivatePort", publicPort = "PublicPort", type = "Type"
    }
}

/// One container in Docker's `GET /containers/json` shape (seed 004's list).
struct DockerContainerSummary: Codable {
    var id: String
    var names: [String]
    var image: String
    var command: String
    /// Unix seconds.
    var created: Int
    var ports: [DockerPort]
    var labels: [String: String]
    var state: String
    var status: String

    enum CodingKeys: String, CodingKey {
        case id = "Id", names = "Names", image = "Image", command = "Command", created = "Created", ports = "Ports", labels = "Labels"
        case state = "State", status = "Status"
    }

    init(_ container: SimulatedContainer) {
        id = container.id
        names = [container.name]
        image = container.image
        command = container.cmd.joined(separator: " ")
        created = Int(container.createdAt)
        ports = container.publicPort.map { [DockerPort(ip: "127.0.0.1", privatePort: container.privatePort, publicPort: $0, type: "tcp")] } ?? []
        labels = Self.labels(of: container)
        state = container.state
        status = Self.status(of: container.state)
    }

    static func labels(of container: SimulatedContainer) -> [String: String] {
        var labels: [String: String] = [:]
        if let service = container.service { labels["service"] = service }
        if let serviceID = container.serviceID { labels["serviceId"] = String(serviceID) }
        if let containerID = container.containerID { labels["containerId"] = String(containerID) }
        return labels
    }

    /// Docker's human status: "Up" while running, else the state.
    static func status(of state: String) -> String {
        state == "running" ? "Up" : state.prefix(1).uppercased() + state.dropFirst()
    }
}

/// One container in Docker's inspect shape (`GET /containers/:id/json`), with the fields a
/// simulated container has; times are Unix seconds, as everywhere in this API.
struct DockerContainer: Codable {
    struct State: Codable {
        var status: String
        var running: Bool
        var paused: Bool
        var exitCode: Int
        /// Unix seconds (nil: not yet).
        var startedAt: Double?
        var finishedAt: Double?
        enum CodingKeys: String, CodingKey {
            case status = "Status", running = "Running", paused = "Paused", exitCode = "ExitCode", startedAt = "StartedAt", finishedAt = "FinishedAt"
        }
    }

    struct Config: Codable {
        var image: String
        var cmd: [String]
        var labels: [String: String]
        var exposedPorts: [String: [String: String]]
        enum CodingKeys: String, CodingKey { case image = "Image", cmd = "Cmd", labels = "Labels", exposedPorts = "ExposedPorts" }
    }

    struct HostConfig: Codable {
        /// CPU in units of 10⁻⁹ CPUs, memory in bytes (Docker's units).
        var nanoCpus: Int
        var memory: Int
        enum CodingKeys: String, CodingKey { case nanoCpus = "NanoCpus", memory = "Memory" }
    }

    struct PortBinding: Codable {
        var hostIp: String
        var hostPort: String
        enum CodingKeys: String, CodingKey { case hostIp = "HostIp", hostPort = "HostPort" }
    }

    struct NetworkSettings: Codable {
        var ports: [String: [PortBinding]]
        enum CodingKeys: String, CodingKey { case ports = "Ports" }
    }

    var id: String
    var name: String
    var created: Int
    var image: String
    var state: State
    var config: Config
    var hostConfig: HostConfig
    var networkSettings: NetworkSettings

    enum CodingKeys: String, CodingKey {
        case id = "Id", name = "Name", created = "Created", image = "Image", state = "State", config = "Config", hostConfig = "HostConfig"
        case networkSettings = "NetworkSettings"
    }

    init(_ container: SimulatedContainer) {
        let exposed = "\(container.privatePort)/tcp"
        id = container.id
        name = container.name
        created = Int(container.createdAt)
        image = container.image
        state = State(status: container.state, running: container.state == "running", paused: false, exitCode: 0,
                      startedAt: container.startedAt, finishedAt: container.finishedAt)
        config = Config(image: container.image, cmd: container.cmd, labels: DockerContainerSummary.labels(of: container), exposedPorts: [exposed: [:]])
        hostConfig = HostConfig(nanoCpus: container.cpuRequest * 1_000_000, memory: container.memoryRequest * 1_048_576)
        networkSettings = NetworkSettings(ports: [exposed: container.publicPort.map { [PortBinding(hostIp: "127.0.0.1", hostPort: String($0))] } ?? []])
    }
}
