import Raft

/// What a client asks for: one service with a replica count and per-replica resources.
/// Built from any of seed 003's three payload shapes (see `ServiceRequest`).
public struct ServiceSpec: Codable, Sendable, Equatable {
    /// The seed's container `id`, if given.
    public var containerID: Int?
    public var name: String?
    public var description: String?
    public var label: String?
    public var image: String?
    public var replicas: Int
    /// CPU per replica, in millicores.
    public var cpu: Int
    /// Memory per replica, in MB.
    public var memory: Int
    /// The port each replica publishes on its node (seed 000's `publish`); none by default.
    public var publish: PortRequest = .none
    /// The port inside each replica that `publish` maps to.
    public var privatePort: Int = 80
    /// Set on the services of the desired-state file: the reconcile loop puts them back.
    public var vital: Bool = false

    /// CPU (millicores) and memory (MB) of a replica that does not say.
    public static let defaultCPU = 100
    public static let defaultMemory = 64

    public init(containerID: Int? = nil, name: String? = nil, description: String? = nil, label: String? = nil,
                image: String? = nil, replicas: Int, cpu: Int = defaultCPU, memory: Int = defaultMemory,
                publish: PortRequest = .none, privatePort: Int = 80, vital: Bool = false)
    {
        self.containerID = containerID
        self.name = name
        self.description = description
        self.label = label
        self.image = image
        self.replicas = replicas
        self.cpu = cpu
        self.memory = memory
        self.publish = publish
        self.privatePort = privatePort
        self.vital = vital
    }

    /// The resources one replica needs.
    public var demand: NodeResources { NodeResources(slots: 1, cpuMillicores: cpu, memoryMB: memory) }
}

/// A service in the replicated state: what was asked and where its replicas run.
public struct ServiceRecord: Codable, Sendable, Equatable {
    public var id: Int
    public var spec: ServiceSpec
    /// Node ID (port) → replicas placed there.
    public var placement: [UInt64: Int]
    public var pending: Int
    public var pendingReason: String?
    /// The log entry that created it, and its term.
    public var index: UInt64
    public var term: UInt64
    /// The last entry that changed it.
    public var updatedIndex: UInt64
    public var requestID: String
    /// The offered load, once one was set (`PUT .../load`); none means no load.
    public var load: ServiceLoad? = nil
    /// The autoscaler, while one is set.
    public var autoscaler: AutoscalerState? = nil
    /// The port its replicas publish, once resolved (`spec.publish` `.any` is picked on apply).
    public var publishedPort: Int? = nil

    public var placedCount: Int { placement.values.reduce(0, +) }
}

/// A change of the cluster's desired state, as stored in a log entry. Placement decisions
/// travel inside the command, so every node applies the same decision.
public enum ClusterCommand: Codable, Sendable, Equatable {
    /// New services with their placements (one client request).
    case createServices(requestID: String, services: [PlannedService])
    /// A new replica count and placement for a service.
    case scaleService(requestID: String, serviceID: Int, replicas: Int, decision: Placement.Decision)
    case deleteService(requestID: String, serviceID: Int)
    /// Node health and the placements that move because of it.
    case setNodeHealth(node: UInt64, isHealthy: Bool, moves: [ServiceMove])
    /// Pending replicas placed now that capacity appeared.
    case placePending(moves: [ServiceMove])
    /// A service's offered load (its pattern, and when the leader set it).
    case setServiceLoad(requestID: String, serviceID: Int, load: ServiceLoad)
    /// Sets (or, with nil, removes) a service's autoscaler.
    case setAutoscaler(requestID: String, serviceID: Int, spec: AutoscalerSpec?)
    /// One step of a service's autoscaler, with the placement of the new count when it changes.
    case autoscale(serviceID: Int, decision: AutoscalerDecision, placement: Placement.Decision?)
    /// One container (seed 001) on the node the leader picked (nil: none fits), created at `atMs`.
    /// `pinned` (seed 004's create on a node): that node or nothing, the request is refused.
    case createContainer(requestID: String, spec: ContainerSpec, node: UInt64?, pinned: Bool, atMs: Int64)
    /// A container's desired state: running or stopped, from `atMs`.
    case setContainerRunning(requestID: String, containerID: Int, isRunning: Bool, atMs: Int64)
    case deleteContainer(requestID: String, containerID: Int)
    /// The desired-state file's services (each named, marked vital): the reconcile loop keeps them.
    case setDesiredState(requestID: String, services: [ServiceSpec])

    /// What the client asked for, as a 64-bit FNV-1a hash of its canonical bytes (the
    /// leader's placement decision left out): a request ID reused with another request
    /// has another fingerprint. The same on every node and in every process.
    public var requestFingerprint: UInt64 {
        var writer = ByteWriter(capacity: 128)
        switch self {
        case .createServices(_, let services):
            writer.write(UInt8(1))
            for plan in services { writer.write(plan.spec) }
        case .scaleService(_, let serviceID, let replicas, _):
            writer.write(UInt8(2))
            writer.write(UInt64(serviceID))
            writer.write(UInt64(replicas))
        case .deleteService(_, let serviceID):
            writer.write(UInt8(3))
            writer.write(UInt64(serviceID))
        case .setServiceLoad(_, let serviceID, let load):
            writer.write(UInt8(4))
            writer.write(UInt64(serviceID))
            writer.write(load.pattern)
        case .setAutoscaler(_, let serviceID, let spec):
            writer.write(UInt8(5))
            writer.write(UInt64(serviceID))
            writer.write(optional: spec)
        case .createContainer(_, let spec, let node, let pinned, _):
            writer.write(UInt8(6))
            writer.write(spec)
            if pinned { writer.write(node ?? 0) }
        case .setContainerRunning(_, let containerID, let isRunning, _):
            writer.write(UInt8(7))
            writer.write(UInt64(containerID))
            writer.write(UInt8(isRunning ? 1 : 0))
        case .deleteContainer(_, let containerID):
            writer.write(UInt8(8))
            writer.write(UInt64(containerID))
        case .setDesiredState(_, let services):
            writer.write(UInt8(9))
            for spec in services { writer.write(spec) }
        case .setNodeHealth, .placePending, .autoscale:
            return 0
        }
        return FNV1a.hash(writer.bytes)
    }

    /// True for seed 001's container commands (their request records hold a container ID).
    public var isContainerCommand: Bool {
        switch self {
        case .createContainer, .setContainerRunning, .deleteContainer: true
        default: false
        }
    }

    /// The client request this command carries, if any (for de-duplication).
    public var requestID: String? {
        switch self {
        case .createServices(let id, _), .scaleService(let id, _, _, _), .deleteService(let id, _), .setServiceLoad(let id, _, _),
             .setAutoscaler(let id, _, _), .createContainer(let id, _, _, _, _), .setContainerRunning(let id, _, _, _),
             .deleteContainer(let id, _), .setDesiredState(let id, _): id
        case .setNodeHealth, .placePending, .autoscale: nil
        }
    }
}

/// A service's spec with the leader's placement decision.
public struct PlannedService: Codable, Sendable, Equatable {
    public var spec: ServiceSpec
    public var decision: Placement.Decision

    public init(spec: ServiceSpec, decision: Placement.Decision) {
        self.spec = spec
        self.decision = decision
    }
}

/// A service's new placement.
public struct ServiceMove: Codable, Sendable, Equatable {
    public var serviceID: Int
    public var decision: Placement.Decision

    public init(serviceID: Int, decision: Placement.Decision) {
        self.serviceID = serviceID
        self.decision = decision
    }
}
