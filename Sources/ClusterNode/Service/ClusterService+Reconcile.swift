import Foundation
import Raft
import Transport

/// The leader's reconcile loop (seed 000's controller, done through the log): a node that
/// has not acknowledged the leader's messages, or whose log has not kept up, for longer
/// than the grace period is marked unhealthy and its replicas are placed on healthy nodes;
/// a node acknowledging and caught up again is marked healthy; pending replicas are placed
/// when capacity appears. Every decision is a committed log entry.
extension ClusterService {
    /// Starts the loop; it acts only while this node leads.
    func startReconciler() {
        Task.detached { [self] in
            while !isStoppedNow {
                // Four passes a second while leading; a follower sleeps until it leads.
                await leadership.untilLeading { withCore { $0.isLeader } }
                try? await Task.sleep(nanoseconds: 250_000_000)
                await reconcileOnce()
            }
        }
    }

    /// Notes the peers that answered this node's messages (see `PeerContact.note`); takes
    /// no state lock, so the event loop that received them never waits for one.
    func noteAcknowledgements(_ envelopes: [Envelope]) {
        contact.note(envelopes, now: monotonicSeconds())
    }

    /// A test of whether a peer acknowledged this leader within `seconds` and its log holds
    /// what was committed `seconds` ago, as things stand now. The caller holds the lock (the
    /// commit samples and the core's view are read here).
    func keepingUp(within seconds: Double, now: Double) -> KeepingUp {
        KeepingUp(selfID: configuration.id, seconds: seconds, now: now,
                  committedThen: commitSamples.last(where: { $0.time <= now - seconds })?.index,
                  matchIndexes: coreView.matchIndexes, acknowledgements: contact.acknowledgements)
    }

    /// What `keepingUp` tests, as a value (a closure capturing the same was an allocation on
    /// every request that places replicas).
    struct KeepingUp {
        let selfID: UInt64
        let seconds: Double
        let now: Double
        let committedThen: UInt64?
        let matchIndexes: [UInt64: UInt64]
        let acknowledgements: [UInt64: Double]

        func callAsFunction(_ peer: UInt64) -> Bool {
            guard peer != selfID else { return true }
            guard let acknowledged = acknowledgements[peer], now - acknowledged <= seconds else { return false }
            guard let committedThen else { return true }
            return (matchIndexes[peer] ?? 0) >= committedThen
        }
    }

    /// How long a node may stay silent and still be given new replicas: an election timeout
    /// (several heartbeats, and longer than a follower waits between heartbeat answers).
    var placementSilenceSeconds: Double {
        min(Double(configuration.electionTimeoutMilliseconds) / 1_000, configuration.unhealthyAfterSeconds)
    }

    /// The nodes new replicas may go to: members not marked unhealthy that acknowledged this
    /// leader recently and keep up with its log (a node killed a moment ago gets nothing even
    /// before the reconcile loop marks it). The caller holds the lock. Built in one pass into
    /// one set: every request that places replicas asks.
    func placeableNodes(in state: ClusterState) -> Set<UInt64> {
        let isLeader = coreView.isLeader
        let heard = isLeader ? contact.heard : []
        let keepsUp = isLeader ? keepingUp(within: placementSilenceSeconds, now: monotonicSeconds()) : nil
        var placeable = Set<UInt64>(minimumCapacity: state.capacity.count)
        for node in state.capacity.keys where !state.unhealthyNodes.contains(node) {
            // A leader places on itself and on the peers it heard from that keep up.
            if let keepsUp, node != configuration.id, !(heard.contains(node) && keepsUp(node)) { continue }
            placeable.insert(node)
        }
        return placeable
    }

    /// A peer's last connection carrying Raft messages closed (see `Node.connectionClosed`).
    func notePeerClosed(_ peer: UInt64) { contact.peerClosed(peer) }

    /// Right after an election the leader has heard from only the peers that voted for it: a
    /// client's change waits until every other healthy member answered too, or an election
    /// timeout passed (a member that is down never answers; one that is up answers within
    /// that, or it would campaign itself), so that placement sees the whole live cluster.
    /// Bounded: at most T (at least 2 H plus 20 ms), once per leadership, and only while a
    /// member is silent; a member whose connections all closed (the leader that just died,
    /// after kill -9) is not waited for, nor the leader this node followed before (silent for
    /// an election timeout, or it would not have lost: paused, cut off or dead). (Two
    /// heartbeat intervals, the bound until session 9, were too short for a debug build's
    /// followers on a loaded machine: once in four full test runs 25 replicas on five fresh nodes
    /// were not placed five per node.)
    /// Once the wait is over for a leadership, its requests skip it without the state lock.
    func settleAfterElection() async {
        if isSettledLeader { return }
        let window = max(2 * Double(configuration.heartbeatMilliseconds) / 1_000 + 0.02,
                         Double(configuration.electionTimeoutMilliseconds) / 1_000)
        while true {
            let waiting = lock.withLock { () -> Bool in
                guard coreView.isLeader else { return false }
                let members = Set(state.capacity.keys).subtracting(state.unhealthyNodes).subtracting(contact.closedPeers)
                    .subtracting([configuration.id] + (formerLeader.map { [$0] } ?? []))
                guard monotonicSeconds() - leadingSince < window, !members.isSubset(of: contact.heard) else {
                    // Read under the lock that `leadingSince` and the term are set under.
                    settledTerm.store(leadingTerm.load(ordering: .acquiring), ordering: .releasing)
                    return false
                }
                return true
            }
            guard waiting else { return }
            try? await Task.sleep(nanoseconds: 2_000_000)
        }
    }

    /// This node leads and its wait after the election is over (read without the lock).
    var isSettledLeader: Bool {
        let term = leadingTerm.load(ordering: .acquiring)
        return term != 0 && settledTerm.load(ordering: .acquiring) == term
    }

    /// One pass: at most one decision is proposed (and waited for) per pass.
    func reconcileOnce() async {
        let grace = configuration.unhealthyAfterSeconds
        let decision = lock.withLock { () -> ((inout [UInt64: NodeResources], ClusterState) -> ClusterCommand?)? in
            let (isLeader, term, commitIndex, hasCommittedInTerm) = withCore { core in
                (core.isLeader, core.currentTerm.rawValue, core.commitIndex.rawValue, core.log.term(at: core.commitIndex) == core.currentTerm)
            }
            guard isLeader else { return nil }
            let now = monotonicSeconds()
            if leadingSinceTerm != term {
                // A new leadership: every peer gets a full grace period from now.
                leadingSinceTerm = term
                commitSamples.removeAll()
                contact.grantGrace(to: currentMembers, now: now)
            }
            recordCommitSample(commitIndex, now: now, keeping: grace)
            guard hasCommittedInTerm else { return nil }
            let isKeepingUp = keepingUp(within: grace, now: now)
            for member in currentMembers where member != configuration.id {
                let isHealthy = isKeepingUp(member)
                let isMarkedUnhealthy = state.unhealthyNodes.contains(member)
                if isHealthy == isMarkedUnhealthy {
                    return { [self] usage, state in markCommand(node: member, isHealthy: isHealthy, usage: &usage, state: state) }
                }
            }
            if let removed = state.replicasOnRemovedNodes.first {
                // A node left the cluster: its replicas go elsewhere.
                return { [self] usage, state in markCommand(node: removed, isHealthy: false, usage: &usage, state: state) }
            }
            let hasPending = !state.pendingServiceIDs.isEmpty
            guard hasPending || !state.vitalServices.isEmpty else { return nil }
            return { [self] usage, state in
                (hasPending ? placePendingCommand(usage: &usage, state: state) : nil) ?? desiredStateCommand(usage: &usage, state: state)
            }
        }
        guard let decision else { return }
        do {
            _ = try await proposeIfAny(requestID: "reconcile-\(RandomID.uuidString())", decision)
        } catch {
            // Leadership moved or the commit timed out: the next pass looks again.
        }
    }

    /// Keeps one commit-index sample per pass, back to the oldest one a `window` needs.
    private func recordCommitSample(_ commitIndex: UInt64, now: Double, keeping window: Double) {
        commitSamples.append((now, commitIndex))
        // Keep the newest sample older than the window (the one `keepingUp` reads) and later ones.
        if let cut = commitSamples.lastIndex(where: { $0.time <= now - window }), cut > 0 {
            commitSamples.removeFirst(cut)
        }
    }

    /// Proposes what `build` decides, if anything (nil: nothing to do).
    private func proposeIfAny(requestID: String, _ build: @escaping (inout [UInt64: NodeResources], ClusterState) -> ClusterCommand?) async throws(NodeError) {
        _ = try await propose(requestID: requestID, summary: (0, 0), isClientCall: false) { usage, state throws(NodeError) -> ClusterCommand? in
            build(&usage, state)
        }
    }

    /// Marks `node` healthy or not; when unhealthy, its replicas are placed on the others.
    /// The caller holds the lock.
    func markCommand(node: UInt64, isHealthy: Bool, usage: inout [UInt64: NodeResources], state: ClusterState) -> ClusterCommand {
        let acknowledged = contact.lastAcknowledged(node).map { String(format: "%.1f s ago", monotonicSeconds() - $0) } ?? "never"
        let (match, commit) = withCore { core in (core.progress(of: NodeID(node))?.matchIndex.rawValue ?? 0, core.commitIndex.rawValue) }
        log.write("proposing to mark \(address(node)) \(isHealthy ? "healthy" : "unhealthy") (last acknowledged \(acknowledged), match index \(match), commit \(commit))")
        var moves: [ServiceMove] = []
        if !isHealthy {
            let healthy = placeableNodes(in: state).subtracting([node])
            let inUse = state.cpuInUse(atMs: LoadView.nowMs())
            for service in state.services.values {
                guard let stranded = service.placement[node], stranded > 0 else { continue }
                usage[node] = (usage[node] ?? .zero) + service.spec.demand * -stranded
                var decision = Placement.place(count: stranded, demand: service.spec.demand, capacity: state.capacity, usage: &usage,
                                               healthy: state.eligibleNodes(healthy, for: service.spec, service: service), cpuInUse: inUse,
                                               onePerNode: service.spec.publish != .none)
                for (kept, count) in service.placement where kept != node { decision.replicas[kept, default: 0] += count }
                decision.pending += service.pending
                if decision.pending > 0 && decision.pendingReason == nil { decision.pendingReason = service.pendingReason }
                moves.append(ServiceMove(serviceID: service.id, decision: decision))
            }
        }
        return .setNodeHealth(node: node, isHealthy: isHealthy, moves: moves)
    }

    /// One step towards the desired-state file's vital services, or nil when every one runs
    /// as the file says: a missing one created, one that differs from the file deleted (the
    /// next step creates it anew), one with another replica count scaled back. The caller
    /// holds the lock.
    func desiredStateCommand(usage: inout [UInt64: NodeResources], state: ClusterState) -> ClusterCommand? {
        var vital: [String: [ServiceRecord]] = [:]
        for id in state.vitalServiceIDs {
            if let service = state.services[id], let name = service.spec.name, state.vitalServices[name] != nil {
                vital[name, default: []].append(service)
            }
        }
        for name in state.vitalServices.keys.sorted() {
            let wanted = state.vitalServices[name]!
            let carriers = (vital[name] ?? []).sorted { $0.id < $1.id }
            guard let current = carriers.first else {
                let decision = Placement.place(count: wanted.replicas, demand: wanted.demand, capacity: state.capacity, usage: &usage,
                                               healthy: state.eligibleNodes(placeableNodes(in: state), for: wanted, service: nil),
                                               cpuInUse: state.cpuInUse(atMs: LoadView.nowMs()), onePerNode: wanted.publish != .none)
                log.write("desired state: vital service \(name) is missing; creating it")
                return .createServices(requestID: "vital-\(name)-\(state.appliedIndex)", services: [PlannedService(spec: wanted, decision: decision)])
            }
            if let extra = carriers.dropFirst().first {
                log.write("desired state: vital service \(name) runs twice; deleting service \(extra.id)")
                return .deleteService(requestID: "vital-\(name)-\(state.appliedIndex)", serviceID: extra.id)
            }
            if !DesiredState.matches(current.spec, wanted) {
                log.write("desired state: service \(current.id) (\(name)) differs from the file; replacing it")
                return .deleteService(requestID: "vital-\(name)-\(state.appliedIndex)", serviceID: current.id)
            }
            if current.spec.replicas != wanted.replicas {
                log.write("desired state: service \(current.id) (\(name)) has \(current.spec.replicas) replicas, the file says \(wanted.replicas)")
                return .scaleService(requestID: "vital-\(name)-\(state.appliedIndex)", serviceID: current.id, replicas: wanted.replicas,
                                     decision: placement(of: current, count: wanted.replicas, usage: &usage, state: state))
            }
        }
        return nil
    }

    /// Places pending replicas where capacity now allows; nil when none fits anywhere.
    /// The caller holds the lock.
    func placePendingCommand(usage: inout [UInt64: NodeResources], state: ClusterState) -> ClusterCommand? {
        let healthy = placeableNodes(in: state)
        // Whether a replica fits depends on reservations, healthy nodes and ports alone: when
        // none of them changed since a pass that placed nothing, nothing fits now either (a
        // full cluster with thousands of pending services would otherwise be searched again
        // four times a second, under the lock that requests need).
        let situation = PendingSituation(usage: usage.filter { $0.value != .zero }, healthy: healthy, capacity: state.capacity, ports: state.ports)
        if situation == fruitlessPendingSituation {
            metrics.increment(.pendingSearchesSkipped)
            return nil
        }
        let inUse = state.cpuInUse(atMs: LoadView.nowMs())
        var moves: [ServiceMove] = []
        for id in state.pendingServiceIDs.sorted() {
            guard let service = state.services[id] else { continue }
            var decision = Placement.place(count: service.pending, demand: service.spec.demand, capacity: state.capacity, usage: &usage,
                                           healthy: state.eligibleNodes(healthy, for: service.spec, service: service), cpuInUse: inUse,
                                           onePerNode: service.spec.publish != .none)
            guard decision.placedCount > 0 else { continue }
            for (node, count) in service.placement { decision.replicas[node, default: 0] += count }
            moves.append(ServiceMove(serviceID: service.id, decision: decision))
        }
        fruitlessPendingSituation = moves.isEmpty ? situation : nil
        return moves.isEmpty ? nil : .placePending(moves: moves)
    }

    /// What decides whether a pending replica fits somewhere (see `placePendingCommand`).
    struct PendingSituation: Equatable {
        var usage: [UInt64: NodeResources]
        var healthy: Set<UInt64>
        var capacity: [UInt64: NodeResources]
        var ports: [UInt64: [Int: PortHolder]]
    }
}
