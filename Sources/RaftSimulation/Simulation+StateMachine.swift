import ClusterNode
import Raft

/// The node's replicated state machine (`ClusterState`) in the simulation: applied through
/// the same `ClusterState.apply(_:decode:each:)` the node's cluster-service layer uses,
/// snapshotted with its own encoding, and fed by clients that send real cluster commands
/// (creates, scales, deletes, retries, reused request IDs, node health).
extension Simulation {
    /// Applies a durable output to the server's state machine and checks it: every server
    /// applies the same entries and reaches the same state at every index.
    func applyToStateMachine(_ output: Output, at position: Int, term: Term) throws(PropertyViolation) {
        let id = servers[position].id
        // The changes are collected first and checked after: the checks read every server,
        // which may not happen while this server's state is being written.
        var restored = false
        var applied: [(entry: Entry, fingerprint: UInt64)] = []
        do {
            try servers[position].state.apply(output, decode: { _ in nil }) { change, state in
                switch change {
                case .restored:
                    restored = true
                case .applied(let entry, let command, let outcome):
                    var containers: [Int] = []
                    if case .container(let id) = outcome { containers = [id] }
                    applied.append((entry, state.fingerprint(ofServices: Self.servicesTouched(by: command, outcome), containers: containers)))
                }
            }
        } catch {
            throw PropertyViolation(property: "State Machine Safety", detail: "\(id): \(error)")
        }
        if restored, let snapshot = output.snapshot {
            try checker.snapshotInstalled(at: snapshot.metadata.index, hash: FNV1a.hash(snapshot.data), by: id)
            report.snapshotsInstalled += 1
        }
        for (entry, fingerprint) in applied {
            let isNewlyCommitted = Int(entry.index.rawValue) > checker.committed.count
            try checker.applied(entry, by: id, inTerm: term)
            try checker.stateReached(entry.index, fingerprint: fingerprint, by: id)
            guard isNewlyCommitted else { continue }
            try checkDurableOnMajority(entry)
            if entry.kind == .membership, let membership = Membership(encoded: entry.data) {
                for removed in committedMembership.members.subtracting(membership.members) {
                    queue.schedule(.decommission(removed), at: now + 1)
                }
                committedMembership = membership
            }
        }
    }

    /// The services whose records applying an entry may have changed.
    static func servicesTouched(by command: ClusterCommand?, _ outcome: ClusterState.Outcome) -> [Int] {
        var touched: [Int] = []
        if case .services(let ids) = outcome { touched = ids }
        switch command {
        case .createServices?, .createContainer?, .setContainerRunning?, .deleteContainer?, .setDesiredState?, nil: break
        case .scaleService(_, let serviceID, _, _)?, .deleteService(_, let serviceID)?, .setServiceLoad(_, let serviceID, _)?,
             .setAutoscaler(_, let serviceID, _)?, .autoscale(let serviceID, _, _)?:
            touched.append(serviceID)
        case .setNodeHealth(_, _, let moves)?, .placePending(let moves)?: touched += moves.map(\.serviceID)
        }
        return touched
    }

    /// Takes a snapshot of the state machine as the node does: at the applied index, stored
    /// before the core hears of it.
    func takeSnapshot(_ position: Int) throws(PropertyViolation) {
        servers[position].isSnapshotDue = false
        guard let replica = servers[position].replica,
              let metadata = replica.snapshotDue(appliedIndex: servers[position].state.appliedIndex) else { return }
        let state = servers[position].state
        let rebuilt = state.portIndexFromRecords()
        guard rebuilt.conflicts == 0, rebuilt.ports == state.ports else {
            throw PropertyViolation(property: "Published ports", detail: "\(servers[position].id) at index \(state.appliedIndex): \(rebuilt.conflicts) port(s) claimed twice, or the port index differs from the records")
        }
        guard state.loadedServiceIDs == Set(state.services.values.filter { $0.load != nil }.map(\.id)),
              state.pendingServiceIDs == Set(state.services.values.filter { $0.pending > 0 }.map(\.id)),
              state.autoscaledServiceIDs == Set(state.services.values.filter { $0.autoscaler != nil }.map(\.id)),
              state.vitalServiceIDs == Set(state.services.values.filter { $0.spec.vital }.map(\.id)) else {
            throw PropertyViolation(property: "Service indexes", detail: "\(servers[position].id) at index \(state.appliedIndex): the loaded, pending, autoscaled or vital services' index differs from the records")
        }
        let snapshot = Snapshot(metadata: metadata, data: state.snapshotData())
        try checker.snapshotTaken(at: metadata.index, hash: FNV1a.hash(snapshot.data), by: servers[position].id)
        do {
            try replica.store(snapshot)
        } catch {
            return try stopOnStorageFailure(position, error)
        }
        servers[position].durableSnapshot = snapshot
        report.snapshotsTaken += 1
        try step(position, .snapshotTaken(snapshot))
    }

    /// A client request as the node's API would propose it, decided on `position`'s applied
    /// state: mostly creates, scales and deletes; now and then a retry of an earlier request
    /// (it must apply once), a request ID reused with another body (refused when applied),
    /// loads, autoscalers and their steps, containers, or a node health change.
    func makeCommand(at position: Int, id: ProposalID) -> [UInt8] {
        let pick = random.next(below: 100)
        if pick < 8, let earlier = sentCommands.randomElement(using: &random) {
            resentCommands.insert(earlier)
            return earlier
        }
        let data = ClusterCommandCodec.encode(decideCommand(pick: pick, at: position, id: id))
        // The same bytes proposed twice (a health change, an autoscaler step, two deletes
        // reusing one request ID) cannot be told apart in the log.
        if !sentHashes.insert(FNV1a.hash(data)).inserted { resentCommands.insert(data) }
        if sentCommands.count < 64 { sentCommands.append(data) } else { sentCommands[random.next(below: 64)] = data }
        return data
    }

    /// A new command of the kind `pick` (0 to 99) draws, decided on `position`'s state.
    private func decideCommand(pick: Int, at position: Int, id: ProposalID) -> ClusterCommand {
        let state = servers[position].state
        let requestID = "r\(id)"
        let services = Array(state.services.keys)
        switch pick {
        case ..<45:
            var usage = state.usage()
            let healthy = Set(state.capacity.keys).subtracting(state.unhealthyNodes)
            let specs = (0...random.next(below: 2)).map { _ in
                // One in five publishes a port: one of three fixed ones (so they collide) or any.
                ServiceSpec(replicas: random.next(below: 5), cpu: 100 * (1 + random.next(below: 4)),
                            publish: random.chance(0.8) ? .none : random.chance(0.5) ? .any : .fixed(8_080 + random.next(below: 3)))
            }
            return .createServices(requestID: requestID, services: specs.map { spec in
                PlannedService(spec: spec, decision: Placement.place(count: spec.replicas, demand: spec.demand, capacity: state.capacity, usage: &usage,
                                                                     healthy: state.eligibleNodes(healthy, for: spec, service: nil),
                                                                     onePerNode: spec.publish != .none))
            })
        case ..<75:
            let serviceID = services.randomElement(using: &random) ?? 1
            let replicas = random.next(below: 7)
            var usage = state.usage()
            let demand = state.services[serviceID]?.spec.demand ?? ServiceSpec(replicas: 1).demand
            for (node, count) in state.services[serviceID]?.placement ?? [:] { usage[node] = (usage[node] ?? .zero) + demand * -count }
            let spec = state.services[serviceID]?.spec ?? ServiceSpec(replicas: 1)
            let decision = Placement.place(count: replicas, demand: demand, capacity: state.capacity, usage: &usage,
                                           healthy: state.eligibleNodes(Set(state.capacity.keys).subtracting(state.unhealthyNodes), for: spec, service: nil),
                                           onePerNode: spec.publish != .none)
            return .scaleService(requestID: requestID, serviceID: serviceID, replicas: replicas, decision: decision)
        case ..<82:
            let patterns: [LoadPattern] = [.constant(random.next(below: 2_000)), .step(from: 100, to: 1_500, atMs: 500),
                                           .ramp(from: 0, to: 900, periodMs: 1_000), .sine(mean: 600, amplitude: 400, periodMs: 700),
                                           .spike(base: 100, peak: 3_000, periodMs: 900, durationMs: 100)]
            return .setServiceLoad(requestID: requestID, serviceID: services.randomElement(using: &random) ?? 1,
                                      load: ServiceLoad(pattern: patterns[random.next(below: patterns.count)], sinceMs: Int64(now / 1_000)))
        case ..<85:
            let serviceID = services.randomElement(using: &random) ?? 1
            let spec = random.chance(0.2) ? nil : AutoscalerSpec(cpuTarget: Double(20 + random.next(below: 70)), minReplicas: 1 + random.next(below: 2),
                                                                  maxReplicas: 3 + random.next(below: 5), intervalMs: 100)
            return .setAutoscaler(requestID: requestID, serviceID: serviceID, spec: spec)
        case ..<88:
            return autoscalerStep(on: state)
        case ..<90 where random.chance(0.5):
            return containerCommand(on: state, requestID: requestID, id: id)
        case ..<90 where random.chance(0.1):
            // The desired-state file: a few vital services, now and then another set.
            let vital = (0..<random.next(below: 3)).map { index in
                ServiceSpec(name: "vital-\(index)", image: "nginx:\(random.next(below: 2))", replicas: 1 + random.next(below: 3),
                            publish: index == 0 ? .fixed(80) : .none, vital: true)
            }
            return .setDesiredState(requestID: requestID, services: vital)
        case ..<90:
            return .deleteService(requestID: random.chance(0.1) ? "r\(max(1, id / 2))" : requestID,
                                  serviceID: services.randomElement(using: &random) ?? 1)
        default:
            let node = state.capacity.keys.sorted().randomElement(using: &random) ?? 1
            return .setNodeHealth(node: node, isHealthy: random.chance(0.6), moves: [])
        }
    }

    /// A leader's autoscaler step, decided on `state` (a stale one is refused when applied).
    private func autoscalerStep(on state: ClusterState) -> ClusterCommand {
        let serviceID = Array(state.services.keys).randomElement(using: &random) ?? 1
        guard let service = state.services[serviceID], let autoscaler = service.autoscaler else {
            return .placePending(moves: [])  // nothing to step: a harmless command instead
        }
        let decision = autoscaler.step(averageCPU: AutoscalerState.averageCPU(of: service, nowMs: Int64(now / 1_000)),
                                       replicas: service.spec.replicas, nowMs: Int64(now / 1_000))
        var usage = state.usage()
        for (node, count) in service.placement { usage[node] = (usage[node] ?? .zero) + service.spec.demand * -count }
        let placement = decision.toReplicas == decision.fromReplicas ? nil
            : Placement.place(count: decision.toReplicas, demand: service.spec.demand, capacity: state.capacity, usage: &usage,
                              healthy: Set(state.capacity.keys).subtracting(state.unhealthyNodes))
        return .autoscale(serviceID: serviceID, decision: decision, placement: placement)
    }

    /// A container's create, start or stop, or delete, decided on `state`.
    private func containerCommand(on state: ClusterState, requestID: String, id: ProposalID) -> ClusterCommand {
        let containers = state.containers.keys.sorted()
        switch random.next(below: 3) {
        case 0:
            var usage = state.usage()
            // Seed 001's (placed by the leader, publishing nothing) or seed 004's (on a node
            // asked for, publishing a port: any, or one of three so that they collide).
            let pinned = random.chance(0.4)
            let spec = ContainerSpec(name: "c\(id)", image: "golang:alpine", cmd: ["sh"], service: pinned ? "web" : nil,
                                     publish: pinned ? (random.chance(0.5) ? .any : .fixed(9_000 + random.next(below: 3))) : .none)
            let healthy = Set(state.capacity.keys).subtracting(state.unhealthyNodes)
            let node = pinned ? state.capacity.keys.sorted().randomElement(using: &random)
                : Placement.place(count: 1, demand: spec.demand, capacity: state.capacity, usage: &usage, healthy: healthy).replicas.keys.first
            return .createContainer(requestID: requestID, spec: spec, node: node, pinned: pinned, atMs: Int64(now / 1_000))
        case 1:
            return .setContainerRunning(requestID: requestID, containerID: containers.randomElement(using: &random) ?? 1,
                                        isRunning: random.chance(0.5), atMs: Int64(now / 1_000))
        default:
            return .deleteContainer(requestID: requestID, containerID: containers.randomElement(using: &random) ?? 1)
        }
    }
}
