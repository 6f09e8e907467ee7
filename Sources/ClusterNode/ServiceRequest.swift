import Foundation
import Transport

/// A `POST /service` body in any of seed 003's three shapes:
///
///     {"container": {"id": 5, "replicas": 25}}
///     {"containers": [{"description": "container 0", "replicas": 10}, ...]}
///     {"container": {"id": 5, "label": "web"}, "replicas": 25}
///
/// Each container may also give `image`, `name`, `cpu` (millicores per replica) and
/// `memory` (MB per replica), `publish` (true: any free port; or a port) and `privatePort`.
/// `requestId` (or the `Idempotency-Key` header) makes a retry apply once.
public struct ServiceRequest: Decodable, Sendable {
    struct Container: Decodable, Sendable {
        var id: Int?
        var name: String?
        var description: String?
        var label: String?
        var image: String?
        var replicas: Int?
        var cpu: Int?
        var memory: Int?
        var publish: JSONValue?
        var privatePort: Int?

        /// See `ServiceRequest.plain`.
        static func plain(_ node: JSONNode) -> Container? {
            guard case .object(let fields) = node else { return nil }
            var container = Container()
            for (key, value) in fields {
                switch key {
                case "id", "replicas", "cpu", "memory", "privatePort":
                    guard let number = value.integer else { return nil }
                    switch key {
                    case "id": container.id = number
                    case "replicas": container.replicas = number
                    case "cpu": container.cpu = number
                    case "memory": container.memory = number
                    default: container.privatePort = number
                    }
                case "name", "description", "label", "image":
                    guard case .string(let text) = value else { return nil }
                    switch key {
                    case "name": container.name = text
                    case "description": container.description = text
                    case "label": container.label = text
                    default: container.image = text
                    }
                case "publish":
                    switch value {
                    case .bool(let flag): container.publish = .bool(flag)
                    case .string(let text): container.publish = .string(text)
                    case .number(let text):
                        guard let number = Double(text) else { return nil }
                        container.publish = .number(number)
                    default: return nil
                    }
                default:
                    return nil
                }
            }
            return container
        }
    }

    var container: Container?
    var containers: [Container]?
    var replicas: Int?
    var requestId: String?

    /// Replicas one request may ask for per service: more than any experiment on one machine needs.
    public static let maxReplicas = 100_000
    /// What one replica or container may ask for: CPU in millicores, memory in MB.
    public static let cpuMillicores = 1...256_000
    public static let memoryMB = 1...1_048_576
    /// Services one request may create.
    public static let maxServices = 1_000

    /// Parses and validates a body into service specs, or throws a 400 naming the field.
    public static func specs(from body: [UInt8]) throws(NodeError) -> (specs: [ServiceSpec], requestID: String?) {
        let request: ServiceRequest
        if let plain = plain(body) {
            request = plain
        } else {
            do {
                request = try JSONBody.decodeStrictly(ServiceRequest.self, from: body)
            } catch {
                throw .invalid(error.message)
            }
        }
        return (try request.validated(), request.requestId)
    }

    /// The body read straight from its parsed document when it holds only known fields with
    /// plain values (whole numbers, strings, and for `publish` a boolean, number or string);
    /// nil otherwise, and the strict decoder then reads it and names what is wrong. What it
    /// reads is what the strict decoder would (a test compares them): it is only faster
    /// (about a quarter of the time; `bench codec`).
    static func plain(_ body: [UInt8]) -> ServiceRequest? {
        guard case .object(let fields)? = JSONNode.parse(body) else { return nil }
        var request = ServiceRequest()
        for (key, value) in fields {
            switch key {
            case "container":
                guard let container = Container.plain(value) else { return nil }
                request.container = container
            case "containers":
                guard case .array(let items) = value else { return nil }
                var containers: [Container] = []
                for item in items {
                    guard let container = Container.plain(item) else { return nil }
                    containers.append(container)
                }
                request.containers = containers
            case "replicas":
                guard let replicas = value.integer else { return nil }
                request.replicas = replicas
            case "requestId":
                guard case .string(let requestID) = value else { return nil }
                request.requestId = requestID
            default:
                return nil
            }
        }
        return request
    }

    /// True for text of nothing but spaces and tabs (or nothing): what Foundation's
    /// `trimmingCharacters(in: .whitespaces)` leaves empty, for ASCII; other text is
    /// checked by it.
    static func isBlank(_ text: String) -> Bool {
        if text.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return false }
        return text.trimmingCharacters(in: .whitespaces).isEmpty
    }

    /// `path.name`, or `name` alone for a body that is one service (seed 000's).
    static func field(_ path: String, _ name: String) -> String { path.isEmpty ? name : path + "." + name }

    /// The specs, checked; `single` names the one container in error messages ("" for a
    /// body that is the service itself).
    func validated(single: String = "container", list listName: String = "containers") throws(NodeError) -> [ServiceSpec] {
        switch (container, containers) {
        case (let one?, nil): return [try spec(of: one, at: single)]
        case (nil, let many?):
            guard !many.isEmpty else { throw .invalid("containers is empty; give at least one container") }
            guard many.count <= Self.maxServices else { throw .invalid("containers has \(many.count) entries; at most \(Self.maxServices)") }
            var specs: [ServiceSpec] = []
            specs.reserveCapacity(many.count)
            for (offset, item) in many.enumerated() { specs.append(try spec(of: item, at: "\(listName)[\(offset)]")) }
            return specs
        case (.some, .some): throw .invalid("give either container or containers, not both")
        case (nil, nil):
            throw .invalid(#"missing field container (or containers), e.g. {"container": {"id": 5, "replicas": 25}}"#)
        }
    }

    /// A container's text fields, each at most 256 bytes, and those that may be left out but
    /// not given empty (lists made once, not per request).
    private enum TextField: String {
        case name, description, label, image

        func value(in item: Container) -> String? {
            switch self {
            case .name: item.name
            case .description: item.description
            case .label: item.label
            case .image: item.image
            }
        }

        static let all: [TextField] = [.name, .description, .label, .image]
        static let nonBlank: [TextField] = [.name, .image]
    }

    /// One container's spec, checked; `path` names it in error messages.
    private func spec(of item: Container, at path: String) throws(NodeError) -> ServiceSpec {
        let replicas: Int
        switch (item.replicas, self.replicas) {
        case (let inner?, let outer?) where inner != outer:
            throw .invalid("\(Self.field(path, "replicas")) (\(inner)) and replicas (\(outer)) disagree")
        case (let inner?, _): replicas = inner
        case (nil, let outer?): replicas = outer
        case (nil, nil): throw .invalid("missing field replicas in \(path) (or at the top level)")
        }
        guard replicas >= 1, replicas <= Self.maxReplicas else {
            throw .invalid("\(Self.field(path, "replicas")) must be a whole number from 1 to \(Self.maxReplicas), got \(replicas)")
        }
        let cpu = item.cpu ?? ServiceSpec.defaultCPU
        guard Self.cpuMillicores.contains(cpu) else { throw .invalid("\(Self.field(path, "cpu")) must be millicores from 1 to \(Self.cpuMillicores.upperBound), got \(cpu)") }
        let memory = item.memory ?? ServiceSpec.defaultMemory
        guard Self.memoryMB.contains(memory) else { throw .invalid("\(Self.field(path, "memory")) must be MB from 1 to \(Self.memoryMB.upperBound), got \(memory)") }
        for field in TextField.all where (field.value(in: item)?.utf8.count ?? 0) > 256 {
            throw .invalid("\(Self.field(path, field.rawValue)) is longer than 256 bytes")
        }
        for field in TextField.nonBlank where field.value(in: item).map(Self.isBlank) == true {
            throw .invalid("\(Self.field(path, field.rawValue)) is empty; leave it out or give one")
        }
        if let id = item.id, id < 0 { throw .invalid("\(Self.field(path, "id")) must be a whole number of at least 0, got \(id)") }
        return ServiceSpec(containerID: item.id, name: item.name ?? item.description ?? item.label ?? item.id.map { "container \($0)" },
                           description: item.description, label: item.label, image: item.image,
                           replicas: replicas, cpu: cpu, memory: memory,
                           publish: try PortRequest.parse(item.publish, field: Self.field(path, "publish")),
                           privatePort: try PortRequest.privatePort(item.privatePort, field: Self.field(path, "privatePort")))
    }
}

/// Seed 000's `POST /services` body: `{"image": "nginx", "publish": true | port}`, with
/// optional `name`, `replicas` (1 if not given), `cpu`, `memory`, `privatePort`, `detached`
/// (services always run detached here: `false` is refused) and `requestId`.
struct SimpleServiceRequest: Decodable {
    var image: String?
    var publish: JSONValue?
    var detached: Bool?
    var name: String?
    var replicas: Int?
    var cpu: Int?
    var memory: Int?
    var privatePort: Int?
    var requestId: String?

    static func spec(from body: [UInt8]) throws(NodeError) -> (spec: ServiceSpec, requestID: String?) {
        let request: SimpleServiceRequest
        do {
            request = try JSONBody.decodeStrictly(SimpleServiceRequest.self, from: body)
        } catch {
            throw .invalid(error.message)
        }
        guard let image = request.image, !image.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw .invalid(#"missing field image, e.g. {"image": "nginx", "publish": true}"#)
        }
        if request.detached == false { throw .invalid("detached must be true or left out: services run detached (nothing attaches to a simulated container)") }
        let item = ServiceRequest.Container(name: request.name ?? image, image: image, replicas: request.replicas ?? 1, cpu: request.cpu,
                                            memory: request.memory, publish: request.publish, privatePort: request.privatePort)
        let specs = try ServiceRequest(container: item, requestId: request.requestId).validated(single: "")
        return (specs[0], try NodeError.checkRequestID(request.requestId))
    }
}
