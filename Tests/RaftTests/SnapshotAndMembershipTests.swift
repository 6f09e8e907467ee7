import Raft
import Testing

/// Snapshots, compaction and InstallSnapshot (§7); membership changes one server at a
/// time (thesis §4).
@Suite struct SnapshotAndMembershipTests {
    static var smallChunks: RaftSettings {
        var settings = ScriptedCluster.settings
        settings.snapshotChunkBytes = 100
        settings.maxInflightSnapshotChunks = 2
        settings.compactionTrailingEntries = 5
        return settings
    }

    /// Leader 1 with 40 committed commands that server 3 missed while isolated.
    static func clusterWithLaggingFollower() -> ScriptedCluster {
        var cluster = ScriptedCluster(size: 3, settings: smallChunks)
        cluster.elect(1)
        cluster.isolate(3)
        cluster.propose(1, (1...40).map { "c\($0)" })
        cluster.deliverAll()
        cluster.tickAll(times: 2)
        return cluster
    }

    @Test func snapshotCompactsTheLogKeepingATail() {
        var cluster = Self.clusterWithLaggingFollower()
        let commit = cluster.node(1).commitIndex
        #expect(commit == 41)
        cluster.step(1, .snapshotTaken(cluster.snapshot(of: 1)))
        #expect(cluster.node(1).snapshot?.metadata.index == commit)
        #expect(cluster.node(1).log.snapshotIndex == commit - 5)
        #expect(cluster.events[1, default: []].contains(.compacted(through: commit - 5)))
        // A snapshot beyond what is applied, or older than the current one, is ignored.
        var future = cluster.snapshot(of: 1)
        future.metadata.index = commit + 10
        cluster.step(1, .snapshotTaken(future))
        #expect(cluster.node(1).snapshot?.metadata.index == commit)
    }

    @Test func laggingFollowerInstallsTheSnapshotInChunksThenTakesAppends() {
        var cluster = Self.clusterWithLaggingFollower()
        let snapshot = cluster.snapshot(of: 1, paddedTo: 1_000)
        cluster.step(1, .snapshotTaken(snapshot))
        cluster.heal()
        cluster.tickAll(times: 5)
        let chunks = cluster.delivered.filter { if case .installSnapshot = $0.message { $0.to == 3 } else { false } }
        #expect(chunks.count >= 10)
        #expect(cluster.node(3).snapshot == snapshot)
        #expect(cluster.events[3, default: []].contains(.snapshotInstalled(index: snapshot.metadata.index)))
        // It continues with appends: new commands reach it as entries.
        cluster.propose(1, ["after"], firstID: 100)
        cluster.tickAll(times: 2)
        #expect(cluster.node(3).commitIndex == cluster.node(1).commitIndex)
        #expect(cluster.committed[3, default: []].last.map { String(decoding: $0.data, as: UTF8.self) } == "after")
        // Nothing the snapshot covers was applied entry by entry: the state machine restored
        // from it (only the first leader's no-op came before the isolation).
        #expect(cluster.committed[3, default: []].map(\.index).filter { $0 > 1 }.first == snapshot.metadata.index + 1)
    }

    // etcd #4055 / hashicorp/raft #212: a new snapshot taken while one is being sent must
    // neither restart the transfer nor compact away the entries the follower will need.
    @Test func newerSnapshotDuringATransferNeitherRestartsItNorCompactsPastIt() {
        var cluster = Self.clusterWithLaggingFollower()
        let first = cluster.snapshot(of: 1, paddedTo: 2_000)
        cluster.step(1, .snapshotTaken(first))
        cluster.heal()
        for _ in 0..<20 where cluster.node(1).progress(of: 3)?.state != .snapshot {
            for id in cluster.ids { cluster.step(id, .tick) }
            cluster.deliver { $0.node(1).progress(of: 3)?.state == .snapshot }
        }
        #expect(cluster.node(1).progress(of: 3)?.state == .snapshot)
        cluster.cut(3, 1)  // chunks arrive, answers do not: the transfer stays under way
        cluster.deliverAll()
        cluster.propose(1, (1...30).map { "more\($0)" }, firstID: 200)
        cluster.deliverAll()
        let second = cluster.snapshot(of: 1, paddedTo: 2_000)
        #expect(second.metadata.index > first.metadata.index + 5)
        cluster.step(1, .snapshotTaken(second))
        // Compaction stops at the snapshot being sent.
        #expect(cluster.node(1).log.snapshotIndex == first.metadata.index)
        cluster.heal()
        cluster.tickAll(times: 30)
        let started = cluster.events[1, default: []].filter { if case .snapshotSendStarted = $0 { true } else { false } }
        #expect(started == [.snapshotSendStarted(peer: 3, index: first.metadata.index)])
        #expect(cluster.node(3).commitIndex == cluster.node(1).commitIndex)
        #expect(cluster.node(3).snapshot?.metadata.index == first.metadata.index)
    }

    @Test func damagedSnapshotIsRefusedAndResent() {
        var follower = makeNode(id: 2, peers: 3, term: 1)
        let metadata = SnapshotMetadata(index: 10, term: 1, membership: Membership(voters: [1, 2, 3]))
        let data = [UInt8](repeating: 1, count: 50)
        let good = Snapshot(metadata: metadata, data: data)
        let chunk = InstallSnapshot(term: 1, metadata: metadata, offset: 0, totalBytes: 50, checksum: good.checksum &+ 1,
                                    data: data, isLast: true)
        let output = follower.step(.receive(Envelope(from: 1, to: 2, message: .installSnapshot(chunk))))
        #expect(output.snapshot == nil)
        #expect(output.messages.map(\.message) == [.installSnapshotResponse(InstallSnapshotResponse(term: 1, snapshotIndex: 10, nextOffset: 0))])
        // A chunk out of order is answered with where the follower stands.
        let late = InstallSnapshot(term: 1, metadata: metadata, offset: 20, totalBytes: 50, checksum: good.checksum,
                                   data: Array(data[20...]), isLast: true)
        let answer = follower.step(.receive(Envelope(from: 1, to: 2, message: .installSnapshot(late))))
        #expect(answer.messages.map(\.message) == [.installSnapshotResponse(InstallSnapshotResponse(term: 1, snapshotIndex: 10, nextOffset: 0))])
        #expect(follower.commitIndex == 0)
    }

    @Test func followerWhoseLogConflictsDiscardsItOnInstall() {
        // Its entries 1...5 are of term 1; the snapshot's entry 5 is of term 2.
        var follower = makeNode(id: 2, peers: 3, term: 2, logTerms: [1, 1, 1, 1, 1])
        let metadata = SnapshotMetadata(index: 5, term: 2, membership: Membership(voters: [1, 2, 3]))
        let snapshot = Snapshot(metadata: metadata, data: [9, 9])
        let chunk = InstallSnapshot(term: 2, metadata: metadata, offset: 0, totalBytes: 2, checksum: snapshot.checksum, data: [9, 9], isLast: true)
        let output = follower.step(.receive(Envelope(from: 1, to: 2, message: .installSnapshot(chunk))))
        #expect(output.snapshot == snapshot)
        #expect(output.mustSync)
        #expect(follower.log.lastIndex == 5 && follower.log.entries.isEmpty && follower.log.lastTerm == 2)
        #expect(follower.commitIndex == 5)
        #expect(output.messages.map(\.message) == [.appendEntriesResponse(AppendEntriesResponse(term: 2, isSuccess: true, matchIndex: 5))])
    }

    @Test func restartFromSnapshotAndTail() {
        let membership = Membership(voters: [1, 2, 3, 4], learners: [5])
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 100, term: 3, membership: membership), data: [1])
        let tail = (101...103).map { Entry(term: 3, index: LogIndex(UInt64($0))) }
        let node = RaftNode(id: 1, membership: Membership(voters: [1, 2, 3]), randomSeed: 1,
                            hardState: HardState(currentTerm: 3, votedFor: nil, commitIndex: 90),
                            log: RaftLog(snapshotIndex: 100, snapshotTerm: 3, entries: tail), snapshot: snapshot)
        #expect(node.commitIndex == 100)
        #expect(node.membership == membership)
        #expect(node.log.lastIndex == 103)
    }

    // MARK: - Membership

    @Test func learnerCatchesUpWithoutVotingThenIsPromoted() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.propose(1, ["a", "b"])
        cluster.deliverAll()
        cluster.addServer(4, knowing: cluster.node(1).membership)
        cluster.step(1, .changeMembership(50, .addLearner(4)))
        cluster.tickAll(times: 3)
        #expect(cluster.proposalOutcomes.contains(.committed(50, index: 4)))
        #expect(cluster.node(4).membership == Membership(voters: [1, 2, 3], learners: [4]))
        #expect(cluster.node(4).commitIndex == cluster.node(1).commitIndex)
        // A learner never campaigns.
        cluster.isolate(4)
        cluster.tick(4, times: 100)
        #expect(cluster.node(4).role == .follower && cluster.node(4).currentTerm == cluster.node(1).currentTerm)
        cluster.heal()
        cluster.step(1, .changeMembership(51, .promote(4)))
        cluster.tickAll(times: 3)
        #expect(cluster.node(2).membership == Membership(voters: [1, 2, 3, 4]))
        // With four voters, a commit needs three of them.
        cluster.isolate(2)
        cluster.isolate(3)
        cluster.propose(1, ["needs three"], firstID: 60)
        cluster.tickAll(times: 3)
        #expect(!cluster.proposalOutcomes.contains { $0.id == 60 })
        cluster.heal()
        cluster.tickAll(times: 3)
        #expect(cluster.proposalOutcomes.contains { if case .committed(60, _) = $0 { true } else { false } })
    }

    @Test func oneChangeAtATimeAndOnlyValidOnes() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.addServer(4, knowing: cluster.node(1).membership)
        cluster.step(1, .changeMembership(1, .addLearner(4)))
        // The first is not committed yet: a second must wait.
        cluster.step(1, .changeMembership(2, .remove(3)))
        #expect(cluster.proposalOutcomes.contains(.failed(2, .membershipChangeInProgress)))
        cluster.deliverAll()
        cluster.step(1, .changeMembership(3, .addLearner(4)))
        cluster.step(1, .changeMembership(4, .promote(2)))
        cluster.step(2, .changeMembership(5, .remove(3)))
        #expect(cluster.proposalOutcomes.contains(.failed(3, .invalidMembershipChange("4 is already a member"))))
        #expect(cluster.proposalOutcomes.contains(.failed(4, .invalidMembershipChange("2 is already a voter"))))
        #expect(cluster.proposalOutcomes.contains(.failed(5, .notLeader(leader: 1))))
    }

    @Test func uncommittedMembershipEntryIsUndoneByTruncation() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.isolate(1)
        cluster.step(1, .changeMembership(1, .remove(3)))
        #expect(cluster.node(1).membership.voters == [1, 2])  // in force on append
        cluster.tickAll(times: 40)  // 1 steps down (no quorum); 2 or 3 takes over
        guard let newLeader = cluster.leader else {
            Issue.record("no new leader")
            return
        }
        #expect(newLeader != 1)
        cluster.propose(newLeader, ["x"], firstID: 10)
        cluster.deliverAll()
        cluster.heal()
        cluster.tickAll(times: 5)
        #expect(cluster.node(1).membership.voters == [1, 2, 3])
        #expect(cluster.node(1).leaderID == newLeader)
        #expect(cluster.proposalOutcomes.contains { if case .failed(1, _) = $0 { true } else { false } } || !cluster.proposalOutcomes.contains { $0.id == 1 })
    }

    // Thesis §4.2.2: the leader removing itself leads until the removal commits, then steps
    // down and hands over at once (TimeoutNow) instead of leaving an election timeout's gap.
    @Test func leaderRemovingItselfStepsDownAndHandsOver() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.step(1, .changeMembership(1, .remove(1)))
        cluster.deliverAll()
        #expect(cluster.proposalOutcomes.contains { if case .committed(1, _) = $0 { true } else { false } })
        #expect(!cluster.node(1).isLeader)
        #expect(cluster.leader == 2 || cluster.leader == 3)
        #expect(cluster.node(2).membership.voters == [2, 3])
    }

    // A voter whose removal is not committed may campaign: when only it holds the entry, the
    // others can never win its vote, and if it did not campaign the cluster would be stuck.
    @Test func removedButUncommittedVoterCanStillLead() {
        var cluster = ScriptedCluster(size: 2)
        cluster.elect(1)
        cluster.cut(1, 2)
        cluster.step(1, .changeMembership(1, .remove(1)))  // only 1 holds it
        cluster.tickAll(times: 30)  // 1 loses its quorum and steps down; 2 cannot win 1's vote
        #expect(cluster.leader == nil)
        cluster.heal()
        cluster.tickAll(times: 60)
        #expect(cluster.leader == 2)
        #expect(cluster.node(2).membership.voters == [2])
        #expect(cluster.proposalOutcomes.contains { if case .committed(1, _) = $0 { true } else { false } })
    }
}
