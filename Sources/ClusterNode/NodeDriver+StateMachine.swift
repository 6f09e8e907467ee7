import Foundation
import Raft

/// The cluster-service side of a round: committed entries applied to the replicated state
/// machine, snapshots from the leader restored, the leader's view of what its unapplied
/// entries will place, and the clients waiting on proposals and reads answered.
extension NodeDriver {
    /// Applies committed entries, records events, and answers the clients waiting on
    /// proposals and reads (after the state lock is released).
    func applyAndAnswer(_ outputs: [Output]) {
        var proposalResults: [(Waiter<ProposalResult>, ProposalResult)] = []
        var readResults: [(Waiter<ReadResult>, ReadResult)] = []
        stateLock.lock()
        for output in outputs {
            if let snapshot = output.snapshot { restore(from: snapshot) }
            for entry in output.committed { apply(entry) }
            for event in output.events { record(event) }
            for outcome in output.proposals {
                guard let waiter = proposalWaiters.removeValue(forKey: outcome.id) else { continue }
                proposalResults.append((waiter, result(of: outcome)))
            }
            for outcome in output.reads {
                let (id, result) = Self.result(of: outcome)
                if let waiter = readWaiters.removeValue(forKey: id) { readResults.append((waiter, result)) }
            }
        }
        let changes = changedServices.map { (serviceID: $0, record: state.services[$0]) }
        changedServices.removeAll(keepingCapacity: true)
        stateLock.unlock()
        if !changes.isEmpty { containers.reconcile(changes) }
        for (waiter, result) in proposalResults { waiter.deliver(result) }
        for (waiter, result) in readResults { waiter.deliver(result) }
    }

    /// Replaces the state machine by a snapshot from the leader (under the state lock).
    func restore(from snapshot: Snapshot) {
        let restored: ClusterState
        do {
            restored = try ClusterState(snapshotData: snapshot.data)
        } catch {
            exitOnStorageFailure("the leader's snapshot at \(snapshot.metadata.index) holds no valid state: \(error)")
        }
        changedServices += Array(state.services.keys) + Array(restored.services.keys)
        state = restored
        let covered = snapshot.metadata.index.rawValue
        for index in decodedCommands.keys where index <= covered { decodedCommands[index] = nil }
        for index in speculativeUsage.keys where index <= covered { speculativeUsage[index] = nil }
    }

    /// Remembers what newly written log entries will place (replacing a truncated suffix).
    func trackAppended(_ entries: [Entry]) {
        guard let first = entries.first?.index.rawValue else { return }
        for index in decodedCommands.keys where index >= first { decodedCommands[index] = nil }
        for index in speculativeUsage.keys where index >= first { speculativeUsage[index] = nil }
        for entry in entries where entry.kind == .command {
            guard let command = try? ClusterCommandCodec.decode(entry.data) else { continue }  // applied (as rejected) later
            decodedCommands[entry.index.rawValue] = command
            speculativeUsage[entry.index.rawValue] = usageDelta(of: command)
        }
    }

    func apply(_ entry: Entry) {
        let index = entry.index.rawValue
        guard index > state.appliedIndex else { return }
        let command = decodedCommands.removeValue(forKey: index)
        speculativeUsage[index] = nil
        let outcome = state.apply(entry, decoded: command)
        metrics.increment(.appliedEntries)
        switch command {
        case .createServices?, .scaleService?, .deleteService?:
            if case .services(let ids) = outcome { changedServices += ids }
        case .setNodeHealth(_, _, let moves)?, .placePending(let moves)?:
            changedServices += moves.map(\.serviceID)
        case nil:
            if case .services(let ids) = outcome { changedServices += ids }
        }
        if let requestID = command?.requestID, serviceCalls[requestID]?.status == .queued, let ids = state.result(ofRequest: requestID) {
            serviceCalls[requestID]?.status = .committed
            serviceCalls[requestID]?.index = index
            serviceCalls[requestID]?.serviceIDs = ids
        }
    }

    /// Resources a command will place (conservative: moves count in full, removals not at all).
    func usageDelta(of command: ClusterCommand) -> [UInt64: NodeResources] {
        var delta: [UInt64: NodeResources] = [:]
        func add(_ decision: Placement.Decision, _ demand: NodeResources) {
            for (node, count) in decision.replicas { delta[node] = (delta[node] ?? .zero) + demand * count }
        }
        switch command {
        case .createServices(_, let planned):
            for plan in planned { add(plan.decision, plan.spec.demand) }
        case .scaleService(_, let serviceID, _, let decision):
            add(decision, state.services[serviceID]?.spec.demand ?? ServiceSpec(replicas: 1).demand)
        case .setNodeHealth(_, _, let moves), .placePending(let moves):
            for move in moves { add(move.decision, state.services[move.serviceID]?.spec.demand ?? ServiceSpec(replicas: 1).demand) }
        case .deleteService:
            break
        }
        return delta
    }
}
