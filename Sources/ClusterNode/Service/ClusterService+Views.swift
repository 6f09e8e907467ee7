import Foundation
import Raft
import Transport

extension ClusterService {
    /// `GET /`. The role, term and leader as the service layer took them in (with the round's
    /// events, `logWritten`): a node reports itself leader when it also counts the leadership
    /// and accepts writes, not a moment before, when only its core has taken office.
    func definition() -> NodeDefinition {
        let (view, since, leaderships, recent) = lock.withLock { (coreView, roleChangedAt, metrics[.leaderships], recentLeaders) }
        let peers = currentMembers.filter { $0 != configuration.id }.map(address)
        return NodeDefinition(id: configuration.id, address: address(configuration.id), cluster: configuration.clusterID, peers: peers,
                              state: view.role.apiName, term: view.term, leader: view.leaderID.map(address), roleSince: since,
                              leaderships: leaderships,
                              recentLeaders: Dictionary(uniqueKeysWithValues: recent.map { (String($0.term), address($0.leader)) }))
    }

    /// `GET /stats`: Raft facts with the term they are true for, the last log entries, load and links.
    func stats(links: LinkTable, lastEntryCount: Int = 10) -> NodeStats {
        let running = containers.list()
        let containerCount = running.count
        let cpuUsage = containers.load(of: running)
        lock.lock()
        defer { lock.unlock() }
        let isLeader = withCore { $0.isLeader }
        let placeable = isLeader ? placeableNodes(in: state) : []
        return withCore { core in
            let log = core.log
            let first = max(log.firstIndex, log.lastIndex >= LogIndex(UInt64(lastEntryCount)) ? log.lastIndex - (lastEntryCount - 1) : log.firstIndex)
            let entries = first <= log.lastIndex ? log.entries(in: first...log.lastIndex).map(EntryView.init) : []
            var counters: [String: Int] = [:]
            for counter in NodeMetrics.Counter.allCases { counters[counter.rawValue] = metrics[counter] }
            return NodeStats(
                id: configuration.id, address: address(configuration.id), cluster: configuration.clusterID,
                state: core.role.apiName, term: core.currentTerm.rawValue, votedFor: core.votedFor.map { address($0.rawValue) },
                leader: core.leaderID.map { address($0.rawValue) }, commitIndex: core.commitIndex.rawValue,
                appliedIndex: state.appliedIndex, logLength: log.lastIndex.rawValue, lastEntries: entries,
                capacity: NodeResources.standard(slots: configuration.capacity),
                load: state.usage()[configuration.id] ?? NodeResources(slots: 0, cpuMillicores: 0, memoryMB: 0),
                cpuUsage: cpuUsage, offeredLoad: state.replicaLoads(atMs: LoadView.nowMs())[configuration.id] ?? .zero,
                replicas: containerCount, services: state.services.count,
                unhealthyNodes: state.unhealthyNodes.sorted().map(address),
                connections: Dictionary(uniqueKeysWithValues: links.snapshot.map { (address($0.key), $0.value) }),
                followers: isLeader ? followerViews(core, placeable: placeable) : nil, counters: counters,
                voters: core.membership.voters.sorted().map { address($0.rawValue) },
                learners: core.membership.learners.sorted().map { address($0.rawValue) },
                snapshotIndex: core.snapshot?.metadata.index.rawValue ?? 0, firstLogIndex: log.firstIndex.rawValue,
                leaders: Dictionary(uniqueKeysWithValues: leaderHistory.map { (String($0.key), address($0.value)) }),
                pid: getpid(), dataDirectory: configuration.dataDirectory, commitLatency: metrics.commitLatency.snapshot)
        }
    }

    /// The leader's view of each follower (under the lock, with the core read).
    private func followerViews(_ core: borrowing RaftNode, placeable: Set<UInt64>) -> [String: FollowerView] {
        var followers: [String: FollowerView] = [:]
        let now = monotonicSeconds()
        for member in core.membership.members.map(\.rawValue).sorted() where member != configuration.id {
            guard let progress = core.progress(of: NodeID(member)) else { continue }
            followers[address(member)] = FollowerView(matchIndex: progress.matchIndex.rawValue, nextIndex: progress.nextIndex.rawValue,
                                                      state: progress.state.rawValue, recentlyActive: progress.isRecentlyActive,
                                                      acknowledgedMsAgo: contact.lastAcknowledged(member).map { Int((now - $0) * 1_000) },
                                                      placeable: placeable.contains(member))
        }
        return followers
    }

    /// Entries `from...to` of the log (at most `maxLogPage`), with digests.
    func logPage(from: UInt64, to: UInt64) -> LogPage {
        withCore { core in
            let log = core.log
            let first = max(from, log.firstIndex.rawValue)
            let last = min(to, log.lastIndex.rawValue, first + UInt64(Self.maxLogPage) - 1)
            let entries = first <= last ? log.entries(in: LogIndex(first)...LogIndex(last)).map(LogEntryDigest.init) : []
            return LogPage(commitIndex: core.commitIndex.rawValue, term: core.currentTerm.rawValue, entries: entries)
        }
    }

    /// Entries per `/log` page.
    static let maxLogPage = 1_000

    /// The service calls this node handled as leader, newest last.
    func recentServiceCalls() -> [ServiceCall] { lock.withLock { serviceCallOrder.suffix(ServiceCall.maxRemembered).compactMap { serviceCalls[$0] } } }

    /// The Prometheus text of this node.
    func metricsText() -> MetricsText {
        let applied = lock.withLock { state.appliedIndex }
        let (role, term, commit, last, progress) = withCore { core -> (String, UInt64, UInt64, UInt64, [(UInt64, UInt64)]) in
            let progress = core.membership.members.sorted().compactMap { member in core.progress(of: member).map { (member.rawValue, $0.matchIndex.rawValue) } }
            return (core.role.apiName, core.currentTerm.rawValue, core.commitIndex.rawValue, core.log.lastIndex.rawValue, progress)
        }
        var text = MetricsText()
        let labels = ["cluster": configuration.clusterID, "node": address(configuration.id)]
        text.gauge("raft_term", "Current Raft term.", Double(term), labels: labels)
        for name in ["leader", "follower", "candidate"] {
            text.gauge("raft_state", "1 for the role this node plays now.", name == role ? 1 : 0, labels: labels.merging(["state": name]) { $1 })
        }
        text.gauge("raft_commit_index", "Highest log index known committed.", Double(commit), labels: labels)
        text.gauge("raft_applied_index", "Highest log index applied to the state machine.", Double(applied), labels: labels)
        text.gauge("raft_last_log_index", "Index of the last log entry.", Double(last), labels: labels)
        for counter in NodeMetrics.Counter.allCases {
            text.counter("node_\(snakeCase(counter.rawValue))_total", "Count of \(counter.rawValue).", Double(metrics[counter]), labels: labels)
        }
        let durations = metrics.durations
        text.counter("node_fsync_seconds_total", "Seconds spent in fdatasync.", durations.fsync, labels: labels)
        text.counter("node_commit_wait_seconds_total", "Seconds clients waited for commits (divide by node_commits_total for the mean).", durations.commit, labels: labels)
        text.histogram("raft_commit_duration_seconds", "Seconds from a client's proposal to its commit, on the leader that proposed it.", metrics.commitLatency.snapshot, labels: labels)
        text.histogram("raft_fsync_duration_seconds", "Seconds of each fdatasync of the write-ahead log.", metrics.fsyncDuration.snapshot, labels: labels)
        text.histogram("raft_round_duration_seconds", "Seconds of each Raft round on the round thread: step, log write, fdatasync, send and apply.", metrics.roundDuration.snapshot, labels: labels)
        text.histogram("raft_apply_duration_seconds", "Seconds of each round's apply: committed entries to the state machine, containers reconciled, clients answered.", metrics.applyDuration.snapshot, labels: labels)
        text.histogram("raft_election_duration_seconds", "Seconds from this node's first campaign after losing its leader until it knew a leader again.", metrics.electionDuration.snapshot, labels: labels)
        metrics.requests.write(into: &text, labels: labels)
        for (peer, match) in progress where peer != configuration.id {
            text.gauge("raft_follower_match_index", "Leader's match index for each follower.", Double(match), labels: labels.merging(["peer": address(peer)]) { $1 })
        }
        return text
    }

    private func snakeCase(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase { result += "_" + character.lowercased() } else { result.append(character) }
        }
        return result
    }

    /// This node's own applied services, by ID: not linearizable (for checking that replicas
    /// agree, and for tests).
    func appliedServices() -> [ServiceView] {
        lock.withLock { state.services.values.map(ServiceView.init) }
    }
}
