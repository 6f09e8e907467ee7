import Foundation
import Raft
import Transport

extension ClusterService {
    /// Proposes the command `makeCommand` builds (under the state lock, with the leader's
    /// full view of usage: applied, in the log, and queued) and waits for its commit.
    ///
    /// Returns nil when `makeCommand` finds nothing to do; for a client call, what the request
    /// did comes with its commit (`Committed.applied`).
    ///
    /// `makeCommand` decides on this node's applied state, which a deposed leader that has not
    /// noticed yet cannot know is current: a definite "not found" or "conflict" it throws is
    /// only answered after ReadIndex confirmed leadership and the state caught up, and the
    /// command is then decided again (API.md: never a definite answer from a stale view).
    func propose(requestID: String, summary: (services: Int, replicas: Int), isClientCall: Bool = true,
                 makeCommand: (_ usage: inout [UInt64: NodeResources], _ state: ClusterState) throws(NodeError) -> ClusterCommand?)
        async throws(NodeError) -> Committed?
    {
        if isClientCall { await settleAfterElection() }
        do {
            return try await proposeOnce(requestID: requestID, summary: summary, isClientCall: isClientCall, makeCommand: makeCommand)
        } catch {
            guard case .refusedOnLocalView = error else { throw error.nodeError }
        }
        try await readLinearizably { _ throws(NodeError) in }
        do {
            return try await proposeOnce(requestID: requestID, summary: summary, isClientCall: isClientCall, makeCommand: makeCommand)
        } catch {
            throw error.nodeError
        }
    }

    /// `makeCommand`'s outcome as a value. (A typed `catch ... where` on its error inside
    /// `proposeOnce` crashed the Swift 6.3.1 compiler.)
    private static func decide(_ makeCommand: (_ usage: inout [UInt64: NodeResources], _ state: ClusterState) throws(NodeError) -> ClusterCommand?,
                               _ usage: inout [UInt64: NodeResources], _ state: ClusterState) -> Result<ClusterCommand?, NodeError> {
        do {
            return .success(try makeCommand(&usage, state))
        } catch {
            return .failure(error)
        }
    }

    /// How one attempt ended without a commit: a definite refusal (`makeCommand` said "not
    /// found" or "cannot apply") decided on this node's applied state, not yet known to be
    /// current; or any other failure.
    private enum AttemptFailure: Error {
        case refusedOnLocalView(NodeError)
        case failed(NodeError)

        var nodeError: NodeError {
            switch self {
            case .refusedOnLocalView(let error), .failed(let error): error
            }
        }
    }

    /// A committed proposal: its entry and, for a client call, what the request did.
    struct Committed {
        var index: UInt64
        var term: UInt64
        var applied: AppliedRequest?
    }

    /// What the locked part of an attempt decided: an earlier outcome that stands, nothing
    /// to do, or a proposal queued with its waiter.
    private enum Prepared {
        case earlier(Committed)
        case nothing
        case queued(id: ProposalID, data: [UInt8], fingerprint: UInt64, waiter: Waiter<ProposalResult>)
    }

    private func proposeOnce(requestID: String, summary: (services: Int, replicas: Int), isClientCall: Bool,
                             makeCommand: (_ usage: inout [UInt64: NodeResources], _ state: ClusterState) throws(NodeError) -> ClusterCommand?)
        async throws(AttemptFailure) -> Committed?
    {
        let (id, data, fingerprint, waiter): (ProposalID, [UInt8], UInt64, Waiter<ProposalResult>)
        await roundGate.passWhenRoundReleased()
        switch try prepare(requestID: requestID, summary: summary, isClientCall: isClientCall, makeCommand: makeCommand) {
        case .earlier(let committed): return committed
        case .nothing: return nil
        case .queued(let queuedID, let queuedData, let queuedFingerprint, let queuedWaiter):
            (id, data, fingerprint, waiter) = (queuedID, queuedData, queuedFingerprint, queuedWaiter)
        }
        metrics.increment(.proposals)

        let started = monotonicSeconds()
        let committed: Committed
        do {
            committed = try await submitAndWait(.propose([RaftNode.Proposal(id: id, data: data)]), waiter: waiter,
                                                    timeoutMessage: "not committed within \(configuration.commitTimeoutSeconds) s (request \(requestID)); it may still commit: retry with the same requestId to be sure it applies once") { reason in
                forget(proposal: id, requestID: requestID, error: reason)
            }
        } catch {
            throw .failed(error)
        }
        metrics.recordCommit(seconds: monotonicSeconds() - started)
        // Two requests under one key can both reach the log; the second applied as a no-op.
        if isClientCall, committed.applied?.record?.isOtherRequest(than: fingerprint) == true {
            throw .failed(Self.reusedRequestID(requestID))
        }
        return committed
    }

    /// The locked part of an attempt: decides the command on the leader's full view of
    /// usage, encodes it and queues its waiter.
    private func prepare(requestID: String, summary: (services: Int, replicas: Int), isClientCall: Bool,
                         makeCommand: (_ usage: inout [UInt64: NodeResources], _ state: ClusterState) throws(NodeError) -> ClusterCommand?)
        throws(AttemptFailure) -> Prepared
    {
        lock.lock()
        defer { lock.unlock() }
        guard coreView.isLeader else { throw .failed(.notLeader(leader: coreView.leaderID)) }
        if isClientCall, let earlier = state.record(ofRequest: requestID) {
            // A retry of a request already applied: its outcome then stands. Deciding again on
            // today's state would be wrong (a retried delete would find its own deletion and
            // answer 404); the same key with different content is still refused.
            var usage = state.usage()
            if case .success(let decided?) = Self.decide(makeCommand, &usage, state), state.isReused(requestID, withOtherThan: decided.requestFingerprint) {
                throw .failed(Self.reusedRequestID(requestID))
            }
            return .earlier(Committed(index: earlier.index, term: earlier.term, applied: nil))
        }
        var usage = state.usage()
        for (node, resources) in speculativeUsage.total { usage[node] = (usage[node] ?? .zero) + resources }
        for (node, resources) in queuedUsage.total { usage[node] = (usage[node] ?? .zero) + resources }
        let command: ClusterCommand
        switch Self.decide(makeCommand, &usage, state) {
        case .success(let decided?): command = decided
        case .success(nil): return .nothing
        case .failure(let refusal) where refusal.isDefiniteRefusal: throw .refusedOnLocalView(refusal)
        case .failure(let error): throw .failed(error)
        }
        // A key already applied was answered above; two requests under one new key that both
        // reach the log are told apart after the commit (`proposeOnce`).
        let fingerprint = isClientCall ? command.requestFingerprint : 0
        let data = ClusterCommandCodec.encode(command)
        guard data.count <= NodeLimits.maxCommandBytes else {
            throw .failed(.tooLarge("the command would take \(data.count) bytes in the log, above the limit of \(NodeLimits.maxCommandBytes); split the request"))
        }
        let id = nextID
        nextID += 1
        let waiter = Waiter<ProposalResult>()
        queuedUsage[id] = usageDelta(of: command)
        proposalWaiters[id] = PendingProposal(waiter: waiter, requestID: isClientCall ? requestID : nil, namesServices: !command.isContainerCommand)
        if isClientCall {
            if serviceCalls[requestID] == nil { serviceCallOrder.append(requestID) }
            serviceCalls[requestID] = ServiceCall(requestID: requestID, receivedAt: Date().timeIntervalSince1970, status: .queued,
                                                  services: summary.services, replicas: summary.replicas)
            // Trimmed in steps of a quarter, so the front of the list is not moved per request.
            if serviceCallOrder.count > ServiceCall.maxRemembered + ServiceCall.maxRemembered / 4 {
                let excess = serviceCallOrder.count - ServiceCall.maxRemembered
                for forgotten in serviceCallOrder.prefix(excess) { serviceCalls[forgotten] = nil }
                serviceCallOrder.removeFirst(excess)
            }
        }
        return .queued(id: id, data: data, fingerprint: fingerprint, waiter: waiter)
    }

    static func reusedRequestID(_ requestID: String) -> NodeError {
        .requestIDReused("requestId (or Idempotency-Key) \(requestID) was already used for a different request; use a new key for a new request")
    }

    /// Submits a proposal's input and waits (suspended) for its outcome. When it does not
    /// commit, `forget` is told why (to drop the waiter and record the failure) and the
    /// matching error is thrown: overloaded, timed out (it may still apply), not leader,
    /// retryable (failed without effect), or rejected (a change that cannot apply).
    /// `timeoutMessage` is built only when it is needed (not for every request).
    func submitAndWait(_ input: RaftNode.Input, waiter: Waiter<ProposalResult>, timeoutMessage: @autoclosure () -> String,
                       forget: (String) -> Void) async throws(NodeError) -> Committed {
        guard submit(input, mayBeginRound: true) else {
            forget("node overloaded")
            throw .overloaded
        }
        guard let result = await waiter.value(seconds: configuration.commitTimeoutSeconds) else {
            forget("not committed in time")
            throw .timedOut(timeoutMessage(), mayHaveApplied: true)
        }
        switch result {
        case .committed(let index, let term, let applied):
            return Committed(index: index, term: term, applied: applied)
        case .notLeader(let leader):
            forget("leader changed")
            throw .notLeader(leader: leader)
        case .failed(let message):
            forget(message)
            metrics.increment(.proposalsFailed)
            throw .retryable(message)
        case .rejected(let message):
            forget(message)
            throw .rejected(message)
        }
    }

    /// Drops what a proposal left behind. One the node refused to queue (overloaded, stopping)
    /// is never taken by a round, so its usage is dropped here too (it stayed counted as
    /// queued, and placement saw that room as taken for good).
    private func forget(proposal id: ProposalID, requestID: String, error: String) {
        lock.withLock {
            proposalWaiters[id] = nil
            queuedUsage[id] = nil
            if serviceCalls[requestID]?.status == .queued {
                serviceCalls[requestID]?.status = .failed
                serviceCalls[requestID]?.error = error
            }
        }
    }

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
    func createServices(_ specs: [ServiceSpec], requestID: String) async throws(NodeError) -> (records: [ServiceRecord], index: UInt64, term: UInt64) {
        let replicas = specs.reduce(0) { $0 + $1.replicas }
        let committed = try await propose(requestID: requestID, summary: (specs.count, replicas)) { usage, state throws(NodeError) -> ClusterCommand? in
            let healthy = placeableNodes(in: state)
            let inUse = state.cpuInUse(atMs: LoadView.nowMs())
            let planned = specs.map { spec in
                PlannedService(spec: spec, decision: Placement.place(count: spec.replicas, demand: spec.demand, capacity: state.capacity, usage: &usage,
                                                                     healthy: state.eligibleNodes(healthy, for: spec, service: nil), cpuInUse: inUse,
                                                                     onePerNode: spec.publish != .none))
            }
            return .createServices(requestID: requestID, services: planned)
        }
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
