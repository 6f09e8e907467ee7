import Raft

/// What one node offers to replicas.
public struct NodeResources: Codable, Sendable, Equatable {
    /// Replicas the node can run at once.
    public var slots: Int
    /// CPU in millicores.
    public var cpuMillicores: Int
    /// Memory in MB.
    public var memoryMB: Int

    public init(slots: Int, cpuMillicores: Int, memoryMB: Int) {
        self.slots = slots
        self.cpuMillicores = cpuMillicores
        self.memoryMB = memoryMB
    }

    /// The default node for `slots` replicas: enough CPU and memory that exactly `slots`
    /// default-sized replicas (100m, 64 MB) fit, so a cluster's `capacity` means what it says.
    public static func standard(slots: Int) -> NodeResources {
        NodeResources(slots: slots, cpuMillicores: slots * ServiceSpec.defaultCPU, memoryMB: slots * ServiceSpec.defaultMemory)
    }

    public static let zero = NodeResources(slots: 0, cpuMillicores: 0, memoryMB: 0)

    public static func + (lhs: NodeResources, rhs: NodeResources) -> NodeResources {
        NodeResources(slots: lhs.slots + rhs.slots, cpuMillicores: lhs.cpuMillicores + rhs.cpuMillicores, memoryMB: lhs.memoryMB + rhs.memoryMB)
    }

    public static func * (lhs: NodeResources, count: Int) -> NodeResources {
        NodeResources(slots: lhs.slots * count, cpuMillicores: lhs.cpuMillicores * count, memoryMB: lhs.memoryMB * count)
    }

    func fits(_ demand: NodeResources, within capacity: NodeResources) -> Bool {
        slots + demand.slots <= capacity.slots && cpuMillicores + demand.cpuMillicores <= capacity.cpuMillicores
            && memoryMB + demand.memoryMB <= capacity.memoryMB
    }
}

/// Replica placement by the leader (DESIGN.md, "The replicated state machine").
///
/// Greedy, one replica at a time, onto the healthy node with the best score: the mean of
/// its free CPU, memory and slot fractions after placing (Kubernetes' least-allocated).
/// A node's capacity is never
/// exceeded; replicas that fit nowhere are pending, with a reason; ties go to the lowest
/// node ID, so the same inputs always give the same placement.
public enum Placement {
    /// The outcome for one service.
    public struct Decision: Codable, Sendable, Equatable {
        /// Replicas per node (node ID → count); only nodes with at least one.
        public var replicas: [UInt64: Int]
        /// Replicas that fit nowhere.
        public var pending: Int
        public var pendingReason: String?

        public init(replicas: [UInt64: Int], pending: Int, pendingReason: String?) {
            self.replicas = replicas
            self.pending = pending
            self.pendingReason = pendingReason
        }

        public var placedCount: Int { replicas.values.reduce(0, +) }
    }

    /// Places `count` replicas needing `demand` each, given every node's capacity, what is
    /// already in use on it (committed plus this leader's uncommitted placements) and the
    /// nodes that may take replicas now. `usage` is updated with what was placed.
    ///
    /// `cpuInUse` is what the load model says each node's replicas use now (millicores): a
    /// node busier than its reservations scores by its use, so new replicas go where the
    /// CPU is actually free. It never decides whether a replica fits: reservations do.
    /// `onePerNode` (a service that publishes a port) puts at most one replica on a node.
    public static func place(count: Int, demand: NodeResources, capacity: [UInt64: NodeResources],
                             usage: inout [UInt64: NodeResources], healthy: Set<UInt64>, cpuInUse: [UInt64: Int] = [:],
                             onePerNode: Bool = false) -> Decision
    {
        precondition(count >= 0, "replica count \(count) is negative")
        var placed: [UInt64: Int] = [:]
        // One array, sorted in place (filtering and then sorting made two per placement).
        var candidates: [UInt64] = []
        candidates.reserveCapacity(capacity.count)
        for node in capacity.keys where healthy.contains(node) { candidates.append(node) }
        candidates.sort()
        for _ in 0..<count {
            var best: (node: UInt64, score: Double)?
            for node in candidates {
                let total = capacity[node]!
                let used = usage[node] ?? .zero
                guard used.fits(demand, within: total), !onePerNode || placed[node] == nil else { continue }
                let after = used + demand
                let busyCPU = max(after.cpuMillicores, (cpuInUse[node] ?? 0) + demand.cpuMillicores)
                let free = (fraction(total.slots - after.slots, of: total.slots)
                    + fraction(total.cpuMillicores - busyCPU, of: total.cpuMillicores)
                    + fraction(total.memoryMB - after.memoryMB, of: total.memoryMB)) / 3
                // Strictly greater: equal scores keep the lower node ID (candidates are sorted).
                if best == nil || free > best!.score + 1e-12 { best = (node, free) }
            }
            guard let chosen = best?.node else { break }
            placed[chosen, default: 0] += 1
            usage[chosen] = (usage[chosen] ?? .zero) + demand
        }
        let pending = count - placed.values.reduce(0, +)
        var reason: String?
        if pending > 0 {
            reason = candidates.isEmpty
                ? (onePerNode ? "no healthy node with the published port free and none of its replicas" : "no healthy node to place on")
                : onePerNode ? "\(pending) replica(s) fit on no healthy node: a published service runs one replica per node with its port free"
                : "insufficient capacity: \(pending) replica(s) fit on no healthy node (each needs 1 slot, \(demand.cpuMillicores)m CPU, \(demand.memoryMB) MB)"
        }
        return Decision(replicas: placed, pending: pending, pendingReason: reason)
    }

    private static func fraction(_ part: Int, of whole: Int) -> Double {
        whole <= 0 ? 0 : Double(part) / Double(whole)
    }
}
