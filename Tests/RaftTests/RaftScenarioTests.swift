import Raft
import Testing

/// Scenarios that read like the paper: cut, tick, expect.
@Suite struct RaftScenarioTests {
    // Seed 003's churn: the leader stops sending to one follower (a one-way cut). With
    // pre-vote and check-quorum that follower cannot win even a pre-vote (the others hear
    // from the leader), so the leader and its term stay.
    /// A commit is told to up-to-date followers by a heartbeat that asks for no answer (an
    /// empty AppendEntries was answered by each follower, two answers per commit for nothing),
    /// and every follower still learns it.
    @Test func aCommitReachesUpToDateFollowersWithoutAnswers() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.tickAll(times: 3)  // first answers in: both followers are replicated to
        cluster.propose(1, ["x"])
        // Followers append and answer; the leader commits on the first answer.
        cluster.deliver { $0.node(1).commitIndex == $0.node(1).log.lastIndex }
        let notices = cluster.inFlight.filter { $0.from == 1 }
        #expect(!notices.isEmpty)
        for notice in notices {
            guard case .heartbeat(let heartbeat) = notice.message else {
                Issue.record("the commit went out as \(notice.message), not a heartbeat")
                continue
            }
            #expect(!heartbeat.isAnswerRequested)
        }
        let before = cluster.delivered.count
        cluster.deliverAll()
        let answersToNotices = cluster.delivered[before...].filter { envelope in
            if case .heartbeatResponse = envelope.message { true } else { false }
        }
        #expect(answersToNotices.isEmpty)
        for id in cluster.ids { #expect(cluster.node(id).commitIndex == cluster.node(1).commitIndex) }
    }

    @Test func oneWayCutFromLeaderKeepsLeaderAndTerm() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        let term = cluster.node(1).currentTerm
        cluster.cut(1, 3)
        cluster.tickAll(times: 200)
        #expect(cluster.leader == 1)
        #expect(cluster.ids.allSatisfy { cluster.node($0).currentTerm == term })
        #expect(cluster.node(2).leaderID == 1)
        // The cut follower did try, which is what would have churned without pre-vote.
        #expect(cluster.events[3, default: []].contains { if case .becamePreCandidate = $0 { true } else { false } })
    }

    // The same cut without pre-vote and check-quorum: the cut follower raises its term and
    // deposes a healthy leader (seed 003's churn). This is why both are on by default.
    @Test func oneWayCutWithoutPreVoteChurnsLeadership() {
        var settings = ScriptedCluster.settings
        settings.isPreVoteEnabled = false
        settings.isCheckQuorumEnabled = false
        var cluster = ScriptedCluster(size: 3, settings: settings)
        cluster.elect(1)
        let term = cluster.node(1).currentTerm
        cluster.cut(1, 3)
        cluster.tickAll(times: 200)
        #expect(cluster.node(1).currentTerm > term)
        #expect(cluster.leader == 3)
    }

    // A node cut off both ways for many election timeouts, then healed, must not depose the
    // healthy leader: pre-vote kept its term from growing while it was alone.
    @Test func rejoiningPartitionedNodeDoesNotDeposeLeader() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        let term = cluster.node(1).currentTerm
        cluster.isolate(3)
        cluster.tickAll(times: 100)
        #expect(cluster.node(3).currentTerm == term)
        cluster.heal()
        cluster.tickAll(times: 50)
        #expect(cluster.leader == 1)
        #expect(cluster.ids.allSatisfy { cluster.node($0).currentTerm == term })
        #expect(cluster.node(3).leaderID == 1)
    }

    // A leader cut off from the majority steps down within an election timeout (check-quorum),
    // and the majority elects a new leader in a higher term.
    @Test func minorityLeaderStepsDown() {
        var cluster = ScriptedCluster(size: 5)
        cluster.elect(1)
        let term = cluster.node(1).currentTerm
        cluster.isolate(1)
        let electionTicks = cluster.node(1).settings.electionTicks
        cluster.tickAll(times: 2 * electionTicks)
        #expect(cluster.node(1).role == .follower)
        #expect(cluster.events[1, default: []].contains(.lostQuorum(term: term)))
        cluster.tickAll(times: 4 * electionTicks)
        let newLeader = cluster.leader
        #expect(newLeader != nil && newLeader != 1)
        #expect(cluster.node(newLeader!).currentTerm > term)
        // Proposals to the old leader are refused with the leader it knows (none yet).
        cluster.propose(1, ["late"], firstID: 77)
        #expect(cluster.proposalOutcomes.contains(.failed(77, .notLeader(leader: nil))))
        cluster.heal()
        cluster.tickAll(times: 20)
        #expect(cluster.ids.filter { cluster.node($0).isLeader }.count == 1)
        #expect(cluster.node(1).leaderID == newLeader)
    }

    // A follower holding 1,000 entries of an old term where the leader has 500 of a newer
    // one is repaired with one rejection per conflicting term, not one per entry.
    @Test func longDivergentFollowerIsRepairedInFewRoundTrips() {
        let common = [UInt64](repeating: 1, count: 100)
        let membership = Membership(voters: [1, 2, 3])
        var cluster = ScriptedCluster(size: 3)
        cluster.nodes[1] = RaftNode(id: 1, membership: membership, settings: ScriptedCluster.settings, randomSeed: 1,
                                    hardState: HardState(currentTerm: 3), log: RaftLog(entries: entries(terms: common + [UInt64](repeating: 3, count: 500))))
        cluster.nodes[2] = RaftNode(id: 2, membership: membership, settings: ScriptedCluster.settings, randomSeed: 2,
                                    hardState: HardState(currentTerm: 3), log: RaftLog(entries: entries(terms: common + [UInt64](repeating: 3, count: 500))))
        cluster.nodes[3] = RaftNode(id: 3, membership: membership, settings: ScriptedCluster.settings, randomSeed: 3,
                                    hardState: HardState(currentTerm: 3), log: RaftLog(entries: entries(terms: common + [UInt64](repeating: 2, count: 1_000))))
        cluster.elect(1)
        cluster.tickAll(times: 3)
        #expect(cluster.node(3).log.entries.map(\.term) == cluster.node(1).log.entries.map(\.term))
        let rejections = cluster.delivered.filter {
            if $0.from == 3, case .appendEntriesResponse(let response) = $0.message { !response.isSuccess } else { false }
        }
        #expect(rejections.count <= 2, "took \(rejections.count) rejections")
    }

    // A follower whose disk was wiped (it restarts empty) refuses the entries it once
    // acknowledged; the leader must start it over, not probe past its match forever.
    @Test func followerThatLostItsLogIsRepaired() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.propose(1, (0..<20).map { "command \($0)" })
        cluster.deliverAll()
        cluster.tickAll(times: 2)
        #expect(cluster.node(3).log.lastIndex == cluster.node(1).log.lastIndex)
        cluster.nodes[3] = RaftNode(id: 3, membership: Membership(voters: [1, 2, 3]), settings: ScriptedCluster.settings, randomSeed: 3)
        cluster.propose(1, ["after the wipe"], firstID: 100)
        cluster.tickAll(times: 5)
        #expect(cluster.node(3).log.lastIndex == cluster.node(1).log.lastIndex)
        #expect(cluster.node(3).log.entries.map(\.term) == cluster.node(1).log.entries.map(\.term))
        #expect(cluster.delivered.count < 500, "took \(cluster.delivered.count) messages")
    }

    // Proposals to a follower fail at once and name the leader, so callers can redirect.
    @Test func proposalToFollowerNamesLeader() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.propose(2, ["x"], firstID: 5)
        #expect(cluster.proposalOutcomes == [.failed(5, .notLeader(leader: 1))])
    }

    // A proposal appended by a leader that is deposed before it commits is reported failed
    // (overwritten) once the new leader's entry at that index commits; never left hanging.
    @Test func proposalLostToLeadershipChangeIsReportedFailed() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.tickAll()
        cluster.isolate(1)
        cluster.propose(1, ["doomed"], firstID: 9)
        cluster.tickAll(times: 60)
        let newLeader = cluster.leader!
        #expect(newLeader != 1)
        cluster.propose(newLeader, ["replacement"], firstID: 10)
        cluster.deliverAll()
        cluster.heal()
        cluster.tickAll(times: 20)
        #expect(cluster.proposalOutcomes.contains { if case .failed(9, .overwritten) = $0 { true } else { false } })
        #expect(cluster.proposalOutcomes.contains { if case .committed(10, _) = $0 { true } else { false } })
    }

    // ReadIndex (thesis §6.4): a read is served only after a heartbeat round confirms
    // leadership, at the commit index of the moment it was asked; a deposed leader cannot
    // serve it.
    @Test func readIsConfirmedByMajorityBeforeItIsServed() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.tickAll()
        cluster.step(1, .read(42))
        #expect(cluster.readOutcomes.isEmpty)
        cluster.deliverAll()
        #expect(cluster.readOutcomes == [.ready(42, index: cluster.node(1).commitIndex)])

        cluster.isolate(1)
        cluster.step(1, .read(43))
        cluster.deliverAll()
        #expect(cluster.readOutcomes.count == 1)
        cluster.tickAll(times: 25)  // check-quorum deposes it
        #expect(cluster.readOutcomes.last == .failed(43, .notLeader(leader: nil)))
    }

    // A new leader serves no read before an entry of its own term is committed: its commit
    // index may lag the true one until then.
    @Test func newLeaderDefersReadsUntilItsTermCommits() {
        var cluster = ScriptedCluster(size: 3)
        for _ in 0..<40 where cluster.node(2).role == .follower { cluster.tick(2) }
        cluster.deliver { $0.node(2).isLeader }
        cluster.inFlight.removeAll()  // the no-op's appends are lost
        #expect(cluster.node(2).log.term(at: cluster.node(2).commitIndex) != cluster.node(2).currentTerm)
        cluster.step(2, .read(1))
        cluster.deliverAll()
        #expect(cluster.readOutcomes.isEmpty)
        cluster.tickAll(times: 2)  // heartbeats find the gap, the no-op commits, the read proceeds
        let node = cluster.node(2)
        #expect(node.log.term(at: node.commitIndex) == node.currentTerm)
        #expect(cluster.readOutcomes == [.ready(1, index: node.commitIndex)])
    }

    // A driver may sleep for ticksUntilNextTimerEvent ticks: one fewer changes nothing,
    // exactly that many fires the event (a follower's election, a leader's heartbeat).
    @Test func nextTimerEventIsExactlyWhenSomethingHappens() {
        var follower = makeNode(peers: 3)
        let due = follower.ticksUntilNextTimerEvent
        #expect(due >= 10 && due < 20)
        for _ in 0..<(due - 1) { _ = follower.step(.tick) }
        #expect(follower.role == .follower)
        _ = follower.step(.tick)
        #expect(follower.role == .preCandidate)

        var cluster = ScriptedCluster(size: 3, settings: RaftSettings(electionTicks: 10, heartbeatTicks: 3))
        cluster.elect(1)
        var leader = cluster.node(1)
        let beat = leader.ticksUntilNextTimerEvent
        #expect(beat >= 1 && beat <= 3)
        for _ in 0..<(beat - 1) { #expect(leader.step(.tick).heartbeats.isEmpty) }
        #expect(leader.step(.tick).heartbeats.count == 2)
    }

    // An idle, caught-up follower answers only every T/4 ticks; a follower that is behind is
    // asked to answer and does so at once, so the leader repairs it on the next heartbeat.
    @Test func followersAnswerHeartbeatsWhenNeededNotAlways() {
        var cluster = ScriptedCluster(size: 3, settings: RaftSettings(electionTicks: 20, heartbeatTicks: 1))
        cluster.elect(1)
        cluster.tickAll(times: 3)
        let before = cluster.delivered.count
        cluster.tickAll(times: 20)
        let answers = cluster.delivered[before...].filter { if case .heartbeatResponse = $0.message { true } else { false } }.count
        let beats = cluster.delivered[before...].filter { if case .heartbeat = $0.message { true } else { false } }.count
        #expect(beats == 40)
        #expect(answers <= 12, "answered \(answers) of \(beats) heartbeats")  // every 5th tick per follower, not every one
        #expect(cluster.leader == 1)  // check-quorum still hears enough

        cluster.cut(1, 3)
        cluster.propose(1, ["missed by 3"])
        cluster.deliverAll()
        cluster.heal()
        cluster.tickAll(times: 1)
        #expect(cluster.node(3).log.lastIndex == cluster.node(1).log.lastIndex)
    }

    // Thesis §3.10: a transfer to an up-to-date follower makes it leader at once, in the next
    // term, with no election timeout waited for (no ticks at all here).
    @Test func transferToUpToDateFollowerMakesItLeaderAtOnce() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.tickAll(times: 2)
        let term = cluster.node(1).currentTerm
        cluster.step(1, .transferLeadership(to: 2))
        cluster.deliverAll()
        #expect(cluster.leader == 2)
        #expect(cluster.node(2).currentTerm == term.next)
        #expect(!cluster.node(1).isLeader && cluster.node(1).leaderID == 2)
    }

    // A lagging target is brought up to date first, so the transfer cannot lose entries.
    @Test func transferToLaggingFollowerCatchesItUpFirst() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.tickAll(times: 2)
        cluster.cut(1, 3)
        cluster.propose(1, ["a", "b", "c"])
        cluster.deliverAll()
        let last = cluster.node(1).log.lastIndex
        cluster.heal()
        cluster.step(1, .transferLeadership(to: 3))
        cluster.deliverAll()
        #expect(cluster.leader == 3)
        #expect(cluster.node(3).log.lastIndex > last)  // it holds them all, plus its own no-op
        #expect(cluster.node(3).log.entry(at: last)?.data == Array("c".utf8))
    }

    // While a transfer is under way the leader refuses proposals; if the target never takes
    // over, the transfer is given up after an election timeout and proposals work again.
    @Test func transferRefusesProposalsAndIsAbandonedWhenTargetIsUnreachable() {
        var cluster = ScriptedCluster(size: 3)
        cluster.elect(1)
        cluster.tickAll(times: 2)
        cluster.cut(1, 3)
        cluster.step(1, .transferLeadership(to: 3))
        cluster.propose(1, ["during"], firstID: 40)
        #expect(cluster.proposalOutcomes.contains(.failed(40, .leaderTransferInProgress)))
        cluster.tickAll(times: cluster.node(1).settings.electionTicks)
        #expect(cluster.events[1, default: []].contains(.transferAbandoned(target: 3)))
        #expect(cluster.leader == 1)
        cluster.propose(1, ["after"], firstID: 41)
        cluster.deliverAll()
        #expect(cluster.proposalOutcomes.contains { if case .committed(41, _) = $0 { true } else { false } })
    }

    // A single-server cluster elects itself (liferaft never did) and commits alone.
    @Test func singleServerElectsItselfAndCommits() {
        var cluster = ScriptedCluster(size: 1)
        cluster.tickAll(times: 25)
        #expect(cluster.leader == 1)
        cluster.propose(1, ["solo"])
        #expect(cluster.proposalOutcomes == [.committed(1, index: 2)])
    }
}

/// A fresh cluster's first election (`isFastFirstElectionEnabled`).
@Suite struct FastFirstElectionTests {
    static var settings: RaftSettings {
        var settings = ScriptedCluster.settings
        settings.electionTicks = 50
        settings.heartbeatTicks = 5
        settings.isFastFirstElectionEnabled = true
        return settings
    }

    @Test func theLowestVoterLeadsAfterOneTickInsteadOfAnElectionTimeout() {
        var cluster = ScriptedCluster(size: 5, settings: Self.settings)
        cluster.tickAll(times: 1)
        #expect(cluster.leader == 1)
        #expect(cluster.ids.allSatisfy { cluster.node($0).currentTerm == 1 })
        // Without it, nobody has even campaigned after one tick, nor before T.
        var slow = Self.settings
        slow.isFastFirstElectionEnabled = false
        var usual = ScriptedCluster(size: 5, settings: slow)
        usual.tickAll(times: 49)
        #expect(usual.leader == nil)
    }

    @Test func itRetriesEveryHeartbeatUntilAMajorityIsUpThenStops() {
        var cluster = ScriptedCluster(size: 3, settings: Self.settings)
        cluster.isolate(2)
        cluster.isolate(3)  // the others are not up yet
        cluster.tickAll(times: 12)
        #expect(cluster.leader == nil)
        let tries = cluster.events[1, default: []].filter { if case .becamePreCandidate = $0 { true } else { false } }.count
        #expect(tries >= 2, "campaigned \(tries) times in 12 ticks")
        cluster.heal()
        cluster.tickAll(times: 5)
        #expect(cluster.leader == 1)
        #expect(!cluster.node(1).isFreshStart)
    }

    @Test func withTheFirstVoterDownTheOthersElectAfterTheirUsualTimeout() {
        var cluster = ScriptedCluster(size: 3, settings: Self.settings)
        cluster.isolate(1)
        cluster.tickAll(times: 49)
        #expect(cluster.leader == nil || cluster.leader == 1)
        #expect(cluster.node(2).role == .follower && cluster.node(3).role == .follower)
        cluster.tickAll(times: 60)
        #expect(cluster.leader == 2 || cluster.leader == 3)
    }

    @Test func aWipedServerThatHearsAHigherTermIsNoLongerFresh() {
        // A wiped server rejoining a running cluster starts as if fresh. The refusals of its
        // first pre-vote carry the cluster's higher term, and that ends its eager campaigning
        // (without pre-vote, the leader's next heartbeat ends it; and eagerness lasts one
        // election timeout at most, see below).
        var settings = Self.settings
        settings.isCheckQuorumEnabled = false
        var cluster = ScriptedCluster(size: 3, settings: settings)
        cluster.elect(2)
        cluster.elect(3)
        cluster.elect(2)
        cluster.nodes[1] = RaftNode(id: 1, membership: cluster.node(2).membership, settings: settings, randomSeed: 9)
        #expect(cluster.node(1).isFreshStart)
        cluster.cut(2, 1)  // no heartbeat tells it of the leader: only the answers' term can
        cluster.tick(1)
        cluster.deliverAll()
        #expect(!cluster.node(1).isFreshStart)
        #expect(cluster.node(1).currentTerm == cluster.node(2).currentTerm)
    }

    @Test func eagerCampaignsLastOneElectionTimeout() {
        // The others never come up: after T ticks of campaigning every heartbeat, the first
        // voter campaigns only on its ordinary randomized timeout.
        var cluster = ScriptedCluster(size: 3, settings: Self.settings)
        cluster.isolate(1)
        cluster.tickAll(times: 250)
        let campaigns = cluster.events[1, default: []].filter { if case .becamePreCandidate = $0 { true } else { false } }.count
        #expect(!cluster.node(1).isFreshStart)
        #expect(campaigns >= 8 && campaigns <= 10 + 200 / 50 + 1, "\(campaigns) campaigns in 250 ticks (T 50, H 5)")
    }
}

/// A crash the network announces (`peerUnreachable`): failover within a heartbeat interval,
/// and a connection closed by mistake disrupts nothing.
@Suite struct AnnouncedCrashTests {
    static var settings: RaftSettings { RaftSettings(electionTicks: 50, heartbeatTicks: 5) }

    @Test func followersThatHearTheLeadersConnectionCloseElectWithinAHeartbeatInterval() {
        var cluster = ScriptedCluster(size: 5, settings: Self.settings)
        cluster.elect(1)
        let term = cluster.node(1).currentTerm
        cluster.isolate(1)  // the process died
        for id: NodeID in [2, 3, 4, 5] { cluster.step(id, .peerUnreachable(1)) }
        cluster.tickAll(times: 2 * Self.settings.heartbeatTicks)
        let leader = cluster.nodes.values.filter { $0.isLeader && $0.id != 1 }.first
        #expect(leader != nil, "no new leader within two heartbeat intervals")
        #expect(leader.map { $0.currentTerm.rawValue } == term.rawValue + 1)
    }

    @Test func aSilentCrashStillWaitsForTheElectionTimeout() {
        var cluster = ScriptedCluster(size: 5, settings: Self.settings)
        cluster.elect(1)
        cluster.isolate(1)
        cluster.tickAll(times: 2 * Self.settings.heartbeatTicks)
        #expect(!cluster.nodes.values.contains { $0.isLeader && $0.id != 1 })
        cluster.tickAll(times: 3 * Self.settings.electionTicks)
        #expect(cluster.nodes.values.contains { $0.isLeader && $0.id != 1 })
    }

    @Test func aConnectionClosedWhileTheLeaderLivesDisruptsNothing() {
        var cluster = ScriptedCluster(size: 5, settings: Self.settings)
        cluster.elect(1)
        let term = cluster.node(1).currentTerm
        cluster.step(2, .peerUnreachable(1))
        #expect(cluster.node(2).leaderID == nil)
        cluster.tickAll(times: 4 * Self.settings.heartbeatTicks)
        #expect(cluster.leader == 1)
        #expect(cluster.ids.allSatisfy { cluster.node($0).currentTerm == term })
        #expect(cluster.node(2).leaderID == 1)
        // It did ask, and was refused by the followers inside their lease.
        #expect(cluster.events[2, default: []].contains { if case .becamePreCandidate = $0 { true } else { false } })
    }

    @Test func withoutPreVoteTheCloseIsIgnored() {
        var settings = Self.settings
        settings.isPreVoteEnabled = false
        var cluster = ScriptedCluster(size: 3, settings: settings)
        cluster.elect(1)
        cluster.step(2, .peerUnreachable(1))
        #expect(cluster.node(2).leaderID == 1)
    }
}

extension AnnouncedCrashTests {
    @Test func survivorsWhoseCampaignsSplitTheVoteRetryWithinAHeartbeatInterval() {
        // Of three servers the leader dies and both survivors hear of it at once. Where both
        // campaign on the same tick, each votes for itself and the vote splits; they must try
        // again within a heartbeat interval, not an election timeout. Over many seeds some
        // runs split, so every one must still elect within a few heartbeat intervals.
        var slow: [UInt64] = []
        for seed in UInt64(1)...40 {
            var cluster = ScriptedCluster(size: 3, settings: Self.settings, seed: seed)
            cluster.elect(1)
            cluster.isolate(1)
            cluster.step(2, .peerUnreachable(1))
            cluster.step(3, .peerUnreachable(1))
            cluster.tickAll(times: 4 * Self.settings.heartbeatTicks)
            if !cluster.nodes.values.contains(where: { $0.isLeader && $0.id != 1 }) { slow.append(seed) }
        }
        #expect(slow.isEmpty, "no leader within four heartbeat intervals for seeds \(slow)")
    }
}

extension AnnouncedCrashTests {
    @Test func aSurvivorThatVotedForAnotherDoesNotCampaignAgainstIt() {
        // Of five, the leader dies and all four survivors hear of it. Server 2 campaigns first
        // and wins; its first messages are still on their way when the others' short timers
        // run out. Having voted for 2, they must wait for it (an ordinary timeout) instead of
        // campaigning: a second campaign here would find the others outside any lease and
        // depose the new leader.
        var cluster = ScriptedCluster(size: 5, settings: Self.settings)
        cluster.elect(1)
        cluster.isolate(1)
        for id: NodeID in [2, 3, 4, 5] { cluster.step(id, .peerUnreachable(1)) }
        var ticks = 0
        while !cluster.node(2).isLeader, ticks < 2 * Self.settings.heartbeatTicks {
            cluster.tick(2)
            ticks += 1
            while !cluster.inFlight.isEmpty, !cluster.node(2).isLeader { cluster.deliverAll(limit: 1) }
        }
        #expect(cluster.node(2).isLeader)
        cluster.inFlight.removeAll { $0.from == 2 }  // the new leader's first messages, delayed
        for id: NodeID in [3, 4, 5] { cluster.cut(2, id) }
        let before = [3, 4, 5].map { cluster.events[NodeID($0), default: []].count }
        for _ in 0...Self.settings.heartbeatTicks {
            for id: NodeID in [3, 4, 5] { cluster.tick(id) }
            cluster.deliverAll()
        }
        let campaigned = [3, 4, 5].enumerated().filter { position, id in
            cluster.events[NodeID(UInt64(id)), default: []].dropFirst(before[position]).contains { if case .becamePreCandidate = $0 { true } else { false } }
        }.map { $0.element }
        #expect(campaigned.isEmpty, "servers \(campaigned) campaigned against the leader they voted for")
        #expect(cluster.node(2).isLeader)
    }
}
