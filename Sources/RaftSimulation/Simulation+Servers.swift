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
        settings.maxEntriesPerAppend = profile.maxEntriesPerAppend
        settings.maxInflightAppends = profile.maxInflightAppends
        settings.electionJitterTicks = profile.electionJitterTicks
        settings.compactionTrailingEntries = profile.compactionTrailingEntries
        settings.snapshotChunkBytes = profile.snapshotChunkBytes
        let (log, snapshot) = (wal.recovered.log, wal.recovered.snapshot)
        server.core = RaftNode(id: server.id, membership: server.membership, settings: settings,
                               randomSeed: seed, hardState: wal.recovered.hardState, log: log, snapshot: snapshot)
        // The state machine restarts from the snapshot (or empty) and replays the log.
        server.appliedIndex = snapshot?.metadata.index ?? 0
        server.stateDigest = snapshot.map(Self.digest(of:)) ?? 0
        server.pausedUntil = nil
        servers[position] = server
        // Its in-memory log is now its durable one: check it against everyone's.
        try checker.logChanged(server.id, log: servers[position].core!.log, from: 1)
    }

    /// One input to one server's core, then its output into the fsync pipeline.
    func step(_ position: Int, _ input: RaftNode.Input) throws(PropertyViolation) {
        let output = servers[position].core!.step(input)
        report.steps += 1
        let core = servers[position].core!
        if options.isTracing {
            for event in output.events { trace("\(core.id): \(event) [input \(Self.describe(input))]") }
            if let first = output.entries.first, first.index <= servers[position].durableLastIndex {
                trace("\(core.id): rewrites its log from \(first.index) with terms \(output.entries.map(\.term.rawValue)) [input \(Self.describe(input))]")
            }
        }
        if let through = output.compactedThrough, case .snapshotTaken = input {
            // The snapshot was stored before the core was told; the entries it covers may go.
            let covered = min(through, servers[position].durableSnapshot?.metadata.index ?? 0)
            servers[position].compactDurable(through: covered)
            do {
                try servers[position].wal?.compact(through: covered)
            } catch {
                return try stopOnStorageFailure(position, error)
            }
        }
        try checker.checkLeaderAppendOnly(core.id, role: core.role, term: core.currentTerm, log: core.log,
                                          firstWrittenIndex: output.entries.first?.index)
        let needsDurability = output.hardState != nil || !output.entries.isEmpty || output.snapshot != nil
        if servers[position].syncing.isEmpty {
            if needsDurability {
                servers[position].syncing = [output]
                try startSync(position)
            } else {
                try carryOut(output, at: position)
            }
        } else {
            servers[position].waiting.append(output)
        }
    }

    /// Writes the batch being synced to the server's log (one write, as the node's driver
    /// does for a round) and schedules the end of its fdatasync.
    private func startSync(_ position: Int) throws(PropertyViolation) {
        do {
            _ = try servers[position].wal?.record(servers[position].syncing)
            try servers[position].wal?.flush(sync: false)
        } catch {
            return try stopOnStorageFailure(position, error)
        }
        // fdatasync of a small append: 50 to 400 microseconds, now and then 5 to 50 ms.
        let latency = storageRandom.chance(0.02) ? 5_000 + storageRandom.next(below: 45_000) : 50 + random.next(below: 350)
        queue.schedule(.syncDone(position, generation: servers[position].generation), at: now + UInt64(latency))
    }

    /// A node that cannot write its log stops, as the real one exits: a full disk is an
    /// operating fault (it restarts later with room again); any other failure is a bug.
    private func stopOnStorageFailure(_ position: Int, _ error: StorageError) throws(PropertyViolation) {
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

    /// The fsync finished: what it covered is durable, so its messages go out and its
    /// committed entries are applied; what arrived meanwhile is the next batch.
    func finishSync(_ position: Int) throws(PropertyViolation) {
        let batch = servers[position].syncing
        do {
            try servers[position].wal?.flush(sync: true)
        } catch {
            return try stopOnStorageFailure(position, error)
        }
        for output in batch {
            if let snapshot = output.snapshot {
                let server = servers[position]
                trace("\(server.id): stores snapshot at \(snapshot.metadata.index) over durable log \(server.durableBase)...\(server.durableLastIndex) (term there \(server.durableTerm(at: snapshot.metadata.index).map(String.init(describing:)) ?? "none"))")
            }
            try checkCommittedKeptOnMajority(position, writing: output.entries)
            servers[position].persist(output)
        }
        servers[position].syncing = servers[position].waiting
        servers[position].waiting = []
        if !servers[position].syncing.isEmpty { try startSync(position) }
        for output in batch { try carryOut(output, at: position) }
    }

    /// Sends an output's messages, applies its committed entries, checks its outcomes.
    private func carryOut(_ output: Output, at position: Int) throws(PropertyViolation) {
        for envelope in output.messages { send(envelope) }
        let id = servers[position].id
        // Log changes and elections count once they are durable: a single voter elects itself
        // and appends within one step, and a crash before the fsync undoes both (no other
        // server ever saw them), so the same term may then be won again with other entries.
        if servers[position].isRunning {  // (the core is read in place: copying it costs a retain per field)
            if output.snapshot != nil {
                checker.logReplaced(id)
                try checker.logChanged(id, log: servers[position].core!.log, from: servers[position].core!.log.firstIndex)
            }
            if let first = output.entries.first {
                try checker.logChanged(id, log: servers[position].core!.log, from: max(first.index, servers[position].core!.log.firstIndex))
            }
            for event in output.events {
                if case .becameLeader(let term) = event {
                    report.elections += 1
                    report.maxTerm = max(report.maxTerm, term)
                    try checker.leaderElected(id, term: term, log: servers[position].core!.log)
                }
            }
        }
        let term = servers[position].core?.currentTerm ?? 0
        if let snapshot = output.snapshot {
            // State Machine Safety through snapshots: the state it carries is the one every
            // server reached by applying the committed entries up to its index.
            let index = Int(snapshot.metadata.index.rawValue)
            let digest = Self.digest(of: snapshot)
            guard index < checker.committedDigests.count, checker.committedDigests[index] == digest else {
                throw PropertyViolation(property: "State Machine Safety",
                                        detail: "\(id) installed a snapshot at \(index) whose state differs from the committed history's")
            }
            servers[position].appliedIndex = snapshot.metadata.index
            servers[position].stateDigest = digest
            report.snapshotsInstalled += 1
        }
        for entry in output.committed {
            guard entry.index == servers[position].appliedIndex + 1 else {
                throw PropertyViolation(property: "State Machine Safety",
                                        detail: "\(id) applied \(entry.index) after \(servers[position].appliedIndex)")
            }
            let isNewlyCommitted = Int(entry.index.rawValue) > checker.committed.count
            try checker.applied(entry, by: id, inTerm: term)
            if isNewlyCommitted {
                try checkDurableOnMajority(entry)
                if entry.kind == .membership, let membership = Membership(encoded: entry.data) {
                    for removed in committedMembership.members.subtracting(membership.members) {
                        queue.schedule(.decommission(removed), at: now + 1)
                    }
                    committedMembership = membership
                }
            }
            servers[position].appliedIndex = entry.index
            servers[position].stateDigest = SafetyChecker.mix(servers[position].stateDigest, entry)
        }
        report.committedEntries = checker.committed.count
        for outcome in output.proposals { try checkOutcome(outcome) }
        for outcome in output.reads { try checkRead(outcome, at: position) }
        if let threshold = profile.snapshotThresholdEntries, !servers[position].isSnapshotDue,
           servers[position].appliedIndex >= (servers[position].durableSnapshot?.metadata.index ?? 0) + threshold
        {
            servers[position].isSnapshotDue = true
            queue.schedule(.takeSnapshot(position, generation: servers[position].generation), at: now + 1)
        }
    }

    /// The state machine's state as a snapshot: its applied index and digest.
    func takeSnapshot(_ position: Int) throws(PropertyViolation) {
        servers[position].isSnapshotDue = false
        guard let core = servers[position].core, let metadata = core.snapshotMetadata(at: servers[position].appliedIndex) else { return }
        var writer = ByteWriter()
        writer.write(metadata.index.rawValue)
        writer.write(servers[position].stateDigest)
        // Pad it so that some snapshots take several chunks to send.
        writer.write([UInt8](repeating: 0, count: profile.snapshotPaddingBytes))
        let snapshot = Snapshot(metadata: metadata, data: writer.bytes)
        do {
            // As the node's driver does: stored (temporary file, fsync, rename) before the core is told.
            try servers[position].wal?.snapshots.save(snapshot)
        } catch {
            return try stopOnStorageFailure(position, error)
        }
        servers[position].durableSnapshot = snapshot
        report.snapshotsTaken += 1
        try step(position, .snapshotTaken(snapshot))
    }

    static func digest(of snapshot: Snapshot) -> UInt64 {
        var reader = ByteReader(snapshot.data[...])
        _ = try? reader.readUInt64()
        return (try? reader.readUInt64()) ?? 0
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
            if let entry = checker.committedEntry(at: index), entry.data == data {
                throw PropertyViolation(property: "Proposal outcome", detail: "proposal \(id) reported overwritten but committed at \(index)")
            }
        case .failed:
            break
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
        trace("\(server.id): crashes (durable last \(server.durableLastIndex), syncing \(server.syncing.count) outputs)")
        server.wal = nil
        let lostBytes = server.disk.crash(using: &random)
        server.disk.capacityBytes = nil  // a full disk gets room before the node starts again
        // Where the batch being synced rewrote the log: its first entry, or what follows an
        // installed snapshot (the snapshot file is stored at once; entries after a snapshot
        // that conflicts with them are dropped with it, as Raft requires).
        let rewrittenFrom = server.syncing.flatMap { output in
            [output.entries.first?.index, output.snapshot.map { $0.metadata.index + 1 }].compactMap { $0 }
        }.min()
        servers[position] = server
        let wal = try openLog(position)
        try checkRecovery(of: server, wal.recovered, lostBytes: lostBytes, rewrittenFrom: rewrittenFrom)
        server.resetDurable(to: wal.recovered)
        server.wal = wal  // kept for the restart
        server.core = nil
        server.syncing = []
        server.waiting = []
        server.generation += 1
        server.restarts += 1
        server.pausedUntil = nil
        server.isSnapshotDue = false
        servers[position] = server
        checker.crashed(server.id)
        report.crashes += 1
        try checkCommittedSurvivesCrash()
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

extension Simulation {
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
        }
    }
}

extension Int {
    var logIndex: LogIndex { LogIndex(UInt64(self)) }
}
