import Foundation

/// A simulated container: one replica of a service running on this node.
public struct SimulatedContainer: Codable, Sendable {
    public var id: String
    public var serviceID: Int
    public var name: String
    public var image: String
    public var status: String
    public var createdAt: Date
    /// Requested CPU (millicores) and memory (MB).
    public var cpuRequest: Int
    public var memoryRequest: Int
    /// Simulated use now.
    public var cpuUsage: Int
    public var memoryUsage: Int
}

/// Runs the replicas placed on this node as simulated containers with simulated CPU and
/// memory use (a bounded random walk around a share of their request). Thread-safe.
public final class ContainerRuntime: @unchecked Sendable {
    public let nodeID: UInt64
    public let resources: NodeResources
    private let lock = NSLock()
    private var containers: [String: SimulatedContainer] = [:]
    private var random = SystemRandomNumberGenerator()

    init(nodeID: UInt64, resources: NodeResources) {
        self.nodeID = nodeID
        self.resources = resources
    }

    /// Starts and stops containers so that each service has exactly its placed count here.
    func reconcile(_ placements: [(ServiceRecord, Int)]) {
        lock.withLock {
            var wanted: Set<String> = []
            for (service, count) in placements {
                for ordinal in 0..<count {
                    let id = "s\(service.id)-n\(nodeID)-\(ordinal)"
                    wanted.insert(id)
                    if containers[id] == nil {
                        containers[id] = SimulatedContainer(
                            id: id, serviceID: service.id, name: service.spec.name ?? "service \(service.id)",
                            image: service.spec.image ?? "simulated:latest", status: "running", createdAt: Date(),
                            cpuRequest: service.spec.cpu, memoryRequest: service.spec.memory,
                            cpuUsage: service.spec.cpu / 2, memoryUsage: service.spec.memory / 2)
                    }
                }
            }
            for id in containers.keys where !wanted.contains(id) { containers[id] = nil }
        }
    }

    /// Every container, with its simulated use refreshed.
    public func list() -> [SimulatedContainer] {
        lock.withLock {
            for id in containers.keys {
                guard var container = containers[id] else { continue }
                let cpuStep = max(1, container.cpuRequest / 10)
                container.cpuUsage = min(container.cpuRequest, max(container.cpuRequest / 10, container.cpuUsage + Int.random(in: -cpuStep...cpuStep, using: &random)))
                let memoryStep = max(1, container.memoryRequest / 20)
                container.memoryUsage = min(container.memoryRequest, max(container.memoryRequest / 4, container.memoryUsage + Int.random(in: -memoryStep...memoryStep, using: &random)))
                containers[id] = container
            }
            return containers.values.sorted { $0.id < $1.id }
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
