import ClusterNode
import Raft
import RaftStorage

extension Simulation {
    /// Starts (or restarts) a server from its disk: the node's own write-ahead log
    /// recovers term, vote, log and snapshot, as after a real restart.
    func start(_ position: Int) throws(PropertyViolation) {
        var server = servers[position]
        // After a crash the log was already recovered (and checked) then: nothing wrote since.
        let wal: WriteAheadLog
        if let recovered = server.wal { wal = recovered } else { wal = try openLog(position) }
        server.resetDurable(to: wal.recovered)
        server.wal = wal
        let seed = options.seed &+ UInt64(position) &* 7_919 &+ UInt64(server.restarts) &* 104_729
        var settings = options.settings
        settings.isPreVoteEnabled = profile.isPreVoteEnabled
        settings.isCheckQuorumEnabled = profile.isCheckQuorumEnabled
        settings.isFastFirstElectionEnabled = profile.isFastFirstElectionEnabled
        settings.maxEntriesPerAppend = profile.maxEntriesPerAppend
        settings.maxInflightAppends = profile.maxInflightAppends
        settings.electionJitterTicks = profile.electionJitterTicks
        settings.compactionTrailingEntries = profile.compactionTrailingEntries
        settings.snapshotChunkBytes = profile.snapshotChunkBytes
        settings.snapshotThresholdEntries = profile.snapshotThresholdEntries ?? Int.max / 2
        let (log, snapshot) = (wal.recovered.log, wal.recovered.snapshot)
        let core = RaftNode(id: server.id, membership: server.membership, settings: settings,
                            randomSeed: seed, hardState: wal.recovered.hardState, log: log, snapshot: snapshot)
        server.replica = Replica(core: core, wal: wal)
        // The state machine restarts from the snapshot (or empty) and replays the log, as the
        // node's cluster-service layer does.
        do {
            server.state = try snapshot.map { try ClusterState(snapshotData: $0.data) } ?? SimulatedServer.emptyState(server.membership)
        } catch {
            throw PropertyViolation(property: "Durability", detail: "\(server.id) recovered a snapshot that holds no state: \(error)")
        }
        server.pausedUntil = nil
        servers[position] = server
        // Its in-memory log is now its durable one: check it against everyone's.
        try checker.logChanged(server.id, log: log, from: 1)
    }

    /// One input to one server: into its inbox, and a round begins unless one is in flight
    /// (then it waits for that round's fsync, as the node's inbox does).
    func step(_ position: Int, _ input: RaftNode.Input) throws(PropertyViolation) {
        servers[position].inbox.append(input)
        if servers[position].round == nil { try beginRound(position) }
    }

    /// The first half of the node's round (`Replica.begin`: step, write unsynced); the
    /// second follows when the fsync completes, or at once when nothing needs one.
    private func beginRound(_ position: Int) throws(PropertyViolation) {
        let inputs = servers[position].inbox
        servers[position].inbox = []
        let round: Replica.Round
        do {
            round = try servers[position].replica!.begin(inputs, sendingAheadThrough: self)
        } catch {
            return try stopOnStorageFailure(position, error)
        }
        report.steps += inputs.count
        let id = servers[position].id
        if options.isTracing {
            for output in round.outputs {
                for event in output.events { trace("\(id): \(event)") }
                if let first = output.entries.first, first.index <= servers[position].durableLastIndex {
                    trace("\(id): rewrites its log from \(first.index) with terms \(output.entries.map(\.term.rawValue))")
                }
            }
        }
        let firstWritten = round.outputs.compactMap { $0.entries.first?.index }.min()
        let (role, term, log) = servers[position].replica!.withCore { core in (core.role, core.currentTerm, core.log) }
        try checker.checkLeaderAppendOnly(id, role: role, term: term, log: log, firstWrittenIndex: firstWritten)
        servers[position].round = round
        // A leader's round that commits only what was durable before it applies (and answers)
        // now, as the node does: a crash during the fsync below then follows its answers.
        if round.mayApplyBeforeSync {
            for output in round.outputs { try apply(output, at: position) }
        }
        guard round.mustSync else { return try finishRound(position, round) }
        // fdatasync of a small append: 50 to 400 microseconds, now and then 5 to 50 ms.
        let latency = storageRandom.chance(0.02) ? 5_000 + storageRandom.next(below: 45_000) : 50 + random.next(below: 350)
        queue.schedule(.syncDone(position, generation: servers[position].generation), at: now + UInt64(latency))
    }

    /// The fsync of the round in flight finished: the round's second half.
    func finishSync(_ position: Int) throws(PropertyViolation) {
        guard let round = servers[position].round else { return }
        try finishRound(position, round)
    }

    /// The second half of the node's round (`Replica.finish`: fsync, compact, send), then
    /// the state machine applies, as the node's cluster-service layer does, and the leader's
    /// replication that waited for the apply goes out; what arrived meanwhile is the next round.
    private func finishRound(_ position: Int, _ round: Replica.Round) throws(PropertyViolation) {
        let outputs: [Output]
        do {
            outputs = try servers[position].replica!.finish(round, sendingThrough: self)
        } catch {
            // (The round stays in flight for the crash: its writes may or may not be on disk.)
            return try stopOnStorageFailure(position, error)
        }
        servers[position].round = nil
        for output in outputs {
            if let snapshot = output.snapshot {
                let server = servers[position]
                trace("\(server.id): stores snapshot at \(snapshot.metadata.index) over durable log \(server.durableBase)...\(server.durableLastIndex) (term there \(server.durableTerm(at: snapshot.metadata.index).map(String.init(describing:)) ?? "none"))")
            }
            try checkCommittedKeptOnMajority(position, writing: output.entries)
            servers[position].persist(output)
        }
        if let through = outputs.compactMap(\.compactedThrough).max() {
            // The stored snapshot covers these entries: the write-ahead log dropped them.
            servers[position].compactDurable(through: min(through, servers[position].durableSnapshot?.metadata.index ?? 0))
        }
        for output in outputs {
            try recordDurableChanges(output, at: position)
            if !round.mayApplyBeforeSync { try apply(output, at: position) }
        }
        servers[position].replica?.sendReplication(of: round, through: self)
        if servers[position].isRunning, !servers[position].inbox.isEmpty { try beginRound(position) }
    }

    /// A node that cannot write its log stops, as the real one exits: a full disk is an
    /// operating fault (it restarts later with room again); any other failure is a bug.
    func stopOnStorageFailure(_ position: Int, _ error: StorageError) throws(PropertyViolation) {
        guard servers[position].disk.capacityBytes != nil else {
            throw PropertyViolation(property: "Storage", detail: "\(servers[position].id) could not write: \(error)")
        }
        trace("\(servers[position].id): stops: \(error)")
        try crash(position)
    }

    /// Opens the server's write-ahead log on its disk, recovering what the disk holds.
    private func openLog(_ position: Int) throws(PropertyViolation) -> WriteAheadLog {
        do {
            return try WriteAheadLog(directory: SimulatedServer.directory, maxSegmentBytes: profile.walSegmentBytes,
                                     fileSystem: servers[position].disk)
        } catch {
            throw PropertyViolation(property: "Durability", detail: "\(servers[position].id) cannot recover its write-ahead log: \(error)")
        }
    }

    /// Tells the checker of an output's log changes and elections, once they are durable: a
    /// single voter elects itself and appends within one step, and a crash before the fsync
    /// undoes both (no other server ever saw them), so the same term may then be won again
    /// with other entries.
    private func recordDurableChanges(_ output: Output, at position: Int) throws(PropertyViolation) {
        let id = servers[position].id
        guard let replica = servers[position].replica else { return }
        let needsLog = output.snapshot != nil || !output.entries.isEmpty || !output.events.isEmpty
        guard needsLog else { return }
        let log = replica.withCore { $0.log }
        if output.snapshot != nil {
            checker.logReplaced(id)
            try checker.logChanged(id, log: log, from: log.firstIndex)
        }
        if let first = output.entries.first {
            try checker.logChanged(id, log: log, from: max(first.index, log.firstIndex))
        }
        for event in output.events {
            if case .becameLeader(let term) = event {
                report.elections += 1
                report.maxTerm = max(report.maxTerm, term)
                try checker.leaderElected(id, term: term, log: log)
            }
        }
    }

    /// Applies an output to the server's state machine, then checks its outcomes.
    private func apply(_ output: Output, at position: Int) throws(PropertyViolation) {
        guard let replica = servers[position].replica else { return }
        let term = replica.withCore { $0.currentTerm }
        try applyToStateMachine(output, at: position, term: term)
        report.committedEntries = checker.committed.count
        for outcome in output.proposals { try checkOutcome(outcome) }
        for outcome in output.reads { try checkRead(outcome, at: position) }
        if !output.committed.isEmpty, !servers[position].isSnapshotDue, replica.snapshotDue(appliedIndex: servers[position].state.appliedIndex) != nil {
            servers[position].isSnapshotDue = true
            queue.schedule(.takeSnapshot(position, generation: servers[position].generation), at: now + 1)
        }
    }

    /// A read served at `index` must see every write acknowledged before it was asked, and
    /// the serving server must have applied that far.
    private func checkRead(_ outcome: ReadOutcome, at position: Int) throws(PropertyViolation) {
        guard case .ready(let id, let index) = outcome, let acknowledgedBefore = outstandingReads.removeValue(forKey: id) else {
            if case .failed(let id, _) = outcome { outstandingReads[id] = nil }
            return
        }
        guard index >= acknowledgedBefore, Int(index.rawValue) <= checker.committed.count,
              servers[position].appliedIndex >= index
        else {
            throw PropertyViolation(property: "Linearizable read",
                                    detail: "read \(id) on \(servers[position].id) served at index \(index) (applied \(servers[position].appliedIndex), committed \(checker.committed.count)) after a write acknowledged at \(acknowledgedBefore)")
        }
        report.readsServed += 1
    }

    /// An acknowledged proposal must be the committed entry at its index; an overwritten
    /// one must not be.
    private func checkOutcome(_ outcome: ProposalOutcome) throws(PropertyViolation) {
        guard let data = outstandingProposals.removeValue(forKey: outcome.id) else { return }
        switch outcome {
        case .committed(let id, let index):
            guard let entry = checker.committedEntry(at: index), entry.data == data else {
                throw PropertyViolation(property: "Acknowledged write",
                                        detail: "proposal \(id) acknowledged at \(index) but the committed entry there is \(String(describing: checker.committedEntry(at: index)))")
            }
            report.proposalsAcknowledged += 1
            highestAcknowledged = max(highestAcknowledged, index)
            if id == livenessProposal { livenessTarget = index }
        case .failed(let id, .overwritten(let index)):
            // (A retry has the bytes of the request it repeats: only a unique proposal can be told apart.)
            if let entry = checker.committedEntry(at: index), entry.data == data, !resentCommands.contains(data) {
                throw PropertyViolation(property: "Proposal outcome", detail: "proposal \(id) reported overwritten but committed at \(index)")
            }
        case .failed:
            break
        }
    }

    public func send(_ messages: [(peer: UInt64, envelopes: [Envelope])]) {
        for (_, envelopes) in messages {
            for envelope in envelopes { send(envelope) }
        }
    }

    func send(_ envelope: Envelope) {
        report.messagesSent += 1
        guard !cutLinks.contains(Link(from: envelope.from, to: envelope.to)), !random.chance(dropRate) else {
            report.messagesDropped += 1
            return
        }
        let delay = profile.minimumDelayMicroseconds + UInt64(random.next(below: Int(profile.delayJitterMicroseconds) + 1))
        queue.schedule(.deliver(envelope), at: now + delay)
        if random.chance(duplicateRate) {
            queue.schedule(.deliver(envelope), at: now + delay + UInt64(random.next(below: 20_000)))
        }
    }

    /// Kills a server: its memory is gone, and its disk loses what was not fsync'd, except
    /// any prefix of the batch being synced that reached it anyway, possibly torn (the
    /// messages of those outputs were never sent). Recovery must then find everything that
    /// was synced, and nothing damaged.
    func crash(_ position: Int) throws(PropertyViolation) {
        var server = servers[position]
        trace("\(server.id): crashes (durable last \(server.durableLastIndex), syncing \(server.round?.outputs.count ?? 0) outputs)")
        server.wal = nil
        let lostBytes = server.disk.crash(using: &random)
        server.disk.capacityBytes = nil  // a full disk gets room before the node starts again
        // Where the batch being synced rewrote the log: its first entry, or what follows an
        // installed snapshot (the snapshot file is stored at once; entries after a snapshot
        // that conflicts with them are dropped with it, as Raft requires).
        let rewrittenFrom = (server.round?.outputs ?? []).flatMap { output in
            [output.entries.first?.index, output.snapshot.map { $0.metadata.index + 1 }].compactMap { $0 }
        }.min()
        servers[position] = server
        let wal = try openLog(position)
        try checkRecovery(of: server, wal.recovered, lostBytes: lostBytes, rewrittenFrom: rewrittenFrom)
        server.resetDurable(to: wal.recovered)
        server.wal = wal  // kept for the restart
        server.replica = nil
        server.round = nil
        server.inbox = []
        server.generation += 1
        server.restarts += 1
        server.pausedUntil = nil
        server.isSnapshotDue = false
        servers[position] = server
        checker.crashed(server.id)
        report.crashes += 1
        announceClose(of: server.id)
        try checkCommittedSurvivesCrash()
    }

    /// A crash the network announces (its sockets close, as kill -9 does to a process): the
    /// other servers hear that the crashed one's connection closed, each after its own small
    /// delay; in runs where crashes are silent (a machine that lost power) they hear nothing.
    /// Now and then a live server's connection closes too (a reconnect), which must be
    /// harmless.
    func announceClose(of id: NodeID) {
        guard profile.isCrashAnnounced else { return }
        for other in servers.indices where servers[other].isRunning && servers[other].id != id {
            queue.schedule(.connectionClosed(other, peer: id), at: now + UInt64(50 + random.next(below: 2_000)))
        }
    }

    /// A connection of a live server closes without its process dying.
    func closeConnectionSpuriously() {
        let running = servers.indices.filter { servers[$0].isRunning }
        guard profile.isCrashAnnounced, running.count >= 2 else { return }
        let peer = running[random.next(below: running.count)]
        let listener = running.filter { $0 != peer }[random.next(below: running.count - 1)]
        queue.schedule(.connectionClosed(listener, peer: servers[peer].id), at: now + UInt64(random.next(below: 1_000)))
    }

    /// A server whose removal committed is stopped for good, as the orchestrator does (a
    /// removed server left running would only disturb the cluster with elections it cannot win).
    func decommission(_ id: NodeID) throws(PropertyViolation) {
        let position = Int(id.rawValue) - 1
        guard !committedMembership.members.contains(id) else { return }
        if servers[position].isRunning { try crash(position) }
        servers[position].isRetired = true
        trace("\(id): retired")
    }

    func restart(_ position: Int) throws(PropertyViolation) {
        trace("\(servers[position].id): restarts with snapshot at \(servers[position].durableSnapshot?.metadata.index ?? 0), durable log through \(servers[position].durableLastIndex)")
        try start(position)
        queue.schedule(.tick(position, generation: servers[position].generation),
                       at: now + UInt64(random.next(below: Int(options.tickMicroseconds))))
    }

}

extension Simulation: ReplicaNetwork {
    static func describe(_ input: RaftNode.Input) -> String {
        switch input {
        case .tick: "tick"
        case .receive(let envelope):
            if case .installSnapshot(let chunk) = envelope.message {
                "snapshot chunk at \(chunk.offset) of \(chunk.totalBytes) bytes (index \(chunk.metadata.index), term \(chunk.metadata.term)) from \(envelope.from)"
            } else {
                "\(envelope.message) from \(envelope.from)"
            }
        case .propose(let proposals): "propose \(proposals.count)"
        case .read(let id): "read \(id)"
        case .transferLeadership(let target): "transfer to \(target)"
        case .changeMembership(_, let change): "\(change)"
        case .snapshotTaken(let snapshot): "snapshot taken at \(snapshot.metadata.index)"
        case .peerUnreachable(let peer): "the connection from \(peer) closed"
        }
    }
}

extension Int {
    var logIndex: LogIndex { LogIndex(UInt64(self)) }
}
