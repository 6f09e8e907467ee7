import ClusterNode
import Raft

extension Simulation {
    func injectFault() throws(PropertyViolation) {
        let ids = servers.map(\.id)
        // Now and then the leader hands over to another voter, whatever else is going on
        // (thesis §3.10); a separate generator keeps every other draw as it was.
        if transferRandom.chance(0.15), let leader = currentLeader() {
            let target = ids[transferRandom.next(below: ids.count)]
            if target != servers[leader].id {
                report.transfers += 1
                trace("\(servers[leader].id): asked to transfer leadership to \(target)")
                try step(leader, .transferLeadership(to: target))
            }
        }
        if profile.isMembershipChanging, membershipRandom.chance(0.25), let leader = currentLeader() {
            try changeMembership(through: leader)
        }
        if storageRandom.chance(0.05) {
            // A disk fills up: the next write that does not fit fails, and the node stops
            // (as the real one exits); it restarts later with room again.
            let running = servers.indices.filter { servers[$0].isRunning }
            if !running.isEmpty {
                let victim = running[storageRandom.next(below: running.count)]
                servers[victim].disk.capacityBytes = servers[victim].disk.usedBytes + storageRandom.next(below: 400)
                trace("\(servers[victim].id): disk nearly full")
            }
        }
        switch pickWeighted(profile.weights) {
        case 0 where ids.count > 1:  // symmetric partition into two random groups, often with the leader in the minority
            var shuffled = ids.shuffled(using: &random)
            if let leader = currentLeader(), random.chance(0.5), let at = shuffled.firstIndex(of: servers[leader].id) {
                shuffled.swapAt(0, at)
            }
            let cut = 1 + random.next(below: ids.count - 1)
            let (left, right) = (shuffled[..<cut], shuffled[cut...])
            for a in left { for b in right { cutLinks.insert(Link(from: a, to: b)); cutLinks.insert(Link(from: b, to: a)) } }
            report.partitions += 1
            trace("partition \(Array(left)) | \(Array(right))")
        case 1:  // one-way cut
            let from = ids[random.next(below: ids.count)]
            let to = ids[random.next(below: ids.count)]
            if from != to { cutLinks.insert(Link(from: from, to: to)) }
            report.partitions += 1
        case 2:
            cutLinks.removeAll()
            trace("heal links")
        case 3:
            if let victim = pickVictim() { try crash(victim) }
        case 4:
            let crashed = servers.indices.filter { !servers[$0].isRunning && !servers[$0].isRetired }
            if let revived = crashed.randomElement(using: &random) { try restart(revived) }
        case 5:
            if let paused = pickVictim() {
                servers[paused].pausedUntil = now + UInt64(50_000 + random.next(below: 450_000))
                report.pauses += 1
            }
        default:
            dropRate = [0, 0.01, 0.05, 0.15, 0.3][random.next(below: 5)]
            duplicateRate = [0, 0.02, 0.1][random.next(below: 3)]
            closeConnectionSpuriously()
        }
    }

    /// Asks the leader for one membership change: add a spare as a learner, promote a
    /// learner, or remove a server (the leader itself now and then).
    private func changeMembership(through leader: Int) throws(PropertyViolation) {
        guard let membership = servers[leader].withCore({ $0.membership }) else { return }
        // A server asked to leave is never asked back: once its removal commits it is retired.
        let outside = servers.filter { !everRemoved.contains($0.id) && !membership.members.contains($0.id) }.map(\.id)
        var choices: [MembershipChange] = outside.map { .addLearner($0) } + membership.learners.sorted().map { .promote($0) }
        if membership.voters.count > 1 { choices += membership.voters.sorted().map { .remove($0) } }
        guard !choices.isEmpty else { return }
        let change = choices[membershipRandom.next(below: choices.count)]
        if case .remove(let removed) = change { everRemoved.insert(removed) }
        let id = nextProposalID
        nextProposalID += 1
        report.membershipChanges += 1
        trace("\(servers[leader].id): asked to \(change)")
        try step(leader, .changeMembership(id, change))
    }

    /// A client asks some server for a linearizable read.
    func readFromClient() throws(PropertyViolation) {
        let running = servers.indices.filter { servers[$0].isRunning }
        guard var target = running.randomElement(using: &membershipRandom) else { return }
        if let leader = currentLeader(), membershipRandom.chance(0.7) { target = leader }
        let id = nextProposalID
        nextProposalID += 1
        outstandingReads[id] = highestAcknowledged
        try step(target, .read(id))
    }

    /// The running server that leads in the highest term, if any.
    func currentLeader() -> Int? {
        servers.indices.filter { servers[$0].isLeader }
            .max { servers[$0].withCore({ $0.currentTerm })! < servers[$1].withCore({ $0.currentTerm })! }
    }

    /// A running server for a crash or pause: the leader half the time (as a nemesis would).
    private func pickVictim() -> Int? {
        if let leader = currentLeader(), random.chance(0.5) { return leader }
        return servers.indices.filter { servers[$0].isRunning }.randomElement(using: &random)
    }

    private func pickWeighted(_ weights: [Int]) -> Int {
        let total = weights.reduce(0, +)
        guard total > 0 else { return 2 }
        var pick = random.next(below: total)
        for (choice, weight) in weights.enumerated() {
            if pick < weight { return choice }
            pick -= weight
        }
        return weights.count - 1
    }

    /// A client submits commands to whoever it believes leads (sometimes to a follower,
    /// which must refuse and name its leader).
    func proposeFromClient() throws(PropertyViolation) {
        // Clients are closed-loop: at most 64 requests waiting, and one unanswered for a
        // second has timed out (its outcome is still checked when it resolves).
        proposalTimes.removeAll { outstandingProposals[$0.id] == nil || now - $0.time > 1_000_000 }
        guard proposalTimes.count < 64 else { return }
        let running = servers.indices.filter { servers[$0].isRunning }
        guard var target = running.randomElement(using: &random) else { return }
        if let sticky = lastClientTarget, servers[sticky].isRunning, random.chance(profile.stickyClientRate) {
            target = sticky
        } else if let leader = servers[target].withCore({ $0.leaderID }) ?? nil, random.chance(0.8) {
            let position = Int(leader.rawValue) - 1
            if servers[position].isRunning { target = position }
        }
        if servers[target].isLeader { lastClientTarget = target }
        if profile.isMembershipChanging || profile.snapshotThresholdEntries != nil, membershipRandom.chance(0.3) {
            try readFromClient()
        }
        var proposals: [RaftNode.Proposal] = []
        for _ in 0..<(1 + random.next(below: 3)) {
            let id = nextProposalID
            nextProposalID += 1
            let data = makeCommand(at: target, id: id)
            outstandingProposals[id] = data
            proposalTimes.append((id, now))
            proposals.append(RaftNode.Proposal(id: id, data: data))
        }
        try step(target, .propose(proposals))
    }

    func healEverything() throws(PropertyViolation) {
        isFaultPhase = false
        cutLinks.removeAll()
        dropRate = 0
        duplicateRate = 0
        for server in servers { server.disk.capacityBytes = nil }  // full disks get room again
        for position in servers.indices {
            if servers[position].isRunning {
                servers[position].pausedUntil = nil
            } else if !servers[position].isRetired {
                try restart(position)
            }
        }
    }

    /// After healing: propose through the leader until one proposal commits, then wait
    /// until every server has applied it, all within the bound.
    func probeLiveness() throws(PropertyViolation) {
        if now > faultPhaseEnd + options.livenessBoundMilliseconds * 1_000 {
            throw PropertyViolation(property: "Liveness",
                                    detail: "no new commit on every server within \(options.livenessBoundMilliseconds) ms of healing")
        }
        if let target = livenessTarget {
            // Every member must apply it; servers outside the cluster get nothing more.
            let members = servers.indices.compactMap { servers[$0].isLeader ? servers[$0].withCore({ $0.membership.members }) : nil }.first
                ?? Set(servers.map(\.id))
            if servers.allSatisfy({ !members.contains($0.id) || $0.appliedIndex >= target }) {
                report.recoveryMilliseconds = (now - faultPhaseEnd) / 1_000
                isFinished = true
                return
            }
        } else if livenessProposal == nil || outstandingProposals[livenessProposal!] == nil
                    || now - livenessProposedAt > 200_000,
                  let leader = servers.indices.first(where: { servers[$0].isLeader })
        {
            // A proposal left on a deposed leader resolves only when the commit index passes
            // it (it may still commit through another server), so a client times out and
            // tries again, as the HTTP layer does with its 504.
            let id = nextProposalID
            nextProposalID += 1
            let data = ClusterCommandCodec.encode(.deleteService(requestID: "probe-\(id)", serviceID: 0))
            outstandingProposals[id] = data
            livenessProposal = id
            livenessProposedAt = now
            try step(leader, .propose([RaftNode.Proposal(id: id, data: data)]))
        }
        queue.schedule(.livenessProbe, at: now + 20_000)
    }
}
