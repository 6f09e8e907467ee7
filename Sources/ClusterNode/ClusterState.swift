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
    public private(set) var services: [Int: ServiceRecord] = [:]
    /// The ID the next created service gets (IDs are assigned when applied, so alike everywhere).
    public private(set) var nextServiceID = 1
    /// Nodes the leader's reconcile loop marked unhealthy: nothing is placed on them.
    public private(set) var unhealthyNodes: Set<UInt64> = []
    /// Seed 001's containers by ID, and the ID the next one gets.
    public private(set) var containers: [Int: ContainerRecord] = [:]
    public private(set) var nextContainerID = 1
    /// The last log index applied.
    public private(set) var appliedIndex: UInt64 = 0
    /// Every member node's capacity (all alike); follows the membership entries applied.
    public private(set) var capacity: [UInt64: NodeResources]
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

        /// True when a request with `fingerprint` is another request than this one (a key
        /// reused with another body). An unknown fingerprint (0) matches anything.
        func isOtherRequest(than fingerprint: UInt64) -> Bool { self.fingerprint != 0 && self.fingerprint != fingerprint }
    }

    /// Results of recent client requests, so a retried request is applied once (thesis §6.3).
    private var requestResults: [String: RequestRecord] = [:]
    private var requestOrder: [String] = []
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
    private var usageByNode: [UInt64: NodeResources] = [:]

    /// Resources in use per node according to the applied state.
    public func usage() -> [UInt64: NodeResources] { usageByNode }

    /// Replaces `old` placement by `new` for a service needing `demand` per replica.
    private mutating func account(_ demand: NodeResources, removing old: [UInt64: Int], adding new: [UInt64: Int]) {
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
            if command.isContainerCommand { return earlier.services.first.map { .container($0) } ?? .rejected("container does not exist") }
            return .services(earlier.services)
        }
        switch command {
        case .createServices(let requestID, let planned):
            var created: [Int] = []
            for plan in planned {
                let id = nextServiceID
                nextServiceID += 1
                let decision = fitting(plan.decision, demand: plan.spec.demand, excluding: nil)
                services[id] = ServiceRecord(id: id, spec: plan.spec, placement: decision.replicas, pending: decision.pending,
                                             pendingReason: decision.pendingReason, index: entry.index.rawValue,
                                             term: entry.term.rawValue, updatedIndex: entry.index.rawValue, requestID: requestID)
                account(plan.spec.demand, removing: [:], adding: decision.replicas)
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
            let fitted = fitting(decision, demand: service.spec.demand, excluding: serviceID)
            account(service.spec.demand, removing: service.placement, adding: fitted.replicas)
            service.placement = fitted.replicas
            service.pending = fitted.pending
            service.pendingReason = fitted.pendingReason
            service.updatedIndex = entry.index.rawValue
            services[serviceID] = service
            remember(command, at: entry, [serviceID])
            return .services([serviceID])
        case .deleteService(_, let serviceID):
            guard let removed = services.removeValue(forKey: serviceID) else {
                remember(command, at: entry, [])
                return .rejected("service \(serviceID) does not exist")
            }
            account(removed.spec.demand, removing: removed.placement, adding: [:])
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
            services[serviceID]?.updatedIndex = entry.index.rawValue
            remember(command, at: entry, [serviceID])
            return .services([serviceID])
        case .autoscale(let serviceID, let decision, let placement):
            return applyAutoscale(serviceID, decision, placement, at: entry.index.rawValue)
        case .createContainer, .setContainerRunning, .deleteContainer:
            let outcome = applyContainer(command, at: entry)
            remember(command, at: entry, outcome.map { [$0] } ?? [])
            return outcome.map { .container($0) } ?? .rejected("container does not exist")
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
        }
    }

    /// A container command; returns the container's ID, or nil when it names none.
    private mutating func applyContainer(_ command: ClusterCommand, at entry: Entry) -> Int? {
        switch command {
        case .createContainer(let requestID, let spec, let node, let atMs):
            let id = nextContainerID
            nextContainerID += 1
            // Placed only where it fits now (a decision on a stale view is not trusted).
            let fitted = node.flatMap { node in
                fitting(Placement.Decision(replicas: [node: 1], pending: 0, pendingReason: nil), demand: spec.demand, excluding: nil).replicas[node] == 1 ? node : nil
            }
            var record = ContainerRecord(id: id, spec: spec, node: fitted, state: .created, history: [.init(state: .created, atMs: atMs)],
                                         index: entry.index.rawValue, requestID: requestID)
            if let fitted {
                account(spec.demand, removing: [:], adding: [fitted: 1])
                record.change(to: .running, atMs: atMs)
            }
            containers[id] = record
            return id
        case .setContainerRunning(_, let id, let isRunning, let atMs):
            guard var record = containers[id] else { return nil }
            // Idempotent; a container placed nowhere, or whose node left, cannot run.
            if record.node != nil, record.state != .exited { record.change(to: isRunning ? .running : .stopped, atMs: atMs) }
            containers[id] = record
            return id
        case .deleteContainer(_, let id):
            guard let record = containers.removeValue(forKey: id) else { return nil }
            if let node = record.node, record.state != .exited { account(record.spec.demand, removing: [node: 1], adding: [:]) }
            return id
        default:
            return nil
        }
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
            let fitted = fitting(placement, demand: service.spec.demand, excluding: serviceID)
            account(service.spec.demand, removing: service.placement, adding: fitted.replicas)
            service.placement = fitted.replicas
            service.pending = fitted.pending
            service.pendingReason = fitted.pendingReason
            service.updatedIndex = index
        }
        services[serviceID] = service
        return .services([serviceID])
    }

    private mutating func applyMoves(_ moves: [ServiceMove], at index: UInt64) {
        for move in moves {
            guard var service = services[move.serviceID] else { continue }
            let fitted = fitting(move.decision, demand: service.spec.demand, excluding: move.serviceID)
            account(service.spec.demand, removing: service.placement, adding: fitted.replicas)
            service.placement = fitted.replicas
            service.pending = fitted.pending
            service.pendingReason = fitted.pendingReason
            service.updatedIndex = index
            services[move.serviceID] = service
        }
    }

    /// The leader's decision, trimmed where a node would exceed its capacity or is unknown
    /// (a defence that keeps "capacity is never exceeded" true of the applied state even if
    /// a decision was made on a stale view); what is trimmed becomes pending.
    private func fitting(_ decision: Placement.Decision, demand: NodeResources, excluding serviceID: Int?) -> Placement.Decision {
        var usage = usageByNode
        if let serviceID, let current = services[serviceID] {
            for (node, count) in current.placement { usage[node] = (usage[node] ?? .zero) + current.spec.demand * -count }
        }
        var kept: [UInt64: Int] = [:]
        var trimmed = 0
        for (node, count) in decision.replicas.sorted(by: { $0.key < $1.key }) {
            guard let total = capacity[node] else {
                trimmed += count
                continue
            }
            var used = usage[node] ?? .zero
            var placed = 0
            while placed < count, used.fits(demand, within: total) {
                used = used + demand
                placed += 1
            }
            if placed > 0 { kept[node] = placed }
            trimmed += count - placed
        }
        guard trimmed > 0 else { return decision }
        return Placement.Decision(replicas: kept, pending: decision.pending + trimmed,
                                  pendingReason: decision.pendingReason ?? "insufficient capacity when applied: \(trimmed) replica(s) pending")
    }

    private mutating func remember(_ command: ClusterCommand, at entry: Entry, _ services: [Int]) {
        guard let requestID = command.requestID else { return }
        requestResults[requestID] = RequestRecord(fingerprint: command.requestFingerprint, services: services,
                                                  index: entry.index.rawValue, term: entry.term.rawValue)
        requestOrder.append(requestID)
        if requestOrder.count > Self.maxRememberedRequests + Self.maxRememberedRequests / 4 {
            // Forget the oldest quarter at once: amortized O(1) per request.
            let excess = requestOrder.count - Self.maxRememberedRequests
            for forgotten in requestOrder.prefix(excess) { requestResults.removeValue(forKey: forgotten) }
            requestOrder.removeFirst(excess)
        }
    }
}

/// The state machine as a snapshot: everything `apply` depends on, so that a node restored
/// from it applies the entries after it exactly as a node that applied every entry.
///
///     version u8 (1), applied index u64, next service ID u64, node resources,
///     capacity: count u32, node u64 ...; unhealthy: count u32, node u64 ...;
///     services: count u32, then per service its record;
///     remembered requests: count u32, then per request (oldest first) ID string, count u32, service IDs u64,
///     fingerprint u64, index u64, term u64 (the last three from version 2)
extension ClusterState {
    /// 2 adds each remembered request's fingerprint, index and term; 3 each service's load
    /// (a flag, then the pattern and its start); 4 each service's autoscaler (a flag, then
    /// its settings, memory and recent steps); 5 the containers at the end (next container
    /// ID u64, count u32, each record); 1 to 4 are still read.
    static let snapshotVersion: UInt8 = 5

    /// The bytes of this state for a snapshot.
    public func snapshotData() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(Self.snapshotVersion)
        writer.write(appliedIndex)
        writer.write(UInt64(nextServiceID))
        writer.write(nodeResources)
        writer.write(UInt32(capacity.count))
        for node in capacity.keys.sorted() { writer.write(node) }
        writer.write(UInt32(unhealthyNodes.count))
        for node in unhealthyNodes.sorted() { writer.write(node) }
        writer.write(UInt32(services.count))
        for service in services.values.sorted(by: { $0.id < $1.id }) { writer.write(service) }
        writer.write(UInt32(requestOrder.count))
        for requestID in requestOrder {
            writer.write(string: requestID)
            let result = requestResults[requestID] ?? RequestRecord(fingerprint: 0, services: [], index: 0, term: 0)
            writer.write(UInt32(result.services.count))
            for id in result.services { writer.write(UInt64(id)) }
            writer.write(result.fingerprint)
            writer.write(result.index)
            writer.write(result.term)
        }
        writer.write(UInt64(nextContainerID))
        writer.write(UInt32(containers.count))
        for record in containers.values.sorted(by: { $0.id < $1.id }) { writer.write(record) }
        return writer.bytes
    }

    /// Restores a state from `snapshotData()` bytes; throws when they are not one.
    public init(snapshotData bytes: [UInt8]) throws(ClusterCommandCodec.Malformed) {
        var reader = ByteReader(bytes[...])
        do {
            let version = try reader.readByte()
            guard (1...Self.snapshotVersion).contains(version) else {
                throw ClusterCommandCodec.Malformed(description: "unknown snapshot format \(version)")
            }
            let applied = try reader.readUInt64()
            let nextID = Int(try reader.readUInt64())
            self.nodeResources = try reader.readResources()
            var capacity: [UInt64: NodeResources] = [:]
            for _ in 0..<(try reader.readCount(limit: bytes.count)) { capacity[try reader.readUInt64()] = nodeResources }
            self.capacity = capacity
            for _ in 0..<(try reader.readCount(limit: bytes.count)) { unhealthyNodes.insert(try reader.readUInt64()) }
            for _ in 0..<(try reader.readCount(limit: bytes.count)) {
                let id = Int(try reader.readUInt64())
                let spec = try reader.readSpec()
                let decision = try reader.readDecision()
                var record = ServiceRecord(id: id, spec: spec, placement: decision.replicas, pending: decision.pending,
                                           pendingReason: decision.pendingReason, index: try reader.readUInt64(),
                                           term: try reader.readUInt64(), updatedIndex: try reader.readUInt64(),
                                           requestID: try reader.readString())
                if version >= 3, try reader.readByte() == 1 { record.load = try reader.readServiceLoad() }
                if version >= 4 { record.autoscaler = try reader.readAutoscalerState(limit: bytes.count) }
                services[id] = record
                account(spec.demand, removing: [:], adding: record.placement)
            }
            for _ in 0..<(try reader.readCount(limit: bytes.count)) {
                let requestID = try reader.readString()
                var result: [Int] = []
                for _ in 0..<(try reader.readCount(limit: bytes.count)) { result.append(Int(try reader.readUInt64())) }
                var record = RequestRecord(fingerprint: 0, services: result, index: 0, term: 0)
                if version >= 2 {
                    record.fingerprint = try reader.readUInt64()
                    record.index = try reader.readUInt64()
                    record.term = try reader.readUInt64()
                }
                requestResults[requestID] = record
                requestOrder.append(requestID)
            }
            if version >= 5 {
                nextContainerID = Int(try reader.readUInt64())
                for _ in 0..<(try reader.readCount(limit: bytes.count)) {
                    let record = try reader.readContainerRecord(limit: bytes.count)
                    containers[record.id] = record
                    if let node = record.node, record.state != .exited { account(record.spec.demand, removing: [:], adding: [node: 1]) }
                }
            }
            guard reader.isAtEnd else { throw ClusterCommandCodec.Malformed(description: "bytes left after the snapshot's state") }
            self.appliedIndex = applied
            self.nextServiceID = nextID
        } catch let error as ClusterCommandCodec.Malformed {
            throw error
        } catch {
            throw ClusterCommandCodec.Malformed(description: "snapshot state ends early")
        }
    }
}

extension ByteWriter {
    mutating func write(_ service: ServiceRecord) {
        write(UInt64(service.id))
        write(service.spec)
        write(Placement.Decision(replicas: service.placement, pending: service.pending, pendingReason: service.pendingReason))
        write(service.index)
        write(service.term)
        write(service.updatedIndex)
        write(string: service.requestID)
        if let load = service.load {
            write(UInt8(1))
            write(load)
        } else {
            write(UInt8(0))
        }
        write(optional: service.autoscaler)
    }

    mutating func write(_ resources: NodeResources) {
        write(UInt64(resources.slots))
        write(UInt64(resources.cpuMillicores))
        write(UInt64(resources.memoryMB))
    }
}

extension ByteReader {
    mutating func readResources() throws -> NodeResources {
        NodeResources(slots: Int(try readUInt64()), cpuMillicores: Int(try readUInt64()), memoryMB: Int(try readUInt64()))
    }

    /// A count that cannot exceed `limit` (the input's size bounds any honest count).
    mutating func readCount(limit: Int) throws -> Int {
        let count = Int(try readUInt32())
        guard count <= limit else { throw ClusterCommandCodec.Malformed(description: "count \(count) exceeds the input") }
        return count
    }
}
