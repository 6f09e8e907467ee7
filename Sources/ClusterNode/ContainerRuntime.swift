import Foundation
import Transport

/// A simulated container on this node: one replica of a service, or one container created
/// on its own (seed 001's `POST /clusters/:id/containers`, seed 004's `POST /containers`).
public struct SimulatedContainer: Codable, Sendable {
    /// `s<service>-n<node>-<ordinal>` for a replica (stable while it stays on this node),
    /// `c<id>` for a container created on its own.
    public var id: String
    /// The service it is a replica of, or the container record it runs.
    public var serviceID: Int?
    public var containerID: Int?
    public var name: String
    public var image: String
    public var cmd: [String]
    /// The service it belongs to by name (a replica's service, or seed 004's `service`).
    public var service: String?
    /// created, running, stopped or exited.
    public var state: String
    /// When it was created, in Unix seconds: for a replica, when this node started it; for a
    /// container, the leader's time in the entry that created it (the same on every node).
    public var createdAt: Double
    /// When it last started running and when it stopped or exited (Unix seconds; nil: not yet).
    public var startedAt: Double? = nil
    public var finishedAt: Double? = nil
    /// Requested CPU (millicores) and memory (MB).
    public var cpuRequest: Int
    public var memoryRequest: Int
    /// The port it publishes on this node, and the one inside it.
    public var publicPort: Int?
    public var privatePort: Int
    /// Use now, from the load model (a replica: its service's offered load shared by its
    /// running replicas; a container on its own: idle, its memory request; not running: nothing).
    public var cpuUsage: Int
    public var memoryUsage: Int
    public var rxBytesPerSecond: Int
    public var txBytesPerSecond: Int

    /// CPU use as a percentage of its request (what the autoscaler reads).
    public var cpuPercent: Double { cpuRequest == 0 ? 0 : (Double(cpuUsage) * 1_000 / Double(cpuRequest)).rounded() / 10 }
}

extension SimulatedContainer {
    /// A container created on its own, as it runs on its node.
    init(_ record: ContainerRecord) {
        let isRunning = record.state == .running
        self.init(id: "c\(record.id)", serviceID: nil, containerID: record.id, name: record.spec.name ?? "c\(record.id)", image: record.spec.image,
                  cmd: record.spec.cmd, service: record.spec.service, state: record.state.rawValue,
                  createdAt: Double(record.history.first?.atMs ?? 0) / 1_000,
                  startedAt: record.history.last(where: { $0.state == .running }).map { Double($0.atMs) / 1_000 },
                  finishedAt: isRunning ? nil : record.history.last(where: { $0.state == .stopped || $0.state == .exited }).map { Double($0.atMs) / 1_000 },
                  cpuRequest: record.spec.cpu, memoryRequest: record.spec.memory,
                  publicPort: record.publicPort, privatePort: record.spec.privatePort,
                  cpuUsage: 0, memoryUsage: isRunning ? record.spec.memory : 0, rxBytesPerSecond: 0, txBytesPerSecond: 0)
    }
}

/// Runs what the replicated state places on this node as simulated containers: the
/// replicas of services, and containers created on their own. CPU, memory and network use
/// follow the load model (`ContainerLoad`), the same figures every node computes for the
/// same moment. Thread-safe.
public final class ContainerRuntime: @unchecked Sendable {
    public let nodeID: UInt64
    public let resources: NodeResources
    private let lock = AdaptiveLock()
    private var replicas: [String: SimulatedContainer] = [:]
    /// Each service with replicas here: its spec, its load and its placed count (all nodes).
    private var services: [Int: ServiceRecord] = [:]
    /// Containers created on their own and placed here, by ID.
    private var records: [Int: ContainerRecord] = [:]
    /// Replicas that left this node (scaled down, moved, their service deleted), newest
    /// last, kept as `exited` with the time for `GET /containers?all`.
    private var exited: [SimulatedContainer] = []
    static let maxExited = 100
    /// Each service's running replica ordinals here, and the replicas to stop first.
    private var ordinals: [Int: Set<Int>] = [:]
    private var stopFirst: Set<String> = []

    init(nodeID: UInt64, resources: NodeResources) {
        self.nodeID = nodeID
        self.resources = resources
    }

    /// Starts and stops replicas so that each changed service has exactly its placed count
    /// here (`nil` record: the service is gone), and follows the changed containers. Only
    /// changes are passed, so the cost follows the change, not the number of services.
    func reconcile(_ changes: [(serviceID: Int, record: ServiceRecord?)], _ containerChanges: [(containerID: Int, record: ContainerRecord?)] = []) {
        lock.withLock {
            for (serviceID, record) in changes { reconcileReplicas(of: serviceID, record) }
            for (containerID, record) in containerChanges {
                records[containerID] = record?.node == nodeID ? record : nil
            }
        }
    }

    private func reconcileReplicas(of serviceID: Int, _ record: ServiceRecord?) {
        let wanted = record?.placement[nodeID] ?? 0
        services[serviceID] = wanted > 0 ? record : nil
        let prefix = "s\(serviceID)-n\(nodeID)-"
        var running = ordinals[serviceID] ?? []
        // Fewer: the ones a client asked to remove (seed 004's DELETE) go first, then the highest.
        while running.count > wanted {
            let asked = running.filter { stopFirst.contains(prefix + String($0)) }.min()
            let ordinal = asked ?? running.max()!
            running.remove(ordinal)
            stopFirst.remove(prefix + String(ordinal))
            if var gone = replicas.removeValue(forKey: prefix + String(ordinal)) {
                gone.state = "exited"
                gone.finishedAt = Date().timeIntervalSince1970
                exited.append(gone)
                if exited.count > Self.maxExited { exited.removeFirst(exited.count - Self.maxExited) }
            }
        }
        defer { ordinals[serviceID] = running.isEmpty ? nil : running }
        guard let service = record else { return }
        // More: the lowest free ordinals.
        var ordinal = 0
        while running.count < wanted {
            while running.contains(ordinal) { ordinal += 1 }
            let id = prefix + String(ordinal)
            exited.removeAll { $0.id == id }  // the same ordinal running again is that container again
            let now = Date().timeIntervalSince1970
            replicas[id] = SimulatedContainer(
                id: id, serviceID: service.id, containerID: nil, name: id, image: service.spec.image ?? "simulated:latest", cmd: [],
                service: service.spec.name ?? "service \(service.id)", state: "running", createdAt: now, startedAt: now,
                cpuRequest: service.spec.cpu, memoryRequest: service.spec.memory, publicPort: service.publishedPort,
                privatePort: service.spec.privatePort, cpuUsage: 0, memoryUsage: 0, rxBytesPerSecond: 0, txBytesPerSecond: 0)
            running.insert(ordinal)
        }
    }

    /// Marks a replica's container to be the one that stops when its service has one
    /// replica fewer here (seed 004's DELETE of that container).
    func stopFirst(_ id: String) { lock.withLock { _ = stopFirst.insert(id) } }

    /// Every container here, with its use now, by ID.
    public func list() -> [SimulatedContainer] {
        let nowMs = LoadView.nowMs()
        return lock.withLock {
            var all = replicas.values.map { withUse($0, atMs: nowMs) }
            for record in records.values { all.append(SimulatedContainer(record)) }
            all += exited
            return all.sorted { $0.id < $1.id }
        }
    }

    /// A running replica with its service's load now (the caller holds the lock).
    private func withUse(_ replica: SimulatedContainer, atMs nowMs: Int64) -> SimulatedContainer {
        var current = replica
        if let service = services[replica.serviceID ?? 0] {
            let use = service.replicaLoad(atMs: nowMs)
            current.publicPort = service.publishedPort
            current.cpuUsage = use.cpuMillicores
            current.memoryUsage = use.memoryMB
            current.rxBytesPerSecond = use.rxBytesPerSecond
            current.txBytesPerSecond = use.txBytesPerSecond
        }
        return current
    }

    /// Forgets an exited replica's container (it is no longer listed); false if there is none.
    func forgetExited(_ id: String) -> Bool {
        lock.withLock {
            let before = exited.count
            exited.removeAll { $0.id == id }
            return exited.count < before
        }
    }

    /// One container, if it is here.
    public func container(_ id: String) -> SimulatedContainer? {
        let nowMs = LoadView.nowMs()
        return lock.withLock {
            if let replica = replicas[id] { return withUse(replica, atMs: nowMs) }
            if id.hasPrefix("c"), let number = Int(id.dropFirst()), let record = records[number] { return SimulatedContainer(record) }
            return exited.first { $0.id == id }
        }
    }

    /// The CPU use of `containers` (this node's, as `list()` gave them) as a fraction of its capacity.
    public func load(of containers: [SimulatedContainer]) -> Double {
        let used = containers.reduce(0) { $0 + $1.cpuUsage }
        return resources.cpuMillicores == 0 ? 0 : Double(used) / Double(resources.cpuMillicores)
    }

    /// The node's simulated cores (1000 millicores each, at least one) and each one's use in
    /// percent: every running container's CPU goes to the least busy core, the part above a
    /// full core spilling to the next least busy (a scheduler balancing threads). The same
    /// containers and load give the same figures on every node.
    public static func coreUse(of containers: [SimulatedContainer], millicores: Int) -> [Int] {
        let coreCount = max(1, (millicores + 999) / 1_000)
        var busy = Array(repeating: 0, count: coreCount)
        for container in containers where container.cpuUsage > 0 {
            var left = container.cpuUsage
            while left > 0 {
                let core = busy.indices.min { busy[$0] < busy[$1] }!
                guard busy[core] < 1_000 else { break }  // every core full: the rest waits
                let taken = min(left, 1_000 - busy[core])
                busy[core] += taken
                left -= taken
            }
        }
        return busy.map { ($0 + 5) / 10 }
    }
}
