import Foundation
import Raft
import Transport

/// Seed 000's desired-state file, done through the log: the "vital" services a cluster must
/// always run. `PUT /desired-state` (the orchestrator sends the file when a cluster starts)
/// commits the list; the leader's reconcile loop then keeps one service per name as given:
/// created when missing (deleted, or never created), scaled back to the file's replica count,
/// replaced when its image, resources or port differ from the file. Services created through
/// the API are never touched (seed 000's scheduler killed them every ten seconds), and a
/// service dropped from the file is left running, as an ordinary service.
///
///     {"services": [{"name": "web", "image": "nginx:1.27", "replicas": 3, "publish": 8080}]}
///
/// Each service takes the fields of `POST /service`'s containers; `name` is required and
/// unique, `replicas` defaults to 1.
public enum DesiredState {
    /// The most vital services one cluster keeps.
    public static let maxServices = 100

    struct File: Decodable {
        var services: [ServiceRequest.Container]?
        var requestId: String?
    }

    /// Checks a desired-state document as a node will; throws naming the field.
    public static func check(_ bytes: [UInt8]) throws(NodeError) { _ = try specs(from: bytes) }

    /// Parses and checks a desired-state document; throws a 400 naming the field.
    static func specs(from body: [UInt8]) throws(NodeError) -> (specs: [ServiceSpec], requestID: String?) {
        let file: File
        do {
            file = try JSONBody.decodeStrictly(File.self, from: body)
        } catch {
            throw .invalid(error.message)
        }
        guard let items = file.services else { throw .invalid(#"missing field services, e.g. {"services": [{"name": "web", "image": "nginx", "replicas": 2}]}"#) }
        guard items.count <= maxServices else { throw .invalid("services has \(items.count) entries; at most \(maxServices)") }
        var names = Set<String>()
        for (index, item) in items.enumerated() {
            guard let name = item.name, !name.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw .invalid("services[\(index)].name is missing: a vital service is known by its name")
            }
            guard names.insert(name).inserted else { throw .invalid("services[\(index)].name \(JSONText.quote(name)) appears twice") }
            guard item.image != nil else { throw .invalid("services[\(index)].image is missing") }
        }
        let defaulted = items.map { item in
            var item = item
            item.replicas = item.replicas ?? 1
            return item
        }
        var specs: [ServiceSpec] = items.isEmpty ? [] : try ServiceRequest(containers: defaulted).validated(list: "services")
        for index in specs.indices { specs[index].vital = true }
        return (specs, try NodeError.checkRequestID(file.requestId))
    }

    /// Whether `service` is what `wanted` describes, replica count aside.
    static func matches(_ service: ServiceSpec, _ wanted: ServiceSpec) -> Bool {
        service.image == wanted.image && service.cpu == wanted.cpu && service.memory == wanted.memory && service.publish == wanted.publish
            && service.privatePort == wanted.privatePort
    }

    /// `GET /desired-state`: the file as committed, and each vital service as it is now.
    public struct View: Codable, Sendable {
        public struct Entry: Codable, Sendable {
            public var name: String
            public var image: String?
            public var replicas: Int
            public var publish: String
            /// The service that carries it now, if any, and how many of its replicas are placed.
            public var serviceId: Int?
            public var placed: Int
            /// `kept` (as the file says), `missing` (to be created), `scaling` (to be scaled
            /// back) or `replacing` (differs from the file).
            public var status: String
        }

        public var services: [Entry]
        public var appliedIndex: UInt64
        /// The leader's term when this was read.
        public var term: UInt64

        init(_ state: ClusterState, term: UInt64) {
            self.term = term
            services = state.vitalServices.keys.sorted().map { name in
                let wanted = state.vitalServices[name]!
                let current = state.vitalService(named: name)
                var status = "kept"
                if let current {
                    if !DesiredState.matches(current.spec, wanted) { status = "replacing" } else if current.spec.replicas != wanted.replicas { status = "scaling" }
                } else {
                    status = "missing"
                }
                return Entry(name: name, image: wanted.image, replicas: wanted.replicas, publish: wanted.publish.text,
                             serviceId: current?.id, placed: current?.placedCount ?? 0, status: status)
            }
            appliedIndex = state.appliedIndex
        }
    }
}

extension PortRequest {
    /// "none", "any" or the port.
    var text: String {
        switch self {
        case .none: "none"
        case .any: "any"
        case .fixed(let port): String(port)
        }
    }
}

extension ClusterState {
    /// The vital service carrying the desired state's `name` (the oldest, if a race made two).
    public func vitalService(named name: String) -> ServiceRecord? {
        vitalServiceIDs.sorted().lazy.compactMap { services[$0] }.first { $0.spec.name == name }
    }
}
