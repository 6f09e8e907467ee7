import Foundation
import Raft

/// The replicated desired state of one cluster: services, their placements and node
/// health. Every node applies the same committed commands in the same order and reaches
/// the same state; applying uses nothing but the command and the state.
public struct ClusterState: Sendable {
    /// What applying one entry did, for the client waiting on it.
    public enum Outcome: Sendable, Equatable {
        case services([Int])
        case rejected(String)
        case none
    }

    /// Every service by ID.
    public private(set) var services: [Int: ServiceRecord] = [:]
    /// The ID the next created service gets (IDs are assigned when applied, so alike everywhere).
    public private(set) var nextServiceID = 1
    /// Nodes the leader's reconcile loop marked unhealthy: nothing is placed on them.
    public private(set) var unhealthyNodes: Set<UInt64> = []
    /// The last log index applied.
    public private(set) var appliedIndex: UInt64 = 0
    /// Every node's capacity; the same on every node of the cluster.
    public let capacity: [UInt64: NodeResources]
    /// Results of recent client requests, so a retried request is applied once (thesis §6.3).
    private var requestResults: [String: [Int]] = [:]
    private var requestOrder: [String] = []
    /// Requests remembered for de-duplication: a client retries within seconds, not after ten thousand others.
    static let maxRememberedRequests = 10_000

    /// An empty state for nodes with `capacity`.
    public init(capacity: [UInt64: NodeResources]) {
        self.capacity = capacity
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
    public func result(ofRequest requestID: String) -> [Int]? { requestResults[requestID] }

    /// Applies one committed entry; `decoded` is its command when the caller decoded it already.
    public mutating func apply(_ entry: Entry, decoded: ClusterCommand? = nil) -> Outcome {
        precondition(entry.index.rawValue > appliedIndex, "applying \(entry.index) after \(appliedIndex)")
        appliedIndex = entry.index.rawValue
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
            return .services(earlier)
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
            remember(requestID, created)
            return .services(created)
        case .scaleService(let requestID, let serviceID, let replicas, let decision):
            guard var service = services[serviceID] else {
                remember(requestID, [])
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
            remember(requestID, [serviceID])
            return .services([serviceID])
        case .deleteService(let requestID, let serviceID):
            guard let removed = services.removeValue(forKey: serviceID) else {
                remember(requestID, [])
                return .rejected("service \(serviceID) does not exist")
            }
            account(removed.spec.demand, removing: removed.placement, adding: [:])
            remember(requestID, [serviceID])
            return .services([serviceID])
        case .setNodeHealth(let node, let isHealthy, let moves):
            if isHealthy { unhealthyNodes.remove(node) } else { unhealthyNodes.insert(node) }
            applyMoves(moves, at: entry.index.rawValue)
            return .none
        case .placePending(let moves):
            applyMoves(moves, at: entry.index.rawValue)
            return .none
        }
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

    private mutating func remember(_ requestID: String, _ result: [Int]) {
        requestResults[requestID] = result
        requestOrder.append(requestID)
        if requestOrder.count > Self.maxRememberedRequests + Self.maxRememberedRequests / 4 {
            // Forget the oldest quarter at once: amortized O(1) per request.
            let excess = requestOrder.count - Self.maxRememberedRequests
            for forgotten in requestOrder.prefix(excess) { requestResults.removeValue(forKey: forgotten) }
            requestOrder.removeFirst(excess)
        }
    }
}
