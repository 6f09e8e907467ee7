import Foundation
import Raft
import Transport

/// Proposals: a command decided under the state lock, submitted to the core and waited for
/// (by a task, or by callbacks on the request's event loop), and the outcome as the answer.
extension ClusterService {
    /// Decides a proposal's command under the state lock, with the leader's full view of usage
    /// (applied, in the log, and queued); nil when there is nothing to do.
    typealias CommandMaker = (_ usage: inout [UInt64: NodeResources], _ state: ClusterState) throws(NodeError) -> ClusterCommand?

    /// Proposes the command `makeCommand` builds and waits for its commit.
    ///
    /// Returns nil when `makeCommand` finds nothing to do; for a client call, what the request
    /// did comes with its commit (`Committed.applied`).
    ///
    /// `makeCommand` decides on this node's applied state, which a deposed leader that has not
    /// noticed yet cannot know is current: a definite "not found" or "conflict" it throws is
    /// only answered after ReadIndex confirmed leadership and the state caught up, and the
    /// command is then decided again (API.md: never a definite answer from a stale view).
    func propose(requestID: String, summary: (services: Int, replicas: Int), isClientCall: Bool = true,
                 makeCommand: CommandMaker) async throws(NodeError) -> Committed?
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

    /// Runs its closure where the request goes on (see `Hops`).
    typealias Hop = (@escaping () -> Void) -> Void

    /// Where a proposal begun without a task goes on. `toLoop`: the request's event loop (the
    /// server passes its reply's `onLoop`), where an attempt that waited for a round's state
    /// lock is made (the round's thread must not prepare and submit other requests' proposals).
    /// `toAnswer`: where finishing a delivered commit and answering costs least (the reply's
    /// `whereCheapest`: on the thread that delivered it when the request's loop sleeps).
    struct Hops {
        let toLoop: Hop
        let toAnswer: Hop
    }

    /// How a client proposal begun without a task ended (`proposeWithoutTask`).
    enum TasklessOutcome {
        case done(Result<Committed?, NodeError>)
        /// Refused on this node's applied view, which a task must confirm (ReadIndex) before
        /// it decides again: `propose` serves such a request from the start.
        case needsTask
    }

    /// `propose` for a client call on a leader past its wait after the election, without a
    /// task: the request's event loop prepares and submits it (or, while a round holds the
    /// state lock, leaves a callback that goes on once the round released it), and `done` gets
    /// the outcome. What the task did between its waits runs in `hops`' closures, so the
    /// round's thread only hands results on, or answers when that costs least (see `Hops`).
    /// Returns false, having done nothing, when this node is not such a leader: the caller
    /// then goes through `propose`, which waits for the election to settle or is refused.
    func proposeWithoutTask(requestID: String, summary: (services: Int, replicas: Int), makeCommand: @escaping CommandMaker,
                            hops: Hops, done: @escaping (TasklessOutcome) -> Void) -> Bool
    {
        guard isSettledLeader else { return false }
        // The gate is looked at first so that the common path builds no closure for it.
        if roundGate.isHeldNow, roundGate.callWhenRoundReleased({ [self] in
            hops.toLoop { [self] in attemptWithoutTask(requestID: requestID, summary: summary, makeCommand: makeCommand, hops: hops, done: done) }
        }) {
            return true
        }
        attemptWithoutTask(requestID: requestID, summary: summary, makeCommand: makeCommand, hops: hops, done: done)
        return true
    }

    /// One attempt of `proposeWithoutTask`, on the request's event loop.
    private func attemptWithoutTask(requestID: String, summary: (services: Int, replicas: Int), makeCommand: CommandMaker,
                                    hops: Hops, done: @escaping (TasklessOutcome) -> Void)
    {
        do throws(AttemptFailure) {
            switch try begin(requestID: requestID, summary: summary, isClientCall: true, makeCommand: makeCommand) {
            case .finished(let committed): done(.done(.success(committed)))
            case .submitted(let submitted):
                submitted.waiter.whenDelivered(seconds: configuration.commitTimeoutSeconds) { result in
                    hops.toAnswer { [self] in
                        do throws(AttemptFailure) {
                            done(.done(.success(try finish(submitted, result))))
                        } catch {
                            done(error.tasklessOutcome)
                        }
                    }
                }
            }
        } catch {
            done(error.tasklessOutcome)
        }
    }

    /// `makeCommand`'s outcome as a value. (A typed `catch ... where` on its error inside
    /// `proposeOnce` crashed the Swift 6.3.1 compiler.)
    private static func decide(_ makeCommand: CommandMaker, _ usage: inout [UInt64: NodeResources], _ state: ClusterState) -> Result<ClusterCommand?, NodeError> {
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

        var tasklessOutcome: TasklessOutcome {
            switch self {
            case .refusedOnLocalView: .needsTask
            case .failed(let error): .done(.failure(error))
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

    /// A proposal submitted to the core, waiting for its outcome: what finishing it needs.
    private struct Submitted {
        let id: ProposalID
        let requestID: String
        let isClientCall: Bool
        let fingerprint: UInt64
        let waiter: Waiter<ProposalResult>
        let started: Double
    }

    /// An attempt's first part: an outcome known at once, or a proposal submitted.
    private enum Begun {
        case finished(Committed?)
        case submitted(Submitted)
    }

    private func proposeOnce(requestID: String, summary: (services: Int, replicas: Int), isClientCall: Bool,
                             makeCommand: CommandMaker) async throws(AttemptFailure) -> Committed?
    {
        await roundGate.passWhenRoundReleased()
        switch try begin(requestID: requestID, summary: summary, isClientCall: isClientCall, makeCommand: makeCommand) {
        case .finished(let committed): return committed
        case .submitted(let submitted): return try finish(submitted, await submitted.waiter.value(seconds: configuration.commitTimeoutSeconds))
        }
    }

    /// Prepares an attempt (`prepare`) and submits its proposal to the core.
    private func begin(requestID: String, summary: (services: Int, replicas: Int), isClientCall: Bool,
                       makeCommand: CommandMaker) throws(AttemptFailure) -> Begun
    {
        switch try prepare(requestID: requestID, summary: summary, isClientCall: isClientCall, makeCommand: makeCommand) {
        case .earlier(let committed): return .finished(committed)
        case .nothing: return .finished(nil)
        case .queued(let id, let data, let fingerprint, let waiter):
            metrics.increment(.proposals)
            let submitted = Submitted(id: id, requestID: requestID, isClientCall: isClientCall, fingerprint: fingerprint, waiter: waiter,
                                      started: monotonicSeconds())
            do {
                try submitOrForget(.propose([RaftNode.Proposal(id: id, data: data)])) { reason in forget(proposal: id, requestID: requestID, error: reason) }
            } catch {
                throw .failed(error)
            }
            return .submitted(submitted)
        }
    }

    /// A submitted proposal's outcome (nil: not committed in time) as the request's answer.
    private func finish(_ submitted: Submitted, _ result: ProposalResult?) throws(AttemptFailure) -> Committed {
        let committed: Committed
        do {
            committed = try outcome(result, timeoutMessage: "not committed within \(configuration.commitTimeoutSeconds) s (request \(submitted.requestID)); it may still commit: retry with the same requestId to be sure it applies once") { reason in
                forget(proposal: submitted.id, requestID: submitted.requestID, error: reason)
            }
        } catch {
            throw .failed(error)
        }
        metrics.recordCommit(seconds: monotonicSeconds() - submitted.started)
        // Two requests under one key can both reach the log; the second applied as a no-op.
        if submitted.isClientCall, committed.applied?.record?.isOtherRequest(than: submitted.fingerprint) == true {
            throw .failed(Self.reusedRequestID(submitted.requestID))
        }
        return committed
    }

    /// The locked part of an attempt: decides the command on the leader's full view of
    /// usage, encodes it and queues its waiter.
    private func prepare(requestID: String, summary: (services: Int, replicas: Int), isClientCall: Bool,
                         makeCommand: CommandMaker) throws(AttemptFailure) -> Prepared
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
        // reach the log are told apart after the commit (`finish`).
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

    /// Submits a proposal's input and waits (suspended) for its outcome (see `outcome`).
    func submitAndWait(_ input: RaftNode.Input, waiter: Waiter<ProposalResult>, timeoutMessage: @autoclosure () -> String,
                       forget: (String) -> Void) async throws(NodeError) -> Committed {
        try submitOrForget(input, forget: forget)
        return try outcome(await waiter.value(seconds: configuration.commitTimeoutSeconds), timeoutMessage: timeoutMessage(), forget: forget)
    }

    /// Queues a proposal's input for the core (an event loop may begin the round); when the
    /// inbox is full or the node stopping, `forget` is told and `.overloaded` thrown.
    private func submitOrForget(_ input: RaftNode.Input, forget: (String) -> Void) throws(NodeError) {
        guard submit(input, mayBeginRound: true) else {
            forget("node overloaded")
            throw .overloaded
        }
    }

    /// A proposal's outcome (nil: not committed in time). When it did not commit, `forget` is
    /// told why (to drop the waiter and record the failure) and the matching error is thrown:
    /// timed out (it may still apply), not leader, retryable (failed without effect), or
    /// rejected (a change that cannot apply). `timeoutMessage` is built only when it is needed
    /// (not for every request).
    private func outcome(_ result: ProposalResult?, timeoutMessage: @autoclosure () -> String, forget: (String) -> Void) throws(NodeError) -> Committed {
        guard let result else {
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
}
