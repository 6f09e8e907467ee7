/// Snapshots and log compaction (§7). The driver serializes the state machine at an
/// applied index and hands the stored snapshot in; the core keeps it, compacts its log up
/// to it (keeping a tail for followers slightly behind), and sends it in chunks to any
/// follower that needs compacted entries.
extension RaftNode {
    /// The metadata a snapshot of the state machine at `index` must carry, or nil when
    /// `index` is not applied yet or no longer in the log.
    public func snapshotMetadata(at index: LogIndex) -> SnapshotMetadata? {
        guard index <= emittedCommitIndex, let term = log.term(at: index) else { return nil }
        return SnapshotMetadata(index: index, term: term, membership: membership(at: index))
    }

    mutating func snapshotTaken(_ taken: Snapshot) {
        let metadata = taken.metadata
        guard metadata.index > (snapshot?.metadata.index ?? 0), metadata.index <= emittedCommitIndex,
              log.matches(index: metadata.index, term: metadata.term)
        else { return }
        snapshot = taken
        // Keep a tail of entries, and everything after a snapshot still being sent: the
        // follower receiving it will continue from its index with appends.
        var through = metadata.index - min(Int(metadata.index.rawValue), settings.compactionTrailingEntries)
        if let pinned = leaderState?.snapshotTransfers.values.map(\.snapshot.metadata.index).min() {
            through = min(through, pinned)
        }
        compactLog(through: through)
    }

    private mutating func compactLog(through index: LogIndex) {
        guard index > log.snapshotIndex, let term = log.term(at: index) else { return }
        compactConfigurations(through: index)
        log.compact(through: index, term: term)
        output.compactedThrough = index
        output.events.append(.compacted(through: index))
    }

    // MARK: - Leader

    mutating func startSnapshotTransfer(to peer: NodeID) {
        guard let snapshot, var progress = leaderState?.progress[peer] else {
            preconditionFailure("\(id): the log is compacted through \(log.snapshotIndex) but there is no snapshot to send")
        }
        progress.becomeSnapshot(index: snapshot.metadata.index)
        leaderState?.progress[peer] = progress
        leaderState?.snapshotTransfers[peer] = SnapshotTransfer(snapshot: snapshot)
        output.events.append(.snapshotSendStarted(peer: peer, index: snapshot.metadata.index))
        sendSnapshotChunks(to: peer)
    }

    /// Sends the next chunks of `peer`'s snapshot, as far as the window allows.
    mutating func sendSnapshotChunks(to peer: NodeID) {
        guard var transfer = leaderState?.snapshotTransfers[peer] else { return }
        let data = transfer.snapshot.data
        let chunkBytes = settings.snapshotChunkBytes
        let checksum = transfer.checksum
        while !transfer.isLastSent, transfer.nextOffset - transfer.acknowledgedOffset < chunkBytes * settings.maxInflightSnapshotChunks {
            let end = min(data.count, transfer.nextOffset + chunkBytes)
            let isLast = end == data.count
            send(.installSnapshot(InstallSnapshot(
                term: currentTerm, metadata: transfer.snapshot.metadata, offset: UInt64(transfer.nextOffset),
                totalBytes: UInt64(data.count), checksum: checksum, data: Array(data[transfer.nextOffset..<end]),
                isLast: isLast)), to: peer)
            transfer.nextOffset = end
            transfer.isLastSent = isLast
        }
        leaderState?.snapshotTransfers[peer] = transfer
    }

    mutating func handleInstallSnapshotResponse(_ response: InstallSnapshotResponse, from peer: NodeID) {
        guard var transfer = leaderState?.snapshotTransfers[peer],
              transfer.snapshot.metadata.index == response.snapshotIndex else { return }
        leaderState?.progress[peer]?.isRecentlyActive = true
        let offset = Int(clamping: response.nextOffset)
        if offset > transfer.acknowledgedOffset, offset < transfer.snapshot.data.count {
            // Progress; beyond what this transfer sent when the follower kept the chunks of
            // an earlier transfer of the same snapshot: it continues from there.
            transfer.acknowledgedOffset = offset
            transfer.idleTicks = 0
            if offset > transfer.nextOffset {
                transfer.nextOffset = offset
                transfer.isLastSent = false
            }
        } else if offset == 0, transfer.acknowledgedOffset > 0 {
            // The follower lost what it had (it restarted, or the whole arrived damaged):
            // start over. An answer below the acknowledged offset but above 0 is an old one
            // overtaken on the way: acting on it would resend the window for nothing.
            transfer.acknowledgedOffset = 0
            transfer.nextOffset = 0
            transfer.isLastSent = false
        } else if offset == transfer.acknowledgedOffset, transfer.nextOffset > offset, transfer.fastResentFrom != offset {
            // A chunk after a lost or overtaken one: the follower still waits at `offset`.
            // Resend the window from there once (fast retransmit); further answers at the
            // same offset change nothing, since resending on each would multiply the traffic.
            transfer.fastResentFrom = offset
            transfer.nextOffset = offset
            transfer.isLastSent = false
        }
        // Otherwise a lost chunk is resent when the transfer has been idle for two heartbeats
        // (go-back-N on timeout).
        leaderState?.snapshotTransfers[peer] = transfer
        sendSnapshotChunks(to: peer)
    }

    /// Resends a stalled transfer (its last chunk or the final answer was lost) every two
    /// heartbeats, and gives up on a follower silent for two election timeouts: it no
    /// longer pins the snapshot, and gets the newest one when it answers again.
    mutating func tickSnapshotTransfers() {
        guard let transfers = leaderState?.snapshotTransfers, !transfers.isEmpty else { return }
        for peer in transfers.keys.sorted() {  // in a fixed order: the same inputs give the same outputs
            guard var transfer = transfers[peer] else { continue }
            transfer.idleTicks += 1
            if transfer.idleTicks >= 2 * settings.electionTicks {
                leaderState?.snapshotTransfers[peer] = nil
                leaderState?.progress[peer]?.becomeProbe()
                continue
            }
            if transfer.idleTicks % (2 * settings.heartbeatTicks) == 0 {
                transfer.nextOffset = transfer.acknowledgedOffset
                transfer.isLastSent = false
            }
            leaderState?.snapshotTransfers[peer] = transfer
            sendSnapshotChunks(to: peer)
        }
    }

    // MARK: - Follower

    mutating func handleInstallSnapshot(_ request: InstallSnapshot, from leader: NodeID) {
        followCurrentLeader(leader)
        let metadata = request.metadata
        if metadata.index <= commitIndex {
            // Everything it covers is committed here already.
            incomingSnapshot = nil
            send(.appendEntriesResponse(AppendEntriesResponse(term: currentTerm, isSuccess: true, matchIndex: commitIndex)), to: leader)
            return
        }
        let isAssembling = incomingSnapshot.map { $0.metadata == metadata && $0.checksum == request.checksum } ?? false
        if request.offset == 0, !isAssembling, request.totalBytes <= UInt64(settings.maxSnapshotBytes) {
            // A new snapshot (the first chunk of the one being assembled again, resent or
            // duplicated, must not throw away what arrived after it).
            incomingSnapshot = IncomingSnapshot(metadata: metadata, totalBytes: request.totalBytes,
                                                checksum: request.checksum, data: [])
        }
        guard var incoming = incomingSnapshot, incoming.metadata == metadata, incoming.checksum == request.checksum,
              incoming.totalBytes == request.totalBytes, request.offset == UInt64(incoming.data.count),
              UInt64(incoming.data.count + request.data.count) <= incoming.totalBytes
        else {
            let held = incomingSnapshot.map { $0.metadata == metadata ? UInt64($0.data.count) : 0 } ?? 0
            send(.installSnapshotResponse(InstallSnapshotResponse(term: currentTerm, snapshotIndex: metadata.index, nextOffset: held)), to: leader)
            return
        }
        incoming.data.append(contentsOf: request.data)
        guard request.isLast else {
            incomingSnapshot = incoming
            send(.installSnapshotResponse(InstallSnapshotResponse(term: currentTerm, snapshotIndex: metadata.index,
                                                                  nextOffset: UInt64(incoming.data.count))), to: leader)
            return
        }
        incomingSnapshot = nil
        let received = Snapshot(metadata: metadata, data: incoming.data)
        guard UInt64(received.data.count) == incoming.totalBytes, received.checksum == incoming.checksum else {
            // Damaged on the way: start over.
            send(.installSnapshotResponse(InstallSnapshotResponse(term: currentTerm, snapshotIndex: metadata.index, nextOffset: 0)), to: leader)
            return
        }
        install(received)
        send(.appendEntriesResponse(AppendEntriesResponse(term: currentTerm, isSuccess: true, matchIndex: metadata.index)), to: leader)
    }

    /// §7: a log that holds the snapshot's last entry keeps what follows it; any other log
    /// is discarded. The state machine restarts from the snapshot.
    private mutating func install(_ received: Snapshot) {
        let metadata = received.metadata
        // Proposals are resolved against the log as it was, before the snapshot replaces it.
        resolveProposals(coveredBy: metadata, keepsSuffix: log.matches(index: metadata.index, term: metadata.term))
        log.install(snapshotAt: metadata.index, term: metadata.term)
        snapshot = received
        let previous = membership
        configurations = [(metadata.index, metadata.membership)]
        updateConfigurations(from: metadata.index + 1, previous: previous)
        commitIndex = metadata.index
        emittedCommitIndex = metadata.index
        output.snapshot = received
        output.events.append(.snapshotInstalled(index: metadata.index))
    }

    /// Proposals this server made as an earlier leader at indexes the snapshot covers: the
    /// log still says whether each is the committed entry when it holds the snapshot's last
    /// entry; otherwise the entry is committed when it has the term of that last entry
    /// (that leader wrote both and never rewrites its own), and unknown if not.
    private mutating func resolveProposals(coveredBy metadata: SnapshotMetadata, keepsSuffix: Bool) {
        while pendingProposalsHead < pendingProposals.count,
              pendingProposals[pendingProposalsHead].index <= metadata.index
        {
            let pending = pendingProposals[pendingProposalsHead]
            pendingProposalsHead += 1
            if keepsSuffix {
                output.proposals.append(log.term(at: pending.index) == pending.term
                    ? .committed(pending.id, index: pending.index)
                    : .failed(pending.id, .overwritten(index: pending.index)))
            } else if pending.term == metadata.term {
                output.proposals.append(.committed(pending.id, index: pending.index))
            } else {
                output.proposals.append(.failed(pending.id, .outcomeUnknown(index: pending.index)))
            }
        }
    }
}
