import Foundation
import Transport

/// A `POST /service` body in any of seed 003's three shapes:
///
///     {"container": {"id": 5, "replicas": 25}}
///     {"containers": [{"description": "container 0", "replicas": 10}, ...]}
///     {"container": {"id": 5, "label": "web"}, "replicas": 25}
///
/// Each container may also give `image`, `name`, `cpu` (millicores per replica) and
/// `memory` (MB per replica). `requestId` (or the `Idempotency-Key` header) makes a retry
/// apply once.
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
    }

    var container: Container?
    var containers: [Container]?
    var replicas: Int?
    var requestId: String?

    /// Replicas one request may ask for per service: more than any experiment on one machine needs.
    public static let maxReplicas = 100_000
    /// Services one request may create.
    public static let maxServices = 1_000

    /// Parses and validates a body into service specs, or throws a 400 naming the field.
    public static func specs(from body: [UInt8]) throws(NodeError) -> (specs: [ServiceSpec], requestID: String?) {
        let request: ServiceRequest
        do {
            request = try JSONBody.decodeStrictly(ServiceRequest.self, from: body)
        } catch {
            throw .invalid(error.message)
        }
        return (try request.validated(), request.requestId)
    }

    func validated() throws(NodeError) -> [ServiceSpec] {
        let list: [(Container, String)]
        switch (container, containers) {
        case (let one?, nil): list = [(one, "container")]
        case (nil, let many?):
            guard !many.isEmpty else { throw .invalid("containers is empty; give at least one container") }
            guard many.count <= Self.maxServices else { throw .invalid("containers has \(many.count) entries; at most \(Self.maxServices)") }
            list = many.enumerated().map { ($0.element, "containers[\($0.offset)]") }
        case (.some, .some): throw .invalid("give either container or containers, not both")
        case (nil, nil):
            throw .invalid(#"missing field container (or containers), e.g. {"container": {"id": 5, "replicas": 25}}"#)
        }
        var specs: [ServiceSpec] = []
        for (item, path) in list {
            let replicas: Int
            switch (item.replicas, self.replicas) {
            case (let inner?, let outer?) where inner != outer:
                throw .invalid("\(path).replicas (\(inner)) and replicas (\(outer)) disagree")
            case (let inner?, _): replicas = inner
            case (nil, let outer?): replicas = outer
            case (nil, nil): throw .invalid("missing field replicas in \(path) (or at the top level)")
            }
            guard replicas >= 1, replicas <= Self.maxReplicas else {
                throw .invalid("\(path).replicas must be a whole number from 1 to \(Self.maxReplicas), got \(replicas)")
            }
            let cpu = item.cpu ?? ServiceSpec.defaultCPU
            guard cpu >= 1, cpu <= 256_000 else { throw .invalid("\(path).cpu must be millicores from 1 to 256000, got \(cpu)") }
            let memory = item.memory ?? ServiceSpec.defaultMemory
            guard memory >= 1, memory <= 1_048_576 else { throw .invalid("\(path).memory must be MB from 1 to 1048576, got \(memory)") }
            for (field, value) in [("name", item.name), ("description", item.description), ("label", item.label), ("image", item.image)] {
                if let value, value.utf8.count > 256 { throw .invalid("\(path).\(field) is longer than 256 bytes") }
            }
            for (field, value) in [("name", item.name), ("image", item.image)] where value?.trimmingCharacters(in: .whitespaces).isEmpty == true {
                throw .invalid("\(path).\(field) is empty; leave it out or give one")
            }
            if let id = item.id, id < 0 { throw .invalid("\(path).id must be a whole number of at least 0, got \(id)") }
            specs.append(ServiceSpec(containerID: item.id, name: item.name ?? item.description ?? item.label ?? item.id.map { "container \($0)" },
                                     description: item.description, label: item.label, image: item.image,
                                     replicas: replicas, cpu: cpu, memory: memory))
        }
        return specs
    }
}
