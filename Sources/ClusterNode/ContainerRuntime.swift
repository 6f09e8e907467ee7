import Foundation

/// A simulated container: one replica of a service running on this node.
public struct SimulatedContainer: Codable, Sendable {
    public var id: String
    public var serviceID: Int
    public var name: String
    public var image: String
    public var status: String
    /// When this node started it, in Unix seconds (the one time base of every answer).
    public var createdAt: Double
    /// Requested CPU (millicores) and memory (MB).
    public var cpuRequest: Int
    public var memoryRequest: Int
    /// Use now, from the load model (its service's offered load shared by its running
    /// replicas; no load set: no CPU and its memory request).
    public var cpuUsage: Int
    public var memoryUsage: Int
}

/// Runs the replicas placed on this node as simulated containers whose CPU and memory use
/// follow the load model (`ContainerLoad`), the same figures every node computes for the
/// same moment. Thread-safe.
public final class ContainerRuntime: @unchecked Sendable {
    public let nodeID: UInt64
    public let resources: NodeResources
    private let lock = NSLock()
    private var containers: [String: SimulatedContainer] = [:]
    /// Each service with containers here: its spec, its load and its placed count (all nodes).
    private var services: [Int: ServiceRecord] = [:]

    init(nodeID: UInt64, resources: NodeResources) {
        self.nodeID = nodeID
        self.resources = resources
    }

    /// Starts and stops containers of the given services so that each has exactly its placed
    /// count here (`nil` record: the service is gone). Only changed services are passed, so
    /// the cost follows the change, not the number of services.
    func reconcile(_ changes: [(serviceID: Int, record: ServiceRecord?)]) {
        lock.withLock {
            for (serviceID, record) in changes {
                let wanted = record?.placement[nodeID] ?? 0
                services[serviceID] = wanted > 0 ? record : nil
                let prefix = "s\(serviceID)-n\(nodeID)-"
                var ordinal = 0
                while containers[prefix + String(ordinal)] != nil { ordinal += 1 }
                // Ordinals are dense from 0: grow or shrink from the top.
                while ordinal > wanted {
                    ordinal -= 1
                    containers[prefix + String(ordinal)] = nil
                }
                guard let service = record else { continue }
                while ordinal < wanted {
                    let id = prefix + String(ordinal)
                    containers[id] = SimulatedContainer(
                        id: id, serviceID: service.id, name: service.spec.name ?? "service \(service.id)",
                        image: service.spec.image ?? "simulated:latest", status: "running", createdAt: Date().timeIntervalSince1970,
                        cpuRequest: service.spec.cpu, memoryRequest: service.spec.memory,
                        cpuUsage: 0, memoryUsage: service.spec.memory)
                    ordinal += 1
                }
            }
        }
    }

    /// Every container, with its use now.
    public func list() -> [SimulatedContainer] {
        let nowMs = LoadView.nowMs()
        return lock.withLock {
            containers.values.sorted { $0.id < $1.id }.map { container in
                var current = container
                if let service = services[container.serviceID] {
                    let use = service.replicaLoad(atMs: nowMs)
                    current.cpuUsage = use.cpuMillicores
                    current.memoryUsage = use.memoryMB
                }
                return current
            }
        }
    }

    /// One container, if it runs here.
    public func container(_ id: String) -> SimulatedContainer? { list().first { $0.id == id } }

    /// The node's simulated CPU use as a fraction of its capacity (the load it reports).
    public var load: Double {
        let used = list().reduce(0) { $0 + $1.cpuUsage }
        return resources.cpuMillicores == 0 ? 0 : Double(used) / Double(resources.cpuMillicores)
    }
}
