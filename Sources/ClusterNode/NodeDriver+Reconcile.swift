import Foundation
import Raft
import Transport

/// The leader's reconcile loop (seed 000's controller, done through the log): a node not
/// heard from for longer than the grace period is marked unhealthy and its replicas are
/// placed on healthy nodes; a node heard from again is marked healthy; pending replicas are
/// placed when capacity appears. Every decision is a committed log entry.
extension NodeDriver {
    /// Starts the loop; it acts only while this node leads.
    func startReconciler() {
        let thread = Thread { [self] in
            while !isStoppedNow {
                // Four passes a second while leading; a follower only checks whether it leads.
                let isLeading = stateLock.withLock { core.isLeader }
                usleep(isLeading ? 250_000 : 1_000_000)
                reconcileOnce()
            }
        }
        thread.name = "reconcile"
        thread.start()
    }

    /// Notes that `peer` was heard from (any Raft message).
    func heard(from peer: UInt64) {
        stateLock.withLock { lastHeard[peer] = monotonicSeconds() }
    }

    /// One pass: at most one decision is proposed (and waited for) per pass.
    func reconcileOnce() {
        let grace = configuration.unhealthyAfterSeconds
        let decision = stateLock.withLock { () -> ((inout [UInt64: NodeResources], ClusterState) -> ClusterCommand?)? in
            guard core.isLeader, core.log.term(at: core.commitIndex) == core.currentTerm else { return nil }
            let now = monotonicSeconds()
            if leadingSinceTerm != core.currentTerm.rawValue {
                // A new leadership: every peer gets a full grace period from now.
                leadingSinceTerm = core.currentTerm.rawValue
                for member in currentMembers { lastHeard[member] = now }
            }
            for member in currentMembers where member != configuration.id {
                let isReachable = now - (lastHeard[member] ?? now) <= grace
                let isMarkedUnhealthy = state.unhealthyNodes.contains(member)
                if !isReachable && !isMarkedUnhealthy {
                    return { usage, state in Self.markCommand(node: member, isHealthy: false, usage: &usage, state: state) }
                }
                if isReachable && isMarkedUnhealthy {
                    return { usage, state in Self.markCommand(node: member, isHealthy: true, usage: &usage, state: state) }
                }
            }
            if let removed = state.replicasOnRemovedNodes.first {
                // A node left the cluster: its replicas go elsewhere.
                return { usage, state in Self.markCommand(node: removed, isHealthy: false, usage: &usage, state: state) }
            }
            if state.services.values.contains(where: { $0.pending > 0 }) {
                return { usage, state in Self.placePendingCommand(usage: &usage, state: state) }
            }
            return nil
        }
        guard let decision else { return }
        do {
            _ = try proposeIfAny(requestID: "reconcile-\(UUID().uuidString)", decision)
        } catch {
            // Leadership moved or the commit timed out: the next pass looks again.
        }
    }

    /// Proposes what `build` decides, if anything (nil: nothing to do).
    private func proposeIfAny(requestID: String, _ build: @escaping (inout [UInt64: NodeResources], ClusterState) -> ClusterCommand?) throws {
        _ = try propose(requestID: requestID, summary: (0, 0), isClientCall: false) { usage, state throws(HTTPError) in
            guard let command = build(&usage, state) else { throw HTTPError(.noContent, "nothing to do") }
            return command
        }
    }

    /// Marks `node` healthy or not; when unhealthy, its replicas are placed on the others.
    static func markCommand(node: UInt64, isHealthy: Bool, usage: inout [UInt64: NodeResources], state: ClusterState) -> ClusterCommand {
        var moves: [ServiceMove] = []
        if !isHealthy {
            let healthy = Set(state.capacity.keys).subtracting(state.unhealthyNodes).subtracting([node])
            for service in state.services.values.sorted(by: { $0.id < $1.id }) {
                guard let stranded = service.placement[node], stranded > 0 else { continue }
                usage[node] = (usage[node] ?? .zero) + service.spec.demand * -stranded
                var decision = Placement.place(count: stranded, demand: service.spec.demand, capacity: state.capacity,
                                               usage: &usage, healthy: healthy)
                for (kept, count) in service.placement where kept != node { decision.replicas[kept, default: 0] += count }
                decision.pending += service.pending
                if decision.pending > 0 && decision.pendingReason == nil { decision.pendingReason = service.pendingReason }
                moves.append(ServiceMove(serviceID: service.id, decision: decision))
            }
        }
        return .setNodeHealth(node: node, isHealthy: isHealthy, moves: moves)
    }

    /// Places pending replicas where capacity now allows; nil when none fits anywhere.
    static func placePendingCommand(usage: inout [UInt64: NodeResources], state: ClusterState) -> ClusterCommand? {
        let healthy = Set(state.capacity.keys).subtracting(state.unhealthyNodes)
        var moves: [ServiceMove] = []
        for service in state.services.values.sorted(by: { $0.id < $1.id }) where service.pending > 0 {
            var decision = Placement.place(count: service.pending, demand: service.spec.demand, capacity: state.capacity,
                                           usage: &usage, healthy: healthy)
            guard decision.placedCount > 0 else { continue }
            for (node, count) in service.placement { decision.replicas[node, default: 0] += count }
            moves.append(ServiceMove(serviceID: service.id, decision: decision))
        }
        return moves.isEmpty ? nil : .placePending(moves: moves)
    }
}
