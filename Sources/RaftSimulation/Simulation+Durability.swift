import Raft
import RaftStorage

/// The durability checks: recovery returns what was synced, and committed entries stay
/// durable on a quorum whatever crashes and rewrites happen.
extension Simulation {
    /// Recovery after a crash must return everything that was synced (what a finished round
    /// wrote: the node sent messages on it as durable): the term and vote
    /// (or a later term), the snapshot (or a later one) and every entry, except where the
    /// batch being synced rewrote the log (then a prefix of that batch may stand instead).
    func checkRecovery(of server: SimulatedServer, _ recovered: WriteAheadLog.Recovered, lostBytes: Int,
                               rewrittenFrom: LogIndex?) throws(PropertyViolation) {
        func fail(_ detail: String) -> PropertyViolation {
            let files = ((try? server.disk.listDirectory(SimulatedServer.directory)) ?? []).sorted()
            return PropertyViolation(property: "Durability", detail: "\(server.id) after a crash (\(lostBytes) unsynced bytes lost): \(detail); "
                + "recovered log \(recovered.log.firstIndex)...\(recovered.log.lastIndex), snapshot \(recovered.snapshot?.metadata.index.rawValue ?? 0); files \(files)")
        }
        let synced = server.durableHardState
        let found = recovered.hardState
        guard found.currentTerm > synced.currentTerm || (found.currentTerm == synced.currentTerm && (synced.votedFor == nil || found.votedFor == synced.votedFor)) else {
            throw fail("recovered term \(found.currentTerm) vote \(String(describing: found.votedFor)) but term \(synced.currentTerm) vote \(String(describing: synced.votedFor)) was synced (messages went out on it)")
        }
        let syncedSnapshot = server.durableSnapshot?.metadata.index ?? 0
        let foundSnapshot = recovered.snapshot?.metadata.index ?? 0
        guard foundSnapshot >= syncedSnapshot else { throw fail("recovered snapshot at \(foundSnapshot) but one at \(syncedSnapshot) was stored") }
        let last = min(server.durableLastIndex, (rewrittenFrom ?? server.durableLastIndex + 1) - 1)
        var index = max(server.durableBase, foundSnapshot) + 1
        while index <= last {
            guard let term = server.durableTerm(at: index) else { break }
            guard recovered.log.term(at: index) == term else {
                throw fail("entry \(index) of term \(term) was synced (messages went out on it) but recovery found \(recovered.log.term(at: index).map { "term \($0)" } ?? "nothing")")
            }
            index += 1
        }
    }

    /// "Committed survives crash", checked after every event in two halves: an entry is
    /// durable on a majority when it first commits (here), and it stays durable on a majority
    /// whenever a server rewrites its log over it (`checkCommittedKeptOnMajority`). A crash
    /// loses only unsynced writes, so a rewrite is the only way a copy can go.
    func checkDurableOnMajority(_ entry: Entry) throws(PropertyViolation) {
        let holders = durableHolders(of: entry)
        guard isHeldByQuorum(holders) else {
            throw PropertyViolation(property: "Committed survives crash",
                                    detail: "entry \(entry.index) of term \(entry.term) was applied while durable only on \(holders.sorted())")
        }
    }

    /// Raft does not promise that every server keeps a committed entry: one that was not in
    /// the commit's majority and still lives in an older term may take an append from a
    /// leader of that term and lose it (the new leader repairs it later). What it promises is
    /// that the entry never falls below a majority.
    func checkCommittedKeptOnMajority(_ position: Int, writing entries: [Entry]) throws(PropertyViolation) {
        guard let first = entries.first else { return }
        // (Servers are read in place throughout: copying one costs a retain per field.)
        var index = first.index
        while index <= min(servers[position].durableLastIndex, LogIndex(UInt64(checker.committed.count))) {
            let committed = checker.committed[Int(index.rawValue) - 1]
            let offset = Int(index.rawValue - first.index.rawValue)
            let replacement = offset < entries.count ? entries[offset] : nil
            if servers[position].durablyHolds(committed), replacement?.term != committed.term {
                let others = durableHolders(of: committed).subtracting([servers[position].id])
                guard isHeldByQuorum(others) else {
                    throw PropertyViolation(property: "Committed survives crash",
                                            detail: "\(servers[position].id) overwrote committed entry \(index) of term \(committed.term), leaving it durable only on \(others.sorted())")
                }
            }
            index += 1
        }
    }

    /// The servers whose durable store holds `entry`.
    private func durableHolders(of entry: Entry) -> Set<NodeID> {
        var holders = Set<NodeID>()
        for position in servers.indices where servers[position].durablyHolds(entry) { holders.insert(servers[position].id) }
        return holders
    }

    /// Every committed entry is on the durable log of a majority, so no crash can lose it.
    func checkCommittedSurvivesCrash() throws(PropertyViolation) {
        let memberships = quorumMemberships()
        for entry in checker.committed {
            let holders = durableHolders(of: entry)
            guard isHeldByQuorum(holders, memberships: memberships) else {
                throw PropertyViolation(property: "Committed survives crash",
                                        detail: "committed entry \(entry.index) of term \(entry.term) is durable only on \(holders.sorted())")
            }
        }
    }

    /// True when, under the latest committed membership or one some server holds, no quorum
    /// can be formed without a server holding the entry: then no leader can be elected
    /// without it. (With a fixed odd-sized membership this is "held by a majority"; after a
    /// membership entry is truncated away, an entry committed under it may be held by exactly
    /// half of an even-sized older membership, which still meets every quorum of it.)
    func isHeldByQuorum(_ holders: Set<NodeID>, memberships: [Membership]? = nil) -> Bool {
        (memberships ?? quorumMemberships()).contains { membership in
            membership.voters.count - membership.voters.filter(holders.contains).count < membership.quorum
        }
    }

    /// The latest committed membership and the latest one each server holds (in memory, or
    /// on disk when crashed).
    func quorumMemberships() -> [Membership] {
        var result = [committedMembership]
        for position in servers.indices {
            let membership = servers[position].withCore({ $0.membership }) ?? servers[position].durableMembership
            if !result.contains(membership) { result.append(membership) }
        }
        return result
    }
}
