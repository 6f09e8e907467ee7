import Foundation
import Raft
import Transport

extension ClusterService {
    /// Runs `body` on a state at least as new as every write acknowledged before this call
    /// (ReadIndex through the leader). Throws `NodeError.notLeader` on a follower.
    func readLinearizably<T>(_ body: (ClusterState) throws(NodeError) -> T) async throws(NodeError) -> T {
        let waiter = Waiter<ReadResult>()
        let id = lock.withLock { () -> ReadID in
            let id = nextID
            nextID += 1
            readWaiters[id] = waiter
            return id
        }
        guard submit(.read(id)) else {
            _ = lock.withLock { readWaiters.removeValue(forKey: id) }
            throw .overloaded
        }
        guard let result = await waiter.value(seconds: configuration.commitTimeoutSeconds) else {
            _ = lock.withLock { readWaiters.removeValue(forKey: id) }
            throw .timedOut("could not confirm leadership for a linearizable read within \(configuration.commitTimeoutSeconds) s", mayHaveApplied: false)
        }
        switch result {
        case .ready:
            return try withStateLocked(body)
        case .notLeader(let leader):
            throw .notLeader(leader: leader)
        case .failed(let message):
            throw .retryable(message)
        }
    }

    /// Runs `body` on the applied state under the lock (typed throws, which `withLock` lacks).
    private func withStateLocked<T>(_ body: (ClusterState) throws(NodeError) -> T) throws(NodeError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(state)
    }

    /// Creates services from a client request; returns their records once committed.
    func createServices(_ specs: [ServiceSpec], requestID: String) async throws(NodeError) -> CreatedServices {
        let committed = try await propose(requestID: requestID, summary: Self.summary(of: specs), makeCommand: creating(specs, requestID: requestID))
        return created(committed, requestID: requestID)
    }

    /// `createServices` without a task (see `proposeWithoutTask`); false when it must go
    /// through `createServices`. `done` gets the commit (`created` tells what it made).
    func createServicesWithoutTask(_ specs: [ServiceSpec], requestID: String, hops: Hops,
                                   done: @escaping (TasklessOutcome) -> Void) -> Bool {
        proposeWithoutTask(requestID: requestID, summary: Self.summary(of: specs), makeCommand: creating(specs, requestID: requestID), hops: hops, done: done)
    }

    /// The services a create request made, once committed, and the entry that carried them.
    typealias CreatedServices = (records: [ServiceRecord], index: UInt64, term: UInt64)

    private static func summary(of specs: [ServiceSpec]) -> (services: Int, replicas: Int) {
        (specs.count, specs.reduce(0) { $0 + $1.replicas })
    }

    /// Places each service's replicas on the leader's full view of usage.
    private func creating(_ specs: [ServiceSpec], requestID: String) -> CommandMaker {
        { [self] usage, state throws(NodeError) -> ClusterCommand? in
            let healthy = placeableNodes(in: state)
            let inUse = state.cpuInUse(atMs: LoadView.nowMs())
            let planned = specs.map { spec in
                PlannedService(spec: spec, decision: Placement.place(count: spec.replicas, demand: spec.demand, capacity: state.capacity, usage: &usage,
                                                                     healthy: state.eligibleNodes(healthy, for: spec, service: nil), cpuInUse: inUse,
                                                                     onePerNode: spec.publish != .none))
            }
            return .createServices(requestID: requestID, services: planned)
        }
    }

    /// What a committed create request made.
    func created(_ committed: Committed?, requestID: String) -> CreatedServices {
        guard let committed else { preconditionFailure("a create request always has a command") }
        return (appliedRequest(committed, requestID).services, committed.index, committed.term)
    }

    /// What a committed client request did: delivered with its commit, or (a retry answered
    /// from its earlier outcome) read when it was prepared.
    private func appliedRequest(_ committed: Committed?, _ requestID: String) -> AppliedRequest {
        committed?.applied ?? lock.withLock { AppliedRequest(requestID, in: state) }
    }

    /// What one scale request did: the count it set, the entry that carried it, and the
    /// service as it was right after the change applied (for a retry answered from its
    /// earlier outcome: as it is now).
    struct ScaleResult: Sendable {
        var replicas: Int
        var index: UInt64
        var term: UInt64
        /// Nil when a later request deleted it.
        var service: ServiceRecord?
    }

    /// Where `count` replicas of `service` go: existing ones stay where they are (lowest node
    /// first), the rest are placed by `Placement`. `usage` is the leader's full view.
    func placement(of service: ServiceRecord, count: Int, usage: inout [UInt64: NodeResources], state: ClusterState) -> Placement.Decision {
        for (node, placed) in service.placement { usage[node] = (usage[node] ?? .zero) + service.spec.demand * -placed }
        let healthy = placeableNodes(in: state)
        var keep: [UInt64: Int] = [:]
        var remaining = count
        for (node, placed) in service.placement.sorted(by: { $0.key < $1.key }) where healthy.contains(node) {
            let kept = min(placed, remaining)
            if kept > 0 {
                keep[node] = kept
                usage[node] = (usage[node] ?? .zero) + service.spec.demand * kept
                remaining -= kept
            }
        }
        var decision = Placement.place(count: remaining, demand: service.spec.demand, capacity: state.capacity, usage: &usage,
                                       healthy: state.eligibleNodes(healthy, for: service.spec, service: service),
                                       cpuInUse: state.cpuInUse(atMs: LoadView.nowMs()), onePerNode: service.spec.publish != .none)
        for (node, kept) in keep { decision.replicas[node, default: 0] += kept }
        return decision
    }

    /// Sets a service's replica count, placing the difference.
    func scaleService(_ serviceID: Int, replicas: Int, requestID: String) async throws(NodeError) -> ScaleResult {
        let committed = try await propose(requestID: requestID, summary: (1, replicas)) { usage, state throws(NodeError) -> ClusterCommand? in
            guard let service = state.services[serviceID] else { throw .notFound("Not found") }
            let decision = placement(of: service, count: replicas, usage: &usage, state: state)
            return .scaleService(requestID: requestID, serviceID: serviceID, replicas: replicas, decision: decision)
        }
        // The entry's own record: a retry with the same requestId answers the same index.
        let applied = appliedRequest(committed, requestID)
        guard let record = applied.record, record.services == [serviceID] else {
            throw NodeError.notFound("service \(serviceID) does not exist (it was deleted before this change applied)")
        }
        return ScaleResult(replicas: replicas, index: record.index, term: record.term, service: applied.services.first)
    }

    /// Sets a service's offered load; the leader's clock marks when the pattern starts.
    func setLoad(_ serviceID: Int, pattern: LoadPattern, requestID: String) async throws(NodeError) -> ScaleResult {
        let committed = try await propose(requestID: requestID, summary: (1, 0)) { _, state throws(NodeError) -> ClusterCommand? in
            guard state.services[serviceID] != nil else { throw .notFound("Not found") }
            return .setServiceLoad(requestID: requestID, serviceID: serviceID, load: ServiceLoad(pattern: pattern, sinceMs: LoadView.nowMs()))
        }
        let applied = appliedRequest(committed, requestID)
        guard let record = applied.record, record.services == [serviceID] else {
            throw NodeError.notFound("service \(serviceID) does not exist (it was deleted before this change applied)")
        }
        let current = applied.services.first
        return ScaleResult(replicas: current?.spec.replicas ?? 0, index: record.index, term: record.term, service: current)
    }

    /// Removes one replica of a service from `node` (seed 004's delete of a replica's
    /// container): the service has one replica fewer, the others stay where they are.
    func removeReplica(of serviceID: Int, from node: UInt64, requestID: String) async throws(NodeError) {
        _ = try await propose(requestID: requestID, summary: (1, 0)) { _, state throws(NodeError) -> ClusterCommand? in
            guard let service = state.services[serviceID] else { throw .notFound("service \(serviceID) does not exist") }
            guard let here = service.placement[node], here > 0 else { throw .notFound("service \(serviceID) has no replica on \(address(node))") }
            var decision = Placement.Decision(replicas: service.placement, pending: service.pending, pendingReason: service.pendingReason)
            decision.replicas[node] = here > 1 ? here - 1 : nil
            return .scaleService(requestID: requestID, serviceID: serviceID, replicas: service.spec.replicas - 1, decision: decision)
        }
        try requireApplied(requestID, to: serviceID, "service \(serviceID)")
    }

    /// Commits the desired-state file's vital services; answers the desired state then.
    func setDesiredState(_ specs: [ServiceSpec], requestID: String) async throws(NodeError) -> DesiredState.View {
        _ = try await propose(requestID: requestID, summary: (specs.count, 0)) { _, _ throws(NodeError) -> ClusterCommand? in
            .setDesiredState(requestID: requestID, services: specs)
        }
        let term = currentTerm
        return lock.withLock { DesiredState.View(state, term: term) }
    }

    /// Removes a service.
    func deleteService(_ serviceID: Int, requestID: String) async throws(NodeError) {
        _ = try await propose(requestID: requestID, summary: (1, 0)) { _, state throws(NodeError) -> ClusterCommand? in
            guard state.services[serviceID] != nil else { throw .notFound("Not found") }
            return .deleteService(requestID: requestID, serviceID: serviceID)
        }
        try requireApplied(requestID, to: serviceID, "service \(serviceID)")
    }

    /// Throws "not found" when the committed request `requestID` changed nothing: another
    /// request removed `what` between this one's decision and its commit (two concurrent
    /// deletes: one answers 204, the other 404, as if one came after the other).
    func requireApplied(_ requestID: String, to id: Int, _ what: String) throws(NodeError) {
        let applied = lock.withLock { state.record(ofRequest: requestID) }
        guard let applied, applied.services == [id] else {
            throw .notFound(applied?.rejection ?? "\(what) does not exist (it was removed before this request applied)")
        }
    }
}

extension ClusterService {
    /// What a leader transfer achieved.
    public struct TransferResult: Codable, Sendable {
        public var from: String
        public var to: String
        public var term: UInt64
        public var milliseconds: Double
    }

    /// Hands leadership to `target` (thesis §3.10) and waits until this node sees it lead.
    func transferLeadership(to target: UInt64) async throws(NodeError) -> TransferResult {
        let (isLeader, leader) = withCore { core in (core.isLeader, core.leaderID?.rawValue) }
        guard isLeader else { throw .notLeader(leader: leader) }
        guard target != configuration.id else {
            return TransferResult(from: address(target), to: address(target), term: withCore { $0.currentTerm.rawValue }, milliseconds: 0)
        }
        let voters = withCore { $0.membership.voters.map(\.rawValue).sorted() }
        guard voters.contains(target) else {
            throw .invalid("node \(target) is not a voting member of cluster \(configuration.clusterID) (voters: \(voters.map(String.init).joined(separator: ", ")))")
        }
        let started = monotonicSeconds()
        submit(.transferLeadership(to: NodeID(target)))
        let deadline = started + Double(configuration.electionTimeoutMilliseconds) * 2 / 1_000
        while monotonicSeconds() < deadline {
            let (leaderNow, term) = withCore { core in (core.leaderID?.rawValue, core.currentTerm.rawValue) }
            if leaderNow == target {
                return TransferResult(from: address(configuration.id), to: address(target), term: term, milliseconds: (monotonicSeconds() - started) * 1_000)
            }
            try? await Task.sleep(nanoseconds: 500_000)
        }
        throw .timedOut("node \(target) did not take over within two election timeouts (is it reachable?); this node keeps leading", mayHaveApplied: false)
    }
}

extension NodeError {
    /// A definite "no" about the state ("not found", "cannot apply"): never answered from a
    /// view not known to be current.
    var isDefiniteRefusal: Bool {
        switch self {
        case .notFound, .rejected: true
        default: false
        }
    }
}
