import Foundation
import Raft
import Transport

/// The cluster-service side of a round: committed entries applied to the replicated state
/// machine, snapshots from the leader restored, the leader's view of what its unapplied
/// entries will place, the clients waiting on proposals and reads answered, and snapshots
/// of the state taken.
extension ClusterService {
    /// Remembers what newly written log entries will place (replacing a truncated suffix);
    /// the proposals the round took are no longer counted as queued. One lock for both, so
    /// that placement never sees a proposal's usage twice or not at all.
    ///
    /// The round's events are taken in here too, under the same hold as the new view of the
    /// core: the role the node reports, its count of leaderships, when its role changed and
    /// the start of a leadership's settling wait all change together with what requests are
    /// accepted by (`coreView`). Taken in only after the round's fdatasync, they lagged it:
    /// a node reported itself leader with no leadership counted yet (a scrape then missed
    /// one), and a request right after an election skipped the settling wait.
    func logWritten(_ round: Replica.Round) {
        let view = driver.replica.withCore { CoreView($0) }
        lockForRound()
        coreView = view
        for id in round.takenProposals { queuedUsage[id] = nil }
        for output in round.outputs {
            for event in output.events { record(event) }
            if !output.entries.isEmpty { trackAppended(output.entries) }
        }
        unlockForRound()
    }

    /// A round takes the state lock: requests arriving meanwhile suspend (`RoundLockGate`).
    private func lockForRound() {
        roundGate.roundTakesLock()
        lock.lock()
    }

    /// A round releases the state lock, and the requests that suspended go on.
    private func unlockForRound() {
        lock.unlock()
        roundGate.roundReleasedLock()
    }

    /// Applies committed entries and answers the clients waiting on proposals and reads
    /// (after the lock is released); then starts a snapshot if one is due.
    func apply(_ outputs: [Output]) {
        var proposalResults: [(Waiter<ProposalResult>, ProposalResult)] = []
        var readResults: [(Waiter<ReadResult>, ReadResult)] = []
        lockForRound()
        for output in outputs {
            do {
                try state.apply(output, decode: { decodedCommands.removeValue(forKey: $0.index.rawValue) }) { change, now in
                    switch change {
                    case .restored(let previous): restored(replacing: previous, by: now)
                    case .applied(let entry, let command, let outcome): applied(entry, command, outcome, in: now)
                    }
                }
            } catch {
                driver.exitOnStorageFailure("the leader's \(error)")
            }
            for outcome in output.proposals {
                guard let pending = proposalWaiters.removeValue(forKey: outcome.id) else { continue }
                proposalResults.append((pending.waiter, result(of: outcome, in: output, for: pending)))
            }
            for outcome in output.reads {
                let (id, result) = Self.result(of: outcome)
                if let waiter = readWaiters.removeValue(forKey: id) { readResults.append((waiter, result)) }
            }
        }
        let changes = changedServices.map { (serviceID: $0, record: state.services[$0]) }
        changedServices.removeAll(keepingCapacity: true)
        let containerChanges = changedContainers.map { (containerID: $0, record: state.containers[$0]) }
        changedContainers.removeAll(keepingCapacity: true)
        let snapshot = snapshotDue()
        unlockForRound()
        if !changes.isEmpty || !containerChanges.isEmpty { containers.reconcile(changes, containerChanges) }
        for (waiter, result) in proposalResults { waiter.deliver(result) }
        for (waiter, result) in readResults { waiter.deliver(result) }
        if let snapshot { take(snapshot.state, at: snapshot.metadata) }
    }

    /// The state was replaced by a snapshot from the leader (under the lock): every service
    /// of either state may have changed, and nothing the snapshot covers is pending any more.
    private func restored(replacing previous: ClusterState, by restored: borrowing ClusterState) {
        let covered = restored.appliedIndex
        changedServices += Array(previous.services.keys) + Array(restored.services.keys)
        changedContainers += Array(previous.containers.keys) + Array(restored.containers.keys)
        for index in decodedCommands.keys where index <= covered { decodedCommands[index] = nil }
        speculativeUsage.removeAll { $0 <= covered }
    }

    /// Remembers what newly written log entries will place (replacing a truncated suffix).
    private func trackAppended(_ entries: [Entry]) {
        guard let first = entries.first?.index.rawValue else { return }
        for index in decodedCommands.keys where index >= first { decodedCommands[index] = nil }
        speculativeUsage.removeAll { $0 >= first }
        for entry in entries where entry.kind == .command {
            guard let command = try? ClusterCommandCodec.decode(entry.data) else { continue }  // applied (as rejected) later
            decodedCommands[entry.index.rawValue] = command
            speculativeUsage[entry.index.rawValue] = usageDelta(of: command)
        }
    }

    /// The bookkeeping after one entry was applied (under the lock).
    private func applied(_ entry: Entry, _ command: ClusterCommand?, _ outcome: ClusterState.Outcome, in state: borrowing ClusterState) {
        let index = entry.index.rawValue
        speculativeUsage[index] = nil
        metrics.increment(.appliedEntries)
        switch command {
        case .setNodeHealth(_, _, let moves)?, .placePending(let moves)?:
            changedServices += moves.map(\.serviceID)
        case .createContainer?, .setContainerRunning?, .deleteContainer?:
            if case .container(let id) = outcome { changedContainers.append(id) }
        case .setDesiredState?:
            break
        case .createServices?, .scaleService?, .deleteService?, .setServiceLoad?, .setAutoscaler?, .autoscale?, nil:
            if case .services(let ids) = outcome { changedServices += ids }
        }
        // Copied out and stored back whole: three changes through the dictionary's modify
        // accessor cost three allocations each (its coroutine frames), on every node, per entry.
        if let requestID = command?.requestID, var call = serviceCalls[requestID], call.status == .queued,
           let ids = state.result(ofRequest: requestID) {
            call.status = .committed
            call.index = index
            call.serviceIDs = ids
            serviceCalls[requestID] = call
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
        case .autoscale(let serviceID, _, let placement?):
            add(placement, state.services[serviceID]?.spec.demand ?? ServiceSpec(replicas: 1).demand)
        case .createContainer(_, let spec, let node?, _, _):
            delta[node] = (delta[node] ?? .zero) + spec.demand
        case .deleteService, .setServiceLoad, .setAutoscaler, .autoscale, .createContainer, .setContainerRunning, .deleteContainer, .setDesiredState:
            break
        }
        return delta
    }

    /// The state to snapshot and where, once enough entries were applied since the last
    /// snapshot (under the lock, at the end of `apply`: the round thread takes the lock once
    /// for both, not again to learn that no snapshot is due, which the event loops' requests
    /// would wait for). The state is a value, shared with the thread that encodes it.
    private func snapshotDue() -> (state: ClusterState, metadata: SnapshotMetadata)? {
        guard !isSnapshotting, let metadata = driver.replica.snapshotDue(appliedIndex: state.appliedIndex, stored: storedSnapshot) else { return nil }
        isSnapshotting = true
        return (state, metadata)
    }

    /// Snapshots `copy`: encoded and stored by a background thread of lower priority, and the
    /// core is told afterwards so that it compacts its log.
    private func take(_ copy: ClusterState, at metadata: SnapshotMetadata) {
        startNamedThread("snapshot") { [self] in
            // Encoding a large state takes a core for a while: it yields to the rounds and the
            // event loops (nice 10 for this thread alone; on Linux the nice value is per thread),
            // so a snapshot does not stall the commits in flight.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
            let started = monotonicSeconds()
            let snapshot = Snapshot(metadata: metadata, data: copy.snapshotData())
            let encoded = monotonicSeconds()
            do {
                try driver.replica.store(snapshot)
                metrics.increment(.snapshotsTaken)
                log.write("snapshot taken at index \(metadata.index) (term \(metadata.term), \(snapshot.data.count) bytes; "
                    + "encoded in \(Int((encoded - started) * 1_000)) ms, stored in \(Int((monotonicSeconds() - encoded) * 1_000)) ms)")
                submit(.snapshotTaken(snapshot))
            } catch {
                driver.exitOnStorageFailure("cannot store a snapshot: \(error)")
            }
            lock.withLock {
                storedSnapshot = (metadata.index.rawValue, snapshot.data.count)
                isSnapshotting = false
            }
        }
    }
}
