import Raft

/// A cluster of cores for scripted tests: messages are delivered in order, synchronously,
/// over links that can be cut one way; durability is immediate.
struct ScriptedCluster {
    var nodes: [NodeID: RaftNode] = [:]
    var cutLinks = Set<[NodeID]>()
    var inFlight: [Envelope] = []
    var delivered: [Envelope] = []
    var committed: [NodeID: [Entry]] = [:]
    var proposalOutcomes: [ProposalOutcome] = []
    var readOutcomes: [ReadOutcome] = []
    var events: [NodeID: [RaftEvent]] = [:]

    init(size: Int, settings: RaftSettings = ScriptedCluster.settings, seed: UInt64 = 1) {
        let ids = (1...size).map { NodeID(UInt64($0)) }
        for id in ids {
            nodes[id] = RaftNode(id: id, membership: Membership(voters: Set(ids)), settings: settings, randomSeed: seed)
        }
    }

    /// T = 10 ticks, H = 1 tick, as in etcd's tests.
    static let settings = RaftSettings(electionTicks: 10, heartbeatTicks: 1)

    var ids: [NodeID] { nodes.keys.sorted() }

    func node(_ id: NodeID) -> RaftNode { nodes[id]! }

    /// The one server leading in the highest term, if any.
    var leader: NodeID? {
        nodes.values.filter(\.isLeader).max { $0.currentTerm < $1.currentTerm }?.id
    }

    mutating func step(_ id: NodeID, _ input: RaftNode.Input) {
        let output = nodes[id]!.step(input)
        inFlight.append(contentsOf: output.messages)
        committed[id, default: []].append(contentsOf: output.committed)
        proposalOutcomes.append(contentsOf: output.proposals)
        readOutcomes.append(contentsOf: output.reads)
        events[id, default: []].append(contentsOf: output.events)
    }

    mutating func tick(_ id: NodeID, times: Int = 1) {
        for _ in 0..<times { step(id, .tick) }
    }

    /// Ticks every server once, then delivers everything.
    mutating func tickAll(times: Int = 1) {
        for _ in 0..<times {
            for id in ids { step(id, .tick) }
            deliverAll()
        }
    }

    /// Delivers messages (and the messages they cause) until none remain; returns how many.
    @discardableResult
    mutating func deliverAll(limit: Int = 100_000) -> Int {
        var count = 0
        while !inFlight.isEmpty, count < limit {
            let envelope = inFlight.removeFirst()
            guard !cutLinks.contains([envelope.from, envelope.to]) else { continue }
            delivered.append(envelope)
            count += 1
            step(envelope.to, .receive(envelope))
        }
        return count
    }

    /// Delivers messages one at a time until `condition` holds (or none remain).
    mutating func deliver(until condition: (ScriptedCluster) -> Bool) {
        while !inFlight.isEmpty, !condition(self) {
            let envelope = inFlight.removeFirst()
            guard !cutLinks.contains([envelope.from, envelope.to]) else { continue }
            delivered.append(envelope)
            step(envelope.to, .receive(envelope))
        }
    }

    /// Makes `id` time out and campaign, then delivers until the election settles.
    mutating func elect(_ id: NodeID) {
        let timeout = nodes[id]!.settings.electionTicks * 2
        for _ in 0..<timeout where nodes[id]!.role == .follower {
            step(id, .tick)
        }
        deliverAll()
    }

    mutating func cut(_ from: NodeID, _ to: NodeID) { cutLinks.insert([from, to]) }
    mutating func isolate(_ id: NodeID) {
        for other in ids where other != id {
            cut(id, other)
            cut(other, id)
        }
    }
    mutating func heal() { cutLinks.removeAll() }

    mutating func propose(_ id: NodeID, _ commands: [String], firstID: ProposalID = 1) {
        let proposals = commands.enumerated().map { RaftNode.Proposal(id: firstID + ProposalID($0.offset), data: Array($0.element.utf8)) }
        step(id, .propose(proposals))
    }
}

/// Entries of the given terms at indexes 1, 2, ...
func entries(terms: [UInt64], startingAt first: UInt64 = 1) -> [Entry] {
    terms.enumerated().map { Entry(term: Term($0.element), index: LogIndex(first + UInt64($0.offset)), data: [UInt8($0.offset & 0xFF)]) }
}

/// A single core with the given durable state, for tests that script its inputs one by one.
func makeNode(id: NodeID = 1, peers: Int = 3, term: Term = 0, votedFor: NodeID? = nil, logTerms: [UInt64] = [],
              commit: LogIndex = 0, settings: RaftSettings = ScriptedCluster.settings) -> RaftNode
{
    let ids = (1...peers).map { NodeID(UInt64($0)) }
    return RaftNode(id: id, membership: Membership(voters: Set(ids)), settings: settings, randomSeed: 7,
                    hardState: HardState(currentTerm: term, votedFor: votedFor, commitIndex: commit),
                    log: RaftLog(entries: entries(terms: logTerms)))
}

extension Output {
    /// The messages of one kind, for assertions.
    var appendEntries: [(to: NodeID, message: AppendEntries)] {
        messages.compactMap { if case .appendEntries(let m) = $0.message { ($0.to, m) } else { nil } }
    }
    var voteRequests: [(to: NodeID, message: RequestVote)] {
        messages.compactMap { if case .requestVote(let m) = $0.message { ($0.to, m) } else { nil } }
    }
    var voteResponses: [RequestVoteResponse] {
        messages.compactMap { if case .requestVoteResponse(let m) = $0.message { m } else { nil } }
    }
    var appendResponses: [AppendEntriesResponse] {
        messages.compactMap { if case .appendEntriesResponse(let m) = $0.message { m } else { nil } }
    }
    var heartbeats: [(to: NodeID, message: Heartbeat)] {
        messages.compactMap { if case .heartbeat(let m) = $0.message { ($0.to, m) } else { nil } }
    }
}

/// Settings without pre-vote, for tests of the paper's plain election (§5.2).
let plainSettings: RaftSettings = {
    var settings = ScriptedCluster.settings
    settings.isPreVoteEnabled = false
    return settings
}()

extension ScriptedCluster {
    /// Starts a new, empty server that knows `members` (it is not one of their voters).
    mutating func addServer(_ id: NodeID, knowing members: Membership, settings: RaftSettings = ScriptedCluster.settings) {
        nodes[id] = RaftNode(id: id, membership: members, settings: settings, randomSeed: 11)
    }

    /// The state machine of these tests: the applied entries' data, with the applied index.
    func snapshot(of id: NodeID, paddedTo bytes: Int = 0) -> Snapshot {
        let node = node(id)
        let metadata = node.snapshotMetadata(at: node.commitIndex)!
        var data = Array("state at \(metadata.index)".utf8)
        data += [UInt8](repeating: 7, count: max(0, bytes - data.count))
        return Snapshot(metadata: metadata, data: data)
    }
}
