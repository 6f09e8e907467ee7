#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ClusterNode
import Raft

/// A deterministic simulation of a Raft cluster: real `RaftNode` cores in one process,
/// virtual time, a seeded network that drops, delays, duplicates and reorders, symmetric
/// and one-way partitions, pauses, and crashes that lose every write not yet fsync'd.
///
/// Each server has a durable store and an fsync pipeline like the real driver's: outputs
/// wait for the sync in flight, then the next batch is synced as one (group commit), and
/// only then are their messages sent and their committed entries applied. The safety
/// properties of the Raft paper's Figure 3 are checked after every event. A run then heals
/// every fault and requires a leader and a new commit on every server within a bound.
public final class Simulation {
    public let options: SimulationOptions
    let profile: FaultProfile
    var random: SplitMix64
    var queue = EventQueue<Event>()
    var now: UInt64 = 0
    var servers: [SimulatedServer] = []
    var checker = SafetyChecker()
    var cutLinks = Set<Link>()
    var dropRate: Double
    var duplicateRate: Double
    var isFaultPhase = true
    var report: SimulationReport
    var nextProposalID: ProposalID = 1
    var outstandingProposals: [ProposalID: [UInt8]] = [:]
    /// Some commands clients sent, for retries (at most 64).
    var sentCommands: [[UInt8]] = []
    /// Commands that may be sent more than once (retries, health changes): the log cannot
    /// tell two proposals of the same bytes apart.
    var resentCommands = Set<[UInt8]>()
    /// A hash of every command proposed, to notice repeats (a collision only marks a command
    /// as possibly repeated, which skips one check for it).
    var sentHashes = Set<UInt64>()
    /// When each outstanding proposal was made, oldest first (for the clients' concurrency limit).
    var proposalTimes: [(id: ProposalID, time: UInt64)] = []
    var livenessTarget: LogIndex?
    var livenessProposal: ProposalID?
    var livenessProposedAt: UInt64 = 0
    var lastClientTarget: Int?
    /// Draws for leader transfers, apart from `random` so that adding them changed no run
    /// that does not transfer.
    var transferRandom: SplitMix64
    /// Draws for membership changes and reads, apart for the same reason.
    var membershipRandom: SplitMix64
    /// Disk faults (a full disk, a slow fsync), drawn apart so that other draws stay as they were.
    var storageRandom: SplitMix64
    /// Reads asked and not yet answered, with the highest index acknowledged to a client
    /// when each was asked.
    var outstandingReads: [ReadID: LogIndex] = [:]
    var highestAcknowledged: LogIndex = 0
    /// The membership of the latest committed membership entry (initially every voter).
    var committedMembership: Membership
    /// Servers the cluster was ever asked to remove.
    var everRemoved = Set<NodeID>()
    var faultPhaseEnd: UInt64 = 0
    var isFinished = false

    enum Event {
        case tick(Int, generation: Int)
        case deliver(Envelope)
        case syncDone(Int, generation: Int)
        case fault
        case propose
        case takeSnapshot(Int, generation: Int)
        case decommission(NodeID)
        case endFaultPhase
        case livenessProbe
        /// The server at the position hears that the connection `peer` sent on closed.
        case connectionClosed(Int, peer: NodeID)
    }

    struct Link: Hashable {
        var from: NodeID
        var to: NodeID
    }

    public init(options: SimulationOptions) {
        self.options = options
        var random = SplitMix64(seed: options.seed)
        self.profile = FaultProfile(options: options, random: &random)
        self.random = random
        self.dropRate = profile.dropRate
        self.duplicateRate = profile.duplicateRate
        self.report = SimulationReport(seed: options.seed, nodeCount: profile.nodeCount)
        self.transferRandom = SplitMix64(seed: options.seed ^ 0x7A45_F3E2_0000_0001)
        self.membershipRandom = SplitMix64(seed: options.seed ^ 0x3E3B_E125_0000_0002)
        self.storageRandom = SplitMix64(seed: options.seed ^ 0x0D15_CF11_0000_0004)
        let membership = Membership(voters: Set((1...profile.nodeCount).map { NodeID(UInt64($0)) }))
        self.committedMembership = membership
        // Spare servers start outside the cluster, to be added as learners and promoted.
        for position in 0..<(profile.nodeCount + profile.spareCount) {
            let id = NodeID(UInt64(position + 1))
            servers.append(SimulatedServer(id: id, membership: membership))
        }
    }

    /// The one-line commands that replay this run exactly.
    /// `nodes` is the cluster size the run was fixed to (nil: drawn from the seed).
    public static func replayCommand(seed: UInt64, nodes: Int? = nil) -> String {
        let size = nodes.map { " --nodes \($0)" } ?? ""
        let environment = nodes.map { " RAFT_SIMULATION_NODES=\($0)" } ?? ""
        return "swift run -c release orchestrator simulate --seed \(seed)\(size)   (or: RAFT_SIMULATION_SEED=\(seed)\(environment) swift test --filter SimulationTests)"
    }

    /// Runs the simulation to the end; throws the first property violated.
    public func run() throws(SimulationFailure) -> SimulationReport {
        do {
            try runEvents()
        } catch {
            var failure = SimulationFailure(seed: options.seed, atMicroseconds: now, violation: error,
                                            profile: profile.description, state: describeServers())
            failure.fixedNodeCount = options.nodeCount
            throw failure
        }
        report.virtualMilliseconds = now / 1_000
        return report
    }

    private func runEvents() throws(PropertyViolation) {
        for position in servers.indices {
            try start(position)
            queue.schedule(.tick(position, generation: servers[position].generation),
                           at: UInt64(random.next(below: Int(options.tickMicroseconds))))
        }
        faultPhaseEnd = options.faultPhaseMilliseconds * 1_000
        queue.schedule(.fault, at: interval(profile.meanFaultIntervalMilliseconds))
        queue.schedule(.propose, at: interval(profile.meanProposalIntervalMilliseconds))
        queue.schedule(.endFaultPhase, at: faultPhaseEnd)
        while !isFinished, let (time, event) = queue.popFirst() {
            now = time
            report.events += 1
            guard report.events <= options.maxEvents else {
                throw PropertyViolation(property: "Liveness", detail: "more than \(options.maxEvents) events")
            }
            try handle(event)
        }
        guard isFinished else { throw PropertyViolation(property: "Liveness", detail: "ran out of events") }
        try checkCommittedSurvivesCrash()
    }

    private func handle(_ event: Event) throws(PropertyViolation) {
        switch event {
        case .tick(let position, let generation):
            guard servers[position].isRunning, servers[position].generation == generation else { return }
            let next = now + options.tickMicroseconds
            if let resume = servers[position].pausedUntil, resume > now {
                queue.schedule(.tick(position, generation: generation), at: resume)
                return
            }
            try step(position, .tick)
            queue.schedule(.tick(position, generation: generation), at: next)
        case .deliver(let envelope):
            let position = Int(envelope.to.rawValue) - 1
            guard servers[position].isRunning else { return }
            if let resume = servers[position].pausedUntil, resume > now {
                queue.schedule(.deliver(envelope), at: resume + UInt64(random.next(below: 1_000)))
                return
            }
            try step(position, .receive(envelope))
        case .syncDone(let position, let generation):
            guard servers[position].isRunning, servers[position].generation == generation else { return }
            try finishSync(position)
        case .takeSnapshot(let position, let generation):
            guard servers[position].isRunning, servers[position].generation == generation else { return }
            try takeSnapshot(position)
        case .decommission(let id):
            try decommission(id)
        case .fault:
            guard isFaultPhase else { return }
            try injectFault()
            queue.schedule(.fault, at: now + interval(profile.meanFaultIntervalMilliseconds))
        case .propose:
            guard isFaultPhase else { return }
            try proposeFromClient()
            queue.schedule(.propose, at: now + interval(profile.meanProposalIntervalMilliseconds))
        case .endFaultPhase:
            try healEverything()
            queue.schedule(.livenessProbe, at: now)
        case .livenessProbe:
            try probeLiveness()
        case .connectionClosed(let position, let peer):
            guard servers[position].isRunning else { return }
            if let resume = servers[position].pausedUntil, resume > now {
                queue.schedule(.connectionClosed(position, peer: peer), at: resume)
                return
            }
            try step(position, .peerUnreachable(peer))
        }
    }

    /// A random delay with the given mean (uniform over [0, 2 * mean)).
    func interval(_ meanMilliseconds: UInt64) -> UInt64 {
        UInt64(random.next(below: Int(2 * meanMilliseconds * 1_000)) + 1)
    }

    /// Prints one trace line when tracing.
    func trace(_ text: @autoclosure () -> String) {
        guard options.isTracing else { return }
        let fraction = String(now % 1_000)
        let stamp = "\(now / 1_000)." + String(repeating: "0", count: 3 - fraction.count) + fraction + " ms  "
        // Written unbuffered, so that the lines before a trap in the core are not lost.
        let line = Array((stamp + text() + "\n").utf8)
        line.withUnsafeBytes { _ = write(1, $0.baseAddress, $0.count) }
    }

    func describeServers() -> String {
        "  membership: voters \(committedMembership.voters.sorted()) learners \(committedMembership.learners.sorted()) (committed)\n" + servers.map { server in
            guard let core = server.withCore({ copy $0 }) else { return "  \(server.id): crashed" }
            return "  \(server.id): \(core.role) term \(core.currentTerm) leader \(core.leaderID.map(String.init(describing:)) ?? "-") last \(core.log.lastIndex)/\(core.log.lastTerm) commit \(core.commitIndex) applied \(server.appliedIndex) voters \(core.membership.voters.sorted().map(\.rawValue)) (from \(core.membershipIndex))\(server.pausedUntil.map { $0 > now ? " paused" : "" } ?? "")"
        }.joined(separator: "\n")
    }
}

/// How a run ended when it failed: the seed, the property, and how to replay it.
public struct SimulationFailure: Error, CustomStringConvertible, Sendable {
    public let seed: UInt64
    /// The cluster size the run was fixed to, if it was (part of the replay command).
    public var fixedNodeCount: Int? = nil
    public let atMicroseconds: UInt64
    public let violation: PropertyViolation
    public let profile: String
    public let state: String

    public var description: String {
        """
        simulation seed \(seed) failed at \(Double(atMicroseconds) / 1_000) ms: \(violation)
        profile: \(profile)
        servers:
        \(state)
        replay: \(Simulation.replayCommand(seed: seed, nodes: fixedNodeCount))
        """
    }
}

/// What a successful run did.
public struct SimulationReport: Sendable {
    public var seed: UInt64
    public var nodeCount: Int
    public var events = 0
    public var steps = 0
    public var messagesSent = 0
    public var messagesDropped = 0
    public var elections = 0
    public var crashes = 0
    public var pauses = 0
    public var partitions = 0
    public var transfers = 0
    public var membershipChanges = 0
    public var snapshotsTaken = 0
    public var snapshotsInstalled = 0
    public var readsServed = 0
    public var proposalsAcknowledged = 0
    public var committedEntries = 0
    public var maxTerm: Term = 0
    public var virtualMilliseconds: UInt64 = 0
    /// Virtual time from healing to a new entry committed on every server.
    public var recoveryMilliseconds: UInt64 = 0

    public init(seed: UInt64, nodeCount: Int) {
        self.seed = seed
        self.nodeCount = nodeCount
    }
}
