import Foundation
import Raft
import RaftStorage
import Transport

/// One node's driver: it owns the Raft core, the write-ahead log and the replicated state
/// machine, and carries out the core's outputs in order: persist, then send, then apply.
///
/// A single driver thread takes every input that arrived (ticks, messages, proposals,
/// reads), steps the core with each, writes all their durable state as one batch with one
/// fdatasync (group commit), hands the messages to per-peer outboxes, then applies the
/// committed entries and answers waiting clients. HTTP threads only enqueue inputs and
/// read snapshots under `stateLock`.
public final class NodeDriver: @unchecked Sendable {
    /// How a proposal ended, for the client waiting on it.
    enum ProposalResult: Sendable {
        case committed(index: UInt64, term: UInt64)
        case notLeader(leader: UInt64?)
        case failed(String)
        /// The request cannot succeed as asked (an invalid membership change).
        case rejected(String)
    }

    enum ReadResult: Sendable {
        case ready
        case notLeader(leader: UInt64?)
        case failed(String)
    }

    public let configuration: NodeConfiguration
    /// Where the node notes what an operator needs: elections, leaders, membership,
    /// snapshots, link changes, faults noticed, fatal errors.
    public let log: EventLog
    public let links: LinkTable
    let client: HTTPClient
    let containers: ContainerRuntime
    let metrics = NodeMetrics()

    let stateLock = NSLock()
    var core: RaftNode
    var state: ClusterState
    /// Decoded commands of log entries not yet applied, by index (each entry is decoded once).
    var decodedCommands: [UInt64: ClusterCommand] = [:]
    /// Resources that unapplied log entries will place, by index then node.
    var speculativeUsage: [UInt64: [UInt64: NodeResources]] = [:]
    /// Resources of proposals queued but not yet in the log, by proposal.
    var queuedUsage: [ProposalID: [UInt64: NodeResources]] = [:]
    var proposalWaiters: [ProposalID: Waiter<ProposalResult>] = [:]
    var readWaiters: [ReadID: Waiter<ReadResult>] = [:]
    var nextID: UInt64 = 1
    /// Recent service calls handled here by request ID, and their order, newest last (for `/state`).
    var serviceCalls: [String: ServiceCall] = [:]
    var serviceCallOrder: [String] = []
    /// Services changed by entries applied in the current round (their containers follow).
    var changedServices: [Int] = []
    /// When each peer last answered one of this node's Raft messages (an append, heartbeat
    /// or snapshot answer: proof that both directions work), in monotonic seconds.
    var lastAcknowledged: [UInt64: Double] = [:]
    /// This node's commit index over the last grace period, oldest first (monotonic seconds),
    /// to tell whether a follower's log keeps up.
    var commitSamples: [(time: Double, index: UInt64)] = []
    /// The term in which the reconcile loop last found this node leading.
    var leadingSinceTerm: UInt64 = 0
    /// The leader this node knew in each term (term → leader), newest terms kept.
    var leaderHistory: [UInt64: UInt64] = [:]
    /// Terms of leader history kept: enough for any experiment's reports, bounded.
    static let maxLeaderHistory = 10_000

    private let wal: WriteAheadLog
    /// This process's exclusive hold on the data directory, for as long as the driver lives.
    private let directoryLock: DirectoryLock
    /// Guards `inputs`, `isStopped`, `lastTick` and `timerWakeAt`; the timer thread waits on it.
    private let inbox = NSCondition()
    private var inputs: [RaftNode.Input] = []
    private var isStopped = false
    /// Whoever holds this processes the inbox (flat combining): there is no driver thread to
    /// hand each input to, so an idle node does not pay a thread wake-up per message.
    private let processing = NSLock()
    /// The clock time up to which ticks have been delivered to the core.
    private var lastTick = monotonicSeconds()
    /// When the timer thread plans to wake next.
    private var timerWakeAt = 0.0
    /// Each peer's outbox and connection (the connection is used by the outbox's thread, or
    /// inline while that outbox is idle: the outbox lets one of them at a time deliver).
    /// Created on first use, as members join; guarded by `peersLock`.
    private var peers: [UInt64: (outbox: Outbox<(Envelope, Double)>, poster: PipelinedPoster)] = [:]
    private let peersLock = NSLock()
    /// True while a snapshot of the state machine is being written in the background.
    private var isSnapshotting = false
    /// Inputs waiting for the driver: beyond this, received messages are dropped (Raft
    /// tolerates loss) and proposals refused, so a stalled disk cannot exhaust memory.
    static let maxQueuedInputs = 50_000

    /// Opens the data directory (recovering term, vote and log) and starts the driver.
    public init(configuration: NodeConfiguration, log: EventLog = EventLog()) throws {
        self.configuration = configuration
        self.log = log
        try configuration.raftSettings.validate()
        // Before reading or writing anything: a second process on the same directory would
        // interleave its log with ours (or delete it under us).
        self.directoryLock = try DirectoryLock(directory: configuration.dataDirectory)
        let wal = try WriteAheadLog(directory: configuration.dataDirectory + "/raft")
        self.wal = wal
        let recovered = wal.recovered
        // The initial membership is the cluster's first one, alike on every node (a node that
        // joins later learns the current one from the log or a snapshot).
        self.core = RaftNode(id: NodeID(configuration.id), membership: Membership(voters: Set(configuration.members.map { NodeID($0) })),
                             settings: configuration.raftSettings, randomSeed: UInt64.random(in: 1...UInt64.max),
                             hardState: recovered.hardState, log: recovered.log, snapshot: recovered.snapshot)
        if let snapshot = recovered.snapshot {
            do {
                self.state = try ClusterState(snapshotData: snapshot.data)
            } catch {
                throw StorageError("snapshot in \(configuration.dataDirectory)/raft at index \(snapshot.metadata.index) holds no valid state: \(error); refusing to start")
            }
        } else {
            self.state = ClusterState(members: configuration.members, nodeResources: .standard(slots: configuration.capacity))
        }
        self.links = LinkTable(selfID: configuration.id, peers: Array(Set(core.membership.members.map(\.rawValue) + configuration.members)).sorted())
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.connectTimeoutSeconds = 0.25
        clientConfiguration.requestTimeoutSeconds = 1
        clientConfiguration.maxConnectionsPerHost = 8
        self.client = HTTPClient(configuration: clientConfiguration)
        self.containers = ContainerRuntime(nodeID: configuration.id, resources: NodeResources.standard(slots: configuration.capacity))
        metrics.recoveredEntries = recovered.log.lastIndex.rawValue
        metrics.truncatedBytes = recovered.truncatedBytes
        log.write("recovered term \(recovered.hardState.currentTerm) vote \(recovered.hardState.votedFor.map { address($0.rawValue) } ?? "none") "
            + "log to index \(recovered.log.lastIndex) snapshot at \(recovered.snapshot?.metadata.index.rawValue ?? 0)"
            + (recovered.truncatedBytes > 0 ? ", dropped a torn tail of \(recovered.truncatedBytes) bytes" : ""))
    }

    /// The members in this node's log (voters and learners), sorted. The caller holds the state lock.
    var currentMembers: [UInt64] { core.membership.members.map(\.rawValue).sorted() }

    /// The outbox and connection to `peer`, created on first use.
    private func connection(to peer: UInt64) -> (outbox: Outbox<(Envelope, Double)>, poster: PipelinedPoster) {
        peersLock.withLock {
            if let existing = peers[peer] { return existing }
            let poster = PipelinedPoster(host: "127.0.0.1", port: Int(peer), path: "/raft/messages",
                                         headers: HTTPHeaders([("Content-Type", "application/octet-stream"), ("X-Cluster-ID", configuration.clusterID)]))
            let created = (outbox: makeOutbox(to: peer, poster: poster), poster: poster)
            peers[peer] = created
            links.addPeer(peer)
            return created
        }
    }

    /// True once `stop()` was called.
    var isStoppedNow: Bool { inbox.withLock { isStopped } }

    /// Starts the timer and reconcile threads.
    public func start() {
        startReconciler()
        let timer = Thread { [self] in timerLoop() }
        timer.name = "raft-timer"
        timer.stackSize = 1 << 20
        timer.start()
    }

    /// Stops the threads; queued work is dropped, written state stays on disk.
    public func stop() {
        inbox.withLock {
            isStopped = true
            inbox.broadcast()
        }
        for peer in peersLock.withLock({ Array(peers.values) }) { peer.outbox.close() }
    }

    /// Queues an input for the driver. Returns false when the inbox is full.
    @discardableResult
    func enqueue(_ input: RaftNode.Input) -> Bool {
        inbox.lock()
        defer { inbox.unlock() }
        guard inputs.count < Self.maxQueuedInputs else {
            metrics.increment(.inputsDropped)
            return false
        }
        inputs.append(input)
        return true
    }

    /// Queues an input and processes the inbox unless another thread is doing so already
    /// (that thread will take this input too before it lets go).
    @discardableResult
    func submit(_ input: RaftNode.Input) -> Bool {
        guard enqueue(input) else { return false }
        drain()
        return true
    }

    /// Processes everything queued, plus the ticks the clock says have passed, in rounds,
    /// while no other thread is; each round is persisted with one fdatasync (group commit).
    func drain() {
        while processing.try() {
            while let batch = takeBatch() { process(batch) }
            // Wake the timer early if the next timer event moved closer (a new leader must
            // send heartbeats at once, not after a follower's election timeout).
            let due = stateLock.withLock { core.ticksUntilNextTimerEvent }
            inbox.withLock {
                let wakeAt = lastTick + Double(due) * tickSeconds
                if wakeAt < timerWakeAt { inbox.signal() }
            }
            processing.unlock()
            // An input queued after our last look but before we let go must not wait for the
            // next event: look once more.
            if inbox.withLock({ inputs.isEmpty }) { return }
        }
    }

    private var tickSeconds: Double { Double(configuration.tickMilliseconds) / 1_000 }

    /// The queued inputs with the ticks that passed in front of them, or nil when there is
    /// nothing to do. Ticks are counted against the clock; after a long pause (SIGSTOP) a few
    /// election timeouts' worth stand for the rest.
    private func takeBatch() -> [RaftNode.Input]? {
        inbox.lock()
        defer { inbox.unlock() }
        guard !isStopped else { return nil }
        let now = monotonicSeconds()
        var elapsed = Int((now - lastTick) / tickSeconds)
        lastTick += Double(elapsed) * tickSeconds
        let maxCatchUpTicks = 4 * configuration.raftSettings.electionTicks
        if elapsed > maxCatchUpTicks {
            elapsed = maxCatchUpTicks
            lastTick = now
        }
        guard elapsed > 0 || !inputs.isEmpty else { return nil }
        var batch = Array(repeating: RaftNode.Input.tick, count: elapsed)
        batch.append(contentsOf: inputs)
        inputs.removeAll(keepingCapacity: true)
        return batch
    }

    /// Sleeps until the core's next timer event is due (or an earlier one is signalled), then
    /// processes the ticks that passed. An idle follower's timer rarely fires: heartbeats
    /// keep pushing its election timeout back.
    private func timerLoop() {
        while true {
            let due = stateLock.withLock { core.ticksUntilNextTimerEvent }
            inbox.lock()
            if isStopped {
                inbox.unlock()
                return
            }
            timerWakeAt = lastTick + Double(due) * tickSeconds
            let wait = timerWakeAt - monotonicSeconds()
            if wait > 0 { _ = inbox.wait(until: Date(timeIntervalSinceNow: wait)) }
            timerWakeAt = .infinity
            inbox.unlock()
            drain()
        }
    }

    /// One round: step every input, persist once, send, apply.
    private func process(_ arrived: [RaftNode.Input]) {
        let batch = Self.coalesced(arrived)
        let outputs = step(batch)
        persist(outputs)
        send(outputs, isQuietRound: Self.isQuiet(batch))
        applyAndAnswer(outputs)
        snapshotIfDue()
    }

    /// Steps the core with every input, under the state lock.
    private func step(_ batch: [RaftNode.Input]) -> [Output] {
        stateLock.lock()
        defer { stateLock.unlock() }
        var outputs: [Output] = []
        outputs.reserveCapacity(batch.count)
        for input in batch {
            outputs.append(core.step(input))
            if case .propose(let proposals) = input {
                // Now in the log (tracked by index below) or refused: no longer "queued".
                for proposal in proposals { queuedUsage[proposal.id] = nil }
            }
        }
        for output in outputs where !output.entries.isEmpty { trackAppended(output.entries) }
        return outputs
    }

    /// Writes the round's entries and hard state as one batch, fdatasync'd when any step
    /// requires it. A node that cannot write its log stops: acting on state that is not on
    /// disk could break Raft's guarantees.
    private func persist(_ outputs: [Output]) {
        let started = monotonicSeconds()
        do {
            let recorded = try wal.record(outputs)
            if wal.hasPendingWrites || recorded.mustSync {
                try wal.flush(sync: recorded.mustSync && configuration.isFsyncEnabled)
                if recorded.mustSync { metrics.recordSync(seconds: monotonicSeconds() - started) }
            }
            // Segments wholly covered by the stored snapshot may go.
            if let through = recorded.compactedThrough { try wal.compact(through: through) }
        } catch {
            exitOnStorageFailure("cannot write its log: \(error)")
        }
    }

    /// A node that cannot keep its durable state stops: acting on state that is not on disk
    /// could break Raft's guarantees.
    func exitOnStorageFailure(_ problem: String) -> Never {
        log.write("FATAL: \(problem); exiting")
        exit(70)
    }

    /// Snapshots the state machine once enough entries were applied since the last snapshot:
    /// the state (a value) is copied under the lock, encoded and stored by a background
    /// thread, and the core is told afterwards so that it compacts its log.
    private func snapshotIfDue() {
        let due = stateLock.withLock { () -> (ClusterState, SnapshotMetadata)? in
            let last = core.snapshot?.metadata.index.rawValue ?? 0
            guard !isSnapshotting, state.appliedIndex >= last + UInt64(core.settings.snapshotThresholdEntries),
                  let metadata = core.snapshotMetadata(at: LogIndex(state.appliedIndex))
            else { return nil }
            isSnapshotting = true
            return (state, metadata)
        }
        guard let (copy, metadata) = due else { return }
        let thread = Thread { [self] in
            let snapshot = Snapshot(metadata: metadata, data: copy.snapshotData())
            do {
                try wal.snapshots.save(snapshot)
                metrics.increment(.snapshotsTaken)
                log.write("snapshot taken at index \(metadata.index) (term \(metadata.term), \(snapshot.data.count) bytes)")
                submit(.snapshotTaken(snapshot))
            } catch {
                exitOnStorageFailure("cannot store a snapshot: \(error)")
            }
            stateLock.withLock { isSnapshotting = false }
        }
        thread.name = "snapshot"
        thread.start()
    }

    /// Hands the round's messages to each peer's outbox, as one post per peer.
    private func send(_ outputs: [Output], isQuietRound: Bool) {
        let now = monotonicSeconds()
        var messagesByPeer: [UInt64: [(Envelope, Double)]] = [:]
        for output in outputs {
            for envelope in output.messages { messagesByPeer[envelope.to.rawValue, default: []].append((envelope, now)) }
        }
        for (peer, messages) in messagesByPeer {
            let (outbox, poster) = connection(to: peer)
            guard isQuietRound else {
                for message in messages { outbox.enqueue(message) }
                continue
            }
            // An idle peer's messages go out from this thread if that cannot block (a plain
            // link, an open connection); anything else waits for the peer's sending thread.
            outbox.send(messages) { batch in
                let link = links.state(to: peer)
                guard link.isUp, link.delayMilliseconds == 0, link.loss == 0 else { return false }
                guard poster.postWithoutBlocking(RaftWireCodec.encode(batch.map(\.0))) else { return false }
                metrics.increment(.messagesSent, by: batch.count)
                return true
            }
        }
    }
}
