import Foundation
import Raft

/// The replicated desired state of one cluster: services, their placements and node
/// health. Every node applies the same committed commands in the same order and reaches
/// the same state; applying uses nothing but the command and the state.
public struct ClusterState: Sendable {
    /// What applying one entry did, for the client waiting on it.
    public enum Outcome: Sendable, Equatable {
        case services([Int])
        /// The container a container command created or changed.
        case container(Int)
        case rejected(String)
        case none
    }

    /// Every service by ID.
    public internal(set) var services = ServiceTable()
    /// The ID the next created service gets (IDs are assigned when applied, so alike everywhere).
    public internal(set) var nextServiceID = 1
    /// Nodes the leader's reconcile loop marked unhealthy: nothing is placed on them.
    public internal(set) var unhealthyNodes: Set<UInt64> = []
    /// Seed 001's containers by ID, and the ID the next one gets.
    public internal(set) var containers: [Int: ContainerRecord] = [:]
    public internal(set) var nextContainerID = 1
    /// The desired-state file's services (seed 000's "vital" ones), by name: the leader's
    /// reconcile loop keeps one service of each, as given.
    public internal(set) var vitalServices: [String: ServiceSpec] = [:]
    /// Who holds each published port on each node (derived from services and containers:
    /// kept as they change, rebuilt when a snapshot is restored).
    public internal(set) var ports: [UInt64: [Int: PortHolder]] = [:]
    /// The services with an offered load (derived from their records: kept as loads are set
    /// and services deleted, rebuilt when a snapshot is restored), so the load model's view of
    /// each node costs the loaded services, not every service, on every placement.
    public internal(set) var loadedServiceIDs: Set<Int> = []
    /// The services with replicas waiting for room (derived likewise, kept by `place`), so
    /// the leader's look for pending replicas costs the pending services, not every service.
    public internal(set) var pendingServiceIDs: Set<Int> = []
    /// The services created as vital (derived likewise: a service's vital mark never
    /// changes), so the reconcile loop's comparison with the desired-state file costs the
    /// vital services, not every service, four times a second under the lock requests need.
    public internal(set) var vitalServiceIDs: Set<Int> = []
    /// The services with an autoscaler (derived likewise), so the leader's autoscaler loop
    /// looks at those, not at every service, each time it wakes.
    public internal(set) var autoscaledServiceIDs: Set<Int> = []
    /// The last log index applied.
    public internal(set) var appliedIndex: UInt64 = 0
    /// Every member node's capacity (all alike); follows the membership entries applied.
    public internal(set) var capacity: [UInt64: NodeResources]
    /// What one node offers.
    public let nodeResources: NodeResources
    /// What applying one client request did, remembered by its request ID.
    public struct RequestRecord: Sendable, Equatable {
        /// The request's `ClusterCommand.requestFingerprint` (0: unknown, from an older snapshot).
        public var fingerprint: UInt64
        /// The services it created or changed (none when it was rejected).
        public var services: [Int]
        /// The log entry that carried it.
        public var index: UInt64
        public var term: UInt64
        /// Why it changed nothing, when it could not apply (a pinned container that no
        /// longer fits its node, say).
        public var rejection: String? = nil

        /// True when a request with `fingerprint` is another request than this one (a key
        /// reused with another body). An unknown fingerprint (0) matches anything.
        func isOtherRequest(than fingerprint: UInt64) -> Bool { self.fingerprint != 0 && self.fingerprint != fingerprint }
    }

    /// Results of recent client requests, so a retried request is applied once (thesis §6.3).
    /// (Internal, not private: the snapshot codec in ClusterState+Snapshot.swift restores these.)
    var requestResults: [String: RequestRecord] = [:]
    var requestOrder: [String] = []
    /// Requests remembered for de-duplication: a client retries within seconds, not after ten thousand others.
    static let maxRememberedRequests = 10_000

    /// An empty state for the initial `members`, each offering `nodeResources`.
    public init(members: [UInt64], nodeResources: NodeResources) {
        self.nodeResources = nodeResources
        self.capacity = Dictionary(uniqueKeysWithValues: members.map { ($0, nodeResources) })
    }

    /// Nodes that still run replicas but are no longer members: the leader moves them.
    public var replicasOnRemovedNodes: [UInt64] {
        usageByNode.keys.filter { capacity[$0] == nil }.sorted()
    }

    /// Resources in use per node, kept as services change (so reading it costs nothing
    /// however many services there are).
    var usageByNode: [UInt64: NodeResources] = [:]

    /// Resources in use per node according to the applied state.
    public func usage() -> [UInt64: NodeResources] { usageByNode }

    /// Replaces `old` placement by `new` for a service needing `demand` per replica.
    mutating func account(_ demand: NodeResources, removing old: [UInt64: Int], adding new: [UInt64: Int]) {
        for (node, count) in old { usageByNode[node] = (usageByNode[node] ?? .zero) + demand * -count }
        for (node, count) in new { usageByNode[node] = (usageByNode[node] ?? .zero) + demand * count }
        for (node, resources) in usageByNode where resources == .zero { usageByNode[node] = nil }
    }

    /// The services created by request `requestID`, if it was applied.
    public func result(ofRequest requestID: String) -> [Int]? { requestResults[requestID]?.services }

    /// What request `requestID` did when it was applied, if it was.
    public func record(ofRequest requestID: String) -> RequestRecord? { requestResults[requestID] }

    /// True when `requestID` was applied for a request other than the one with `fingerprint`
    /// (a client bug: the key is reused with another body).
    public func isReused(_ requestID: String, withOtherThan fingerprint: UInt64) -> Bool {
        requestResults[requestID]?.isOtherRequest(than: fingerprint) ?? false
    }

    /// Applies one committed entry; `decoded` is its command when the caller decoded it already.
    public mutating func apply(_ entry: Entry, decoded: ClusterCommand? = nil) -> Outcome {
        precondition(entry.index.rawValue > appliedIndex, "applying \(entry.index) after \(appliedIndex)")
        appliedIndex = entry.index.rawValue
        if entry.kind == .membership, let membership = Membership(encoded: entry.data) {
            // Removed nodes take no new replicas; the leader moves the ones they have.
            capacity = Dictionary(uniqueKeysWithValues: membership.members.map { ($0.rawValue, nodeResources) })
            unhealthyNodes.formIntersection(capacity.keys)
            exitContainers(onNodesOtherThan: capacity)
            return .none
        }
        guard entry.kind == .command else { return .none }
        let command: ClusterCommand
        if let decoded {
            command = decoded
        } else {
            do {
                command = try ClusterCommandCodec.decode(entry.data)
            } catch {
                // Every node fails the same way on the same bytes, so state stays identical.
                return .rejected("undecodable command at index \(entry.index): \(error)")
            }
        }
        if let requestID = command.requestID, let earlier = requestResults[requestID] {
            // A retry applies once; the same key with another request changes nothing either.
            guard !earlier.isOtherRequest(than: command.requestFingerprint) else {
                return .rejected("requestId \(requestID) was already used for a different request")
            }
            if command.isContainerCommand { return earlier.services.first.map { .container($0) } ?? .rejected(earlier.rejection ?? "container does not exist") }
            return .services(earlier.services)
        }
        switch command {
        case .createServices(let requestID, let planned):
            var created: [Int] = []
            for plan in planned {
                let id = nextServiceID
                nextServiceID += 1
                var service = ServiceRecord(id: id, spec: plan.spec, placement: [:], pending: 0, pendingReason: nil, index: entry.index.rawValue,
                                            term: entry.term.rawValue, updatedIndex: entry.index.rawValue, requestID: requestID)
                service.publishedPort = freePort(for: plan.spec.publish, on: nil)
                place(&service, plan.decision, at: entry.index.rawValue)
                services[id] = service
                if plan.spec.vital { vitalServiceIDs.insert(id) }
                created.append(id)
            }
            remember(command, at: entry, created)
            return .services(created)
        case .scaleService(_, let serviceID, let replicas, let decision):
            guard var service = services[serviceID] else {
                remember(command, at: entry, [])
                return .rejected("service \(serviceID) does not exist")
            }
            service.spec.replicas = replicas
            place(&service, decision, at: entry.index.rawValue)
            services[serviceID] = service
            remember(command, at: entry, [serviceID])
            return .services([serviceID])
        case .deleteService(_, let serviceID):
            guard var removed = services.removeValue(forKey: serviceID) else {
                remember(command, at: entry, [])
                return .rejected("service \(serviceID) does not exist")
            }
            loadedServiceIDs.remove(serviceID)
            autoscaledServiceIDs.remove(serviceID)
            vitalServiceIDs.remove(serviceID)
            place(&removed, Placement.Decision(replicas: [:], pending: 0, pendingReason: nil), at: entry.index.rawValue)
            remember(command, at: entry, [serviceID])
            return .services([serviceID])
        case .setNodeHealth(let node, let isHealthy, let moves):
            if isHealthy || capacity[node] == nil { unhealthyNodes.remove(node) } else { unhealthyNodes.insert(node) }
            applyMoves(moves, at: entry.index.rawValue)
            return .none
        case .placePending(let moves):
            applyMoves(moves, at: entry.index.rawValue)
            return .none
        case .setServiceLoad(_, let serviceID, let load):
            guard services[serviceID] != nil else {
                remember(command, at: entry, [])
                return .rejected("service \(serviceID) does not exist")
            }
            services[serviceID]?.load = load
            loadedServiceIDs.insert(serviceID)
            services[serviceID]?.updatedIndex = entry.index.rawValue
            remember(command, at: entry, [serviceID])
            return .services([serviceID])
        case .setAutoscaler(_, let serviceID, let spec):
            guard let service = services[serviceID] else {
                remember(command, at: entry, [])
                return .rejected("service \(serviceID) does not exist")
            }
            if let spec, var current = service.autoscaler {
                current.change(to: spec, replicas: service.spec.replicas)  // the controller keeps its memory and history
                services[serviceID]?.autoscaler = current
            } else {
                services[serviceID]?.autoscaler = spec.map { AutoscalerState(spec: $0, replicas: service.spec.replicas) }
            }
            if spec == nil { autoscaledServiceIDs.remove(serviceID) } else { autoscaledServiceIDs.insert(serviceID) }
            services[serviceID]?.updatedIndex = entry.index.rawValue
            remember(command, at: entry, [serviceID])
            return .services([serviceID])
        case .autoscale(let serviceID, let decision, let placement):
            return applyAutoscale(serviceID, decision, placement, at: entry.index.rawValue)
        case .createContainer, .setContainerRunning, .deleteContainer:
            switch applyContainer(command, at: entry) {
            case .success(let id):
                remember(command, at: entry, [id])
                return .container(id)
            case .failure(let refusal):
                remember(command, at: entry, [], rejection: refusal.reason)
                return .rejected(refusal.reason)
            }
        case .setDesiredState(_, let specs):
            vitalServices = Dictionary(specs.compactMap { spec in spec.name.map { ($0, spec) } }, uniquingKeysWith: { _, last in last })
            remember(command, at: entry, [])
            return .none
        }
    }

    /// Containers on nodes that left the cluster exit and give up their reservation (the
    /// time of the change is that of their last one: applying has no clock).
    private mutating func exitContainers(onNodesOtherThan members: [UInt64: NodeResources]) {
        for (id, record) in containers.sorted(by: { $0.key < $1.key }) {
            guard let node = record.node, members[node] == nil, record.state != .exited else { continue }
            var exited = record
            exited.change(to: .exited, atMs: record.history.last?.atMs ?? 0)
            containers[id] = exited
            account(record.spec.demand, removing: [node: 1], adding: [:])
            if let port = record.publicPort { release(port, on: node, by: .container(id)) }
        }
    }

    /// Why a container command changed nothing.
    struct ContainerRefusal: Error {
        var reason: String
    }

    /// A container command; returns the container's ID.
    private mutating func applyContainer(_ command: ClusterCommand, at entry: Entry) -> Result<Int, ContainerRefusal> {
        switch command {
        case .createContainer(let requestID, let spec, let node, let pinned, let atMs):
            let id = nextContainerID
            // Placed only where it fits now, its port included (a decision on a stale view is not trusted).
            var port: Int?
            var refusal: String?
            if let node {
                port = freePort(for: spec.publish, on: node)
                refusal = containerRefusal(spec, port: port, on: node, id: id)
            }
            if pinned, let reason = refusal ?? (node == nil ? "no node named" : nil) { return .failure(ContainerRefusal(reason: reason)) }
            let placed = refusal == nil ? node : nil
            nextContainerID += 1
            var record = ContainerRecord(id: id, spec: spec, node: placed, state: .created, history: [.init(state: .created, atMs: atMs)],
                                         index: entry.index.rawValue, requestID: requestID)
            if let placed {
                account(spec.demand, removing: [:], adding: [placed: 1])
                if let port {
                    record.publicPort = port
                    hold(port, on: placed, by: .container(id))
                }
                record.change(to: .running, atMs: atMs)
            }
            containers[id] = record
            return .success(id)
        case .setContainerRunning(_, let id, let isRunning, let atMs):
            guard var record = containers[id] else { return .failure(ContainerRefusal(reason: "container \(id) does not exist")) }
            // Idempotent; a container placed nowhere, or whose node left, cannot run.
            if record.node != nil, record.state != .exited { record.change(to: isRunning ? .running : .stopped, atMs: atMs) }
            containers[id] = record
            return .success(id)
        case .deleteContainer(_, let id):
            guard let record = containers.removeValue(forKey: id) else { return .failure(ContainerRefusal(reason: "container \(id) does not exist")) }
            if let node = record.node, record.state != .exited {
                account(record.spec.demand, removing: [node: 1], adding: [:])
                if let port = record.publicPort { release(port, on: node, by: .container(id)) }
            }
            return .success(id)
        default:
            return .failure(ContainerRefusal(reason: "not a container command"))
        }
    }

    /// Why a container needing `spec` (publishing `port`) cannot go on `node` now, or nil when it can.
    func containerRefusal(_ spec: ContainerSpec, port: Int?, on node: UInt64, id: Int) -> String? {
        guard let total = capacity[node] else { return "\(address(node)) is not a member of the cluster" }
        if spec.publish != .none {
            guard let port else { return "no free port on \(address(node)) in \(PortRequest.automatic)" }
            if !isPortFree(port, on: node, for: .container(id)), let holder = ports[node]?[port] { return "port \(port) on \(address(node)) is taken by \(holder)" }
        }
        guard (usageByNode[node] ?? .zero).fits(spec.demand, within: total) else {
            return "\(address(node)) has no room for it (it needs 1 slot, \(spec.cpu)m CPU, \(spec.memory) MB)"
        }
        return nil
    }

    /// One autoscaler step: its memory and history recorded, and the new count placed. A
    /// step not newer than the last one (an old leader's, committed late) changes nothing.
    private mutating func applyAutoscale(_ serviceID: Int, _ decision: AutoscalerDecision, _ placement: Placement.Decision?,
                                         at index: UInt64) -> Outcome {
        guard var service = services[serviceID], var autoscaler = service.autoscaler else {
            return .rejected("service \(serviceID) has no autoscaler")
        }
        guard decision.atMs > (autoscaler.lastAtMs ?? .min), decision.fromReplicas == service.spec.replicas else {
            return .rejected("autoscaler step for service \(serviceID) is stale")
        }
        autoscaler.record(decision)
        service.autoscaler = autoscaler
        if let placement, decision.toReplicas != decision.fromReplicas {
            service.spec.replicas = decision.toReplicas
            place(&service, placement, at: index)
        }
        services[serviceID] = service
        return .services([serviceID])
    }

    private mutating func applyMoves(_ moves: [ServiceMove], at index: UInt64) {
        for move in moves {
            guard var service = services[move.serviceID] else { continue }
            place(&service, move.decision, at: index)
            services[move.serviceID] = service
        }
    }

    /// Places `service` as `decision` says, as far as it fits: its reservations and its
    /// published port move with it, and what does not fit is pending. The one way a
    /// service's placement changes (the service itself is stored by the caller).
    mutating func place(_ service: inout ServiceRecord, _ decision: Placement.Decision, at index: UInt64) {
        let fitted = fitting(decision, for: service)
        account(service.spec.demand, removing: service.placement, adding: fitted.replicas)
        if let port = service.publishedPort {
            for node in service.placement.keys where fitted.replicas[node] == nil { release(port, on: node, by: .service(service.id)) }
            for node in fitted.replicas.keys { hold(port, on: node, by: .service(service.id)) }
        }
        service.placement = fitted.replicas
        service.pending = fitted.pending
        if fitted.pending > 0 { pendingServiceIDs.insert(service.id) } else { pendingServiceIDs.remove(service.id) }
        service.pendingReason = fitted.pendingReason
        service.updatedIndex = index
    }

    /// The leader's decision, trimmed where a node would exceed its capacity, is unknown, or
    /// has the service's published port taken (a published service runs at most one replica
    /// per node): a defence that keeps "capacity is never exceeded" and "a port has one
    /// holder" true of the applied state even if a decision was made on a stale view; what
    /// is trimmed becomes pending.
    private func fitting(_ decision: Placement.Decision, for service: ServiceRecord) -> Placement.Decision {
        var usage = usageByNode
        for (node, count) in service.placement { usage[node] = (usage[node] ?? .zero) + service.spec.demand * -count }
        let demand = service.spec.demand
        var kept: [UInt64: Int] = [:]
        var trimmed = 0
        var portTaken: [String] = []
        for (node, count) in decision.replicas.sorted(by: { $0.key < $1.key }) {
            guard let total = capacity[node] else {
                trimmed += count
                continue
            }
            var wanted = count
            if service.spec.publish != .none {
                guard let port = service.publishedPort, isPortFree(port, on: node, for: .service(service.id)) else {
                    trimmed += count
                    portTaken.append(address(node))
                    continue
                }
                wanted = min(count, 1)
                trimmed += count - wanted
            }
            var used = usage[node] ?? .zero
            var placed = 0
            while placed < wanted, used.fits(demand, within: total) {
                used = used + demand
                placed += 1
            }
            if placed > 0 { kept[node] = placed }
            trimmed += wanted - placed
        }
        guard trimmed > 0 else { return decision }
        var reason = decision.pendingReason ?? "insufficient capacity when applied: \(trimmed) replica(s) pending"
        if !portTaken.isEmpty {
            reason = "port \(service.publishedPort.map(String.init) ?? "(none free)") is taken on \(portTaken.joined(separator: ", ")): \(trimmed) replica(s) pending"
        }
        return Placement.Decision(replicas: kept, pending: decision.pending + trimmed, pendingReason: reason)
    }

    private mutating func remember(_ command: ClusterCommand, at entry: Entry, _ services: [Int], rejection: String? = nil) {
        guard let requestID = command.requestID else { return }
        requestResults[requestID] = RequestRecord(fingerprint: command.requestFingerprint, services: services,
                                                  index: entry.index.rawValue, term: entry.term.rawValue, rejection: rejection)
        requestOrder.append(requestID)
        if requestOrder.count > Self.maxRememberedRequests + Self.maxRememberedRequests / 4 {
            // Forget the oldest quarter at once: amortized O(1) per request.
            let excess = requestOrder.count - Self.maxRememberedRequests
            for forgotten in requestOrder.prefix(excess) { requestResults.removeValue(forKey: forgotten) }
            requestOrder.removeFirst(excess)
        }
    }
}
