import Foundation
import Raft
import RaftStorage
import Transport

/// What the replica layer hands the layer above after each round, in Raft's order.
protocol RoundConsumer: AnyObject {
    /// A round's entries are in the log (not yet durable or committed) and its proposals
    /// taken: called before the round's outputs are applied.
    func logWritten(_ round: Replica.Round)
    /// A round's outputs, durable and their messages sent: apply and answer (and snapshot
    /// the state machine if due). A leader's round whose commits were all durable before it
    /// began comes here right after `logWritten`, before its fdatasync
    /// (`Replica.Round.mayApplyBeforeSync`).
    func apply(_ outputs: [Output])
}

/// The replica layer in the node's process: the `Replica` (core and storage) with its
/// inbox, timer and per-peer outboxes. It speaks in Raft inputs and outputs, never HTTP.
///
/// Rounds run on one thread, the timer's: proposals, reads and messages from peers are
/// queued (`submit`) and wake it; it takes every queued input plus the ticks the clock says
/// have passed, and runs the replica's round (step, write, one fdatasync, send), then hands
/// the outputs to the cluster-service layer (`RoundConsumer`). Whatever arrives during a
/// round's fdatasync goes into the next round together (group commit), and no task or pool
/// thread ever waits for the disk. On a nearly idle node the event loop that queues a
/// proposal or a peer's messages begins the round itself and hands it to the round thread
/// only for its fdatasync (`submit(_:mayBeginRound:)`); a follower whose rounds come far
/// apart syncs it on that loop too (`syncsWhereBegun`).
///
/// Ownership: `inbox` guards `inputs`, `arrivals`, `isStopped`, `lastTick`, `isRoundThreadWoken`,
/// `roundRunner`, `handedOver`, `isWaitingForRoundHere`, `roundThreadWakesAt` and
/// `lastRoundInputCount` (the timer thread waits on it); one round runs at a time
/// (`roundRunner`), so the replica's log has one user at a time;
/// `peersLock` guards `peers`. The core is guarded inside `Replica`.
public final class ReplicaDriver: ReplicaNetwork, @unchecked Sendable {
    let configuration: NodeConfiguration
    let log: EventLog
    let links: LinkTable
    let metrics: NodeMetrics
    let replica: Replica
    /// What the write-ahead log held when the node started.
    let recovered: WriteAheadLog.Recovered
    /// The cluster-service layer; attached once, right after both layers exist.
    weak var consumer: (any RoundConsumer)?

    /// This process's exclusive hold on the data directory, for as long as the driver lives.
    private let directoryLock: DirectoryLock
    private let inbox = NSCondition()
    private var inputs: [RaftNode.Input] = []
    /// When the queued inputs came, in ticks since `lastTick`: each run's end in `inputs` and
    /// the ticks that had passed when it was queued (runs that came within one tick merged).
    /// A round steps each run after those ticks, not after all of them (`interleaving`).
    private var arrivals: [(end: Int, ticksBefore: Int)] = []
    private var isStopped = false
    /// The clock time up to which ticks have been delivered to the core.
    private var lastTick = monotonicSeconds()
    /// `submit` woke the timer thread to run a round and it has not yet looked.
    private var isRoundThreadWoken = false
    /// Who runs the round under way (nil: none is).
    private enum RoundRunner {
        /// The round thread, including a round an event loop began and handed over.
        case roundThread
        /// The event loop that began it (`submit`): inputs queued meanwhile wait for its
        /// end, which wakes the round thread for them, instead of waking it now only for it
        /// to wait for that end.
        case eventLoop
    }
    private var roundRunner: RoundRunner?
    /// A round an event loop began that must be synced: for the round thread to finish.
    private var handedOver: (round: Replica.Round, began: Double)?
    /// The round thread waits for a round an event loop runs to end (or be handed over).
    private var isWaitingForRoundHere = false
    /// When the round thread, asleep, wakes for the core's next timer event (infinity: awake).
    private var roundThreadWakesAt = Double.infinity
    /// Inputs (besides ticks) the last round took: how busy the node is.
    private var lastRoundInputCount = 0
    /// How long the last fdatasync took (for `noteHeldBackHeartbeats`; the round's runner's).
    private var lastSyncSeconds = 0.0
    /// When the last round that synced ended its sync (the round's runner's).
    private var lastSyncEndedAt = 0.0
    /// A follower's round an event loop began this long or longer after the last sync ended
    /// is synced on that loop (`syncsWhereBegun`). One client's commits leave a follower's
    /// disk idle about 0.3 ms between syncs (the round that only learns the commit index
    /// syncs nothing and comes between: measured from the last round instead, half the
    /// rounds at one connection went to the round thread); under load syncs follow each other.
    static let sparseSyncGapSeconds = 0.000_15
    /// An event loop begins a round only on a nearly idle node (the last round took at most
    /// this many inputs). Under load, rounds follow each other on the round thread, and a
    /// round an event loop ran would apply a large batch on it, serialized with its
    /// connections instead of beside them (alternated at 128 connections: 13.0-13.4k
    /// against 14.2-15.0k requests a second without this bound).
    static let maxInputsToBeginRoundHere = 2
    /// The event loop of the connections to peers (one thread for all of them).
    let clientLoop: ClientLoop
    /// Each peer's channel: one pipelined connection, written by the round thread when it
    /// can be without blocking, by the client loop otherwise. Created on first use, as
    /// members join.
    private var peers: [UInt64: PostChannel<Envelope>] = [:]
    private let peersLock = AdaptiveLock()
    /// Inputs waiting for the driver: beyond this, received messages are dropped (Raft
    /// tolerates loss) and proposals refused, so a stalled disk cannot exhaust memory.
    static let maxQueuedInputs = 50_000

    /// Opens the data directory (recovering term, vote, log and snapshot).
    init(configuration: NodeConfiguration, log: EventLog, metrics: NodeMetrics) throws {
        self.configuration = configuration
        self.log = log
        self.metrics = metrics
        try configuration.raftSettings.validate()
        // Before reading or writing anything: a second process on the same directory would
        // interleave its log with ours (or delete it under us).
        self.directoryLock = try DirectoryLock(directory: configuration.dataDirectory)
        let wal = try WriteAheadLog(directory: configuration.dataDirectory + "/raft")
        let recovered = wal.recovered
        self.recovered = recovered
        // The initial membership is the cluster's first one, alike on every node (a node that
        // joins later learns the current one from the log or a snapshot).
        let core = RaftNode(id: NodeID(configuration.id), membership: Membership(voters: Set(configuration.members.map { NodeID($0) })),
                            settings: configuration.raftSettings, randomSeed: UInt64.random(in: 1...UInt64.max),
                            hardState: recovered.hardState, log: recovered.log, snapshot: recovered.snapshot)
        self.links = LinkTable(selfID: configuration.id, peers: Array(Set(core.membership.members.map(\.rawValue) + configuration.members)).sorted())
        self.replica = Replica(core: core, wal: wal, isFsyncEnabled: configuration.isFsyncEnabled)
        self.clientLoop = try ClientLoop(name: "raft-client")
        metrics.recoveredEntries = recovered.log.lastIndex.rawValue
        metrics.truncatedBytes = recovered.truncatedBytes
        log.write("recovered term \(recovered.hardState.currentTerm) vote \(recovered.hardState.votedFor.map { address($0.rawValue) } ?? "none") "
            + "log to index \(recovered.log.lastIndex) snapshot at \(recovered.snapshot?.metadata.index.rawValue ?? 0)"
            + (recovered.truncatedBytes > 0 ? ", dropped a torn tail of \(recovered.truncatedBytes) bytes" : ""))
    }

    /// Starts the timer thread.
    func start() {
        startNamedThread("raft-rounds", stackSize: 1 << 20) { [self] in timerLoop() }
    }

    /// Stops the threads; queued work is dropped, written state stays on disk.
    func stop() {
        inbox.withLock {
            isStopped = true
            inbox.broadcast()
        }
        for channel in peersLock.withLock({ Array(peers.values) }) { channel.close() }
        clientLoop.stop()
    }

    /// True once `stop()` was called.
    var isStoppedNow: Bool { inbox.withLock { isStopped } }

    /// Queues an input for the round thread (the timer's), waking it: the caller (a task
    /// waiting for a commit, an event loop with messages from a peer or told of a closed
    /// connection) never runs a round's fdatasync itself. Inputs queued meanwhile go in the
    /// same round. False when stopped or the inbox is full.
    ///
    /// `mayBeginRound`: when no round is under way and the round thread is not already woken,
    /// the caller (an event loop) runs the round's first half itself (`runRoundHere`) instead
    /// of waking the round thread for it: a message or a proposal is stepped and its
    /// replication sent at once, and a round that needs no sync (a leader's commit) is
    /// applied and its clients answered without a thread hand-off.
    @discardableResult
    func submit(_ input: RaftNode.Input, mayBeginRound: Bool = false) -> Bool { submit([input], mayBeginRound: mayBeginRound) == 1 }

    /// Queues inputs (as many as the inbox takes; the rest are dropped and counted) and wakes
    /// the round thread, or runs the round here (see above); while an event loop runs a
    /// round, they wait for its end instead (`runRoundHere` wakes the round thread then).
    /// Returns how many were queued.
    @discardableResult
    func submit(_ batch: [RaftNode.Input], mayBeginRound: Bool = false) -> Int {
        inbox.lock()
        let room = isStopped ? 0 : max(0, Self.maxQueuedInputs - inputs.count)
        if batch.count > room { metrics.increment(.inputsDropped, by: batch.count - room) }
        guard room > 0 else {
            inbox.unlock()
            return 0
        }
        inputs.append(contentsOf: room >= batch.count ? batch : Array(batch.prefix(room)))
        let now = monotonicSeconds()
        let ticksBefore = Int((now - lastTick) / tickSeconds)
        if let last = arrivals.last, last.ticksBefore == ticksBefore {
            arrivals[arrivals.count - 1].end = inputs.count
        } else {
            arrivals.append((inputs.count, ticksBefore))
        }
        if mayBeginRound, roundRunner == nil, !isRoundThreadWoken, lastRoundInputCount <= Self.maxInputsToBeginRoundHere,
           let (round, tickGap) = takeInputs(now: now) {
            roundRunner = .eventLoop
            inbox.unlock()
            metrics.increment(.roundsBegunOnEventLoops)
            runRoundHere(round, tickGap: tickGap)
            return min(room, batch.count)
        }
        if roundRunner == .eventLoop {
            inbox.unlock()
            return min(room, batch.count)
        }
        let mustWake = !isRoundThreadWoken
        isRoundThreadWoken = true
        inbox.unlock()
        // Signalled after unlocking: the woken thread's first act is to take the lock, and
        // signalling while holding it could wake it only to block it again. The flag is set
        // under the lock, so no wake-up is lost.
        if mustWake { inbox.signal() }
        return min(room, batch.count)
    }

    /// One round: the replica's (step, write, send ahead, sync, send), then the service
    /// layer's (apply), then the leader's replication that did not go ahead (`Replica`); a
    /// leader's round that commits only what was durable before it applies before its sync
    /// (`Replica.Round.mayApplyBeforeSync`).
    /// `handingOverSync` (an event loop's round, `submit`): a round that must be synced goes
    /// to the round thread for the fdatasync and the rest, and false is returned, unless it
    /// is a nearly idle follower's (`syncsWhereBegun`). A node that cannot write its log
    /// stops: acting on state that is not on disk could break Raft's guarantees.
    @discardableResult
    private func runRound(_ batch: [RaftNode.Input], tickGap: Double, handingOverSync: Bool = false) -> Bool {
        let began = monotonicSeconds()
        if tickGap >= electionTimeoutSeconds { noteHeldBackHeartbeats(tickGap) }
        let round: Replica.Round
        do {
            round = try replica.begin(batch, sendingAheadThrough: self)
        } catch {
            exitOnStorageFailure("cannot write its log: \(error)")
        }
        consumer?.logWritten(round)
        if round.mayApplyBeforeSync { apply(round.outputs) }
        if handingOverSync, round.mustSync {
            guard syncsWhereBegun(round, began: began) else {
                inbox.withLock {
                    handedOver = (round, began)
                    roundRunner = .roundThread
                }
                inbox.signal()
                return false
            }
            metrics.increment(.roundsSyncedOnEventLoops)
        }
        complete(round, began: began)
        return true
    }

    /// Whether an event loop that began `round` also syncs it (instead of handing it to the
    /// round thread): a follower's round that comes long after its last sync. On such a
    /// nearly idle node the round thread sleeps, and waking it for the fdatasync took 35-55 us
    /// at one connection (a futex wake, often of a halted virtual CPU), on the path of every
    /// commit: the follower's acknowledgement leaves right after its sync. The loop's other
    /// connections wait for that sync (about 0.2 ms, longer on a stalling disk), as a node's
    /// requests already waited for its rounds. A leader always hands its sync over: its loops
    /// read the acknowledgements that commit its entries while the sync runs (synced on its
    /// loop, one connection's p50 was worse in 5 of 6 alternated pairs). Only a small round:
    /// the apply after the sync runs on the loop too, and a follower catching up (many
    /// entries) or installing a snapshot (a whole state to decode) would hold its other
    /// connections far longer than a sync; those go to the round thread as before.
    private func syncsWhereBegun(_ round: Replica.Round, began: Double) -> Bool {
        Self.syncsWhereBegun(round.outputs, beganAsLeader: round.beganAsLeader, sinceLastSync: began - lastSyncEndedAt)
    }

    /// `syncsWhereBegun`'s rule, on a round's outputs.
    static func syncsWhereBegun(_ outputs: [Output], beganAsLeader: Bool, sinceLastSync gap: Double) -> Bool {
        guard !beganAsLeader, gap >= sparseSyncGapSeconds else { return false }
        var entries = 0
        for output in outputs {
            if output.snapshot != nil { return false }
            entries += output.entries.count + output.committed.count
        }
        return entries <= maxEntriesSyncedWhereBegun
    }

    /// The most entries written and applied in a round an event loop syncs (one client's
    /// commits: one of each).
    static let maxEntriesSyncedWhereBegun = 16

    /// A round an event loop began (`submit`), run here unless handed over; then the round
    /// thread is woken if inputs were queued meanwhile, if it waits for this round to end (a
    /// tick was due), or if it sleeps until a timer event this round brought forward (a new
    /// leader's first heartbeat comes long before the election timeout it slept towards).
    private func runRoundHere(_ batch: [RaftNode.Input], tickGap: Double) {
        guard runRound(batch, tickGap: tickGap, handingOverSync: true) else { return }
        let due = replica.withCore { $0.ticksUntilNextTimerEvent }
        let mustWake = inbox.withLock {
            roundRunner = nil
            if !inputs.isEmpty { isRoundThreadWoken = true }
            return !inputs.isEmpty || isWaitingForRoundHere || lastTick + Double(due) * tickSeconds < roundThreadWakesAt
        }
        if mustWake { inbox.signal() }
    }

    /// A begun round's second half: sync and send (`Replica.finish`), apply, then the
    /// replication that waited for the apply.
    private func complete(_ round: Replica.Round, began: Double) {
        do {
            let started = monotonicSeconds()
            let outputs = try replica.finish(round, sendingThrough: self)
            let finished = monotonicSeconds()
            if round.mustSync {
                lastSyncEndedAt = finished
                if configuration.isFsyncEnabled {
                    metrics.recordSync(seconds: finished - started)
                    lastSyncSeconds = finished - started
                }
            }
            if !round.mayApplyBeforeSync { apply(outputs) }
            replica.sendReplication(of: round, through: self)
            metrics.roundDuration.observe(monotonicSeconds() - began)
        } catch {
            exitOnStorageFailure("cannot write its log: \(error)")
        }
    }

    /// The service layer applies a round's outputs (and answers their clients).
    private func apply(_ outputs: [Output]) {
        let started = monotonicSeconds()
        consumer?.apply(outputs)
        metrics.applyDuration.observe(monotonicSeconds() - started)
    }

    /// A node that cannot keep its durable state stops: acting on state that is not on disk
    /// could break Raft's guarantees.
    func exitOnStorageFailure(_ problem: String) -> Never {
        log.write("FATAL: \(problem); exiting")
        exit(70)
    }

    private var tickSeconds: Double { Double(configuration.tickMicroseconds) / 1_000_000 }
    private var electionTimeoutSeconds: Double { Double(configuration.electionTimeoutMilliseconds) / 1_000 }

    /// A leader whose rounds stepped no ticks for at least an election timeout sent no
    /// heartbeats for that long (its round thread was in a long fdatasync, or the process was
    /// paused or starved of CPU), and its followers may have elected another leader with no
    /// fault injected: said in the log, with the last fdatasync's duration to tell a slow disk
    /// from a pause, and counted (etcd warns alike: "leader failed to send out heartbeat on
    /// time"). Only the round's runner calls it.
    private func noteHeldBackHeartbeats(_ gap: Double) {
        guard let term = replica.withCore({ $0.isLeader ? $0.currentTerm : nil }) else { return }
        metrics.increment(.heartbeatStalls)
        let cause = lastSyncSeconds >= gap / 2 ? "a slow disk" : "the process paused or starved of CPU"
        log.write("term \(term): heartbeats held back \(Int(gap * 1_000)) ms, at least the election timeout "
            + "(\(configuration.electionTimeoutMilliseconds) ms): followers may have elected another leader; "
            + "the last fdatasync took \(String(format: "%.1f", lastSyncSeconds * 1_000)) ms (likely \(cause))")
    }

    /// The queued inputs and the ticks that passed, each input after the ticks that had
    /// passed when it came (`interleaving`), and the time since ticks were last delivered, or
    /// nil when there is nothing to do (under `inbox`). Ticks are counted against the clock;
    /// after a long pause (SIGSTOP) a few election timeouts' worth stand for the rest.
    private func takeInputs(now: Double = monotonicSeconds()) -> (inputs: [RaftNode.Input], tickGap: Double)? {
        let gap = now - lastTick
        let passed = Int(gap / tickSeconds)
        var elapsed = passed
        lastTick += Double(elapsed) * tickSeconds
        let maxCatchUpTicks = 4 * configuration.raftSettings.electionTicks
        if elapsed > maxCatchUpTicks {
            elapsed = maxCatchUpTicks
            lastTick = now
        }
        guard elapsed > 0 || !inputs.isEmpty else { return nil }
        lastRoundInputCount = inputs.count
        let batch = Self.interleaving(inputs, arrivals: arrivals, ticks: elapsed, ticksPassed: passed)
        inputs.removeAll(keepingCapacity: true)
        arrivals.removeAll(keepingCapacity: true)
        return (batch, gap)
    }

    /// The round thread's next batch, or nil when there is nothing to do (the round thread
    /// then no longer counts as running a round).
    private func takeBatch() -> (inputs: [RaftNode.Input], tickGap: Double)? {
        inbox.lock()
        defer { inbox.unlock() }
        guard !isStopped, let batch = takeInputs() else {
            roundRunner = nil
            return nil
        }
        return batch
    }

    /// The round thread: sleeps until the core's next timer event is due, `submit` wakes it
    /// or an event loop hands it a round to sync, then runs rounds over everything queued
    /// plus the ticks that passed, each round persisted with one fdatasync (group commit).
    /// While an event loop runs a round, it waits for that round to end or be handed over.
    /// An idle follower's timer rarely fires: heartbeats keep pushing its election timeout back.
    private func timerLoop() {
        while true {
            let due = replica.withCore { $0.ticksUntilNextTimerEvent }
            inbox.lock()
            let wakeAt = lastTick + Double(due) * tickSeconds
            if !isStopped, handedOver == nil, !isRoundThreadWoken, inputs.isEmpty, wakeAt > monotonicSeconds() {
                roundThreadWakesAt = wakeAt
                _ = inbox.wait(until: Date(timeIntervalSinceNow: wakeAt - monotonicSeconds()))
                roundThreadWakesAt = .infinity
            }
            while !isStopped, roundRunner == .eventLoop {
                isWaitingForRoundHere = true
                inbox.wait()
            }
            isWaitingForRoundHere = false
            if isStopped {
                inbox.unlock()
                return
            }
            isRoundThreadWoken = false
            roundRunner = .roundThread
            let handed = handedOver
            handedOver = nil
            inbox.unlock()
            if let handed { complete(handed.round, began: handed.began) }
            while let (batch, tickGap) = takeBatch() { runRound(batch, tickGap: tickGap) }
        }
    }

    /// The channel to `peer`, created on first use.
    private func channel(to peer: UInt64) -> PostChannel<Envelope> {
        peersLock.withLock {
            if let existing = peers[peer] { return existing }
            let created = makeChannel(to: peer)
            peers[peer] = created
            links.addPeer(peer)
            return created
        }
    }

    /// Hands a round's messages to each peer's channel (held back by the link's delay, if any).
    public func send(_ messages: [(peer: UInt64, envelopes: [Envelope])]) {
        for (peer, envelopes) in messages {
            let delay = links.state(to: peer).delayMilliseconds
            channel(to: peer).send(envelopes, delaySeconds: Double(delay) / 1_000)
        }
    }
}
