import ClusterNode
import Foundation
import Raft
import Transport

/// An experiment file: clusters to compare, one workload and one fault schedule that every
/// cluster gets at the same offsets, at the same time, on the same machine.
///
///     {"name": "timeouts", "seconds": 10,
///      "clusters": [{"name": "fast", "nodes": 3, "heartbeatMs": 25, "electionTimeoutMs": 250},
///                   {"name": "slow", "nodes": 3, "heartbeatMs": 100, "electionTimeoutMs": 1000}],
///      "workload": {"clients": 2, "mix": {"create": 40, "scale": 30, "read": 25, "delete": 5}},
///      "faults": [{"at": 3, "action": "kill-leader"}, {"at": 6, "action": "restart"}]}
struct ExperimentPlan: Codable, Sendable {
    struct Cluster: Codable, Sendable {
        var name: String
        var nodes: Int?
        var heartbeatMs: Int?
        var electionTimeoutMs: Int?
        var electionJitterMs: Int?
        var preVote: Bool?
        var checkQuorum: Bool?
        /// One Raft tick in microseconds (100 to 10,000; 10,000 by default): 1 ms ranges need 100.
        var tickUs: Int?
        /// Allows electionJitterMs 0: every server times out after exactly the timeout.
        var fixedElectionTimeout: Bool?
        /// The first election at once on a fresh cluster (on by default).
        var fastFirstElection: Bool?
        var capacity: Int?
        var snapshotEveryEntries: Int?
        /// Every link's delay and loss from the start (a slow or lossy network).
        var linkDelayMs: Int?
        var linkLoss: Double?
    }

    struct Workload: Codable, Sendable {
        /// Clients per cluster, each with one request outstanding (a closed loop) unless `rate` is given.
        var clients: Int?
        /// Requests per second per cluster, spread over the clients (an open loop); nil: as fast as answered.
        var rate: Double?
        /// Relative weights of service create, scale, read and delete.
        var mix: [String: Int]?
        /// Services the clients work on (created as they go, reused by scale, read and delete).
        var services: Int?
    }

    struct Fault: Codable, Sendable {
        /// Seconds from the start.
        var at: Double
        /// kill-leader, kill, pause-leader, pause, resume, restart, partition-leader,
        /// cut-leader-follower, lossy, slow, heal.
        var action: String
        /// The node by position (0 = the cluster's first node), for kill, pause, restart.
        var node: Int?
        /// For lossy: the loss fraction; for slow: the delay in ms.
        var loss: Double?
        var delayMs: Int?
        /// Repeats the fault every this many seconds until the end (a leader killed over and over).
        var every: Double? = nil
    }

    struct RandomFaults: Codable, Sendable {
        var seed: UInt64
        /// A fault every this many seconds on average.
        var every: Double
    }

    var name: String
    var seconds: Double
    var clusters: [Cluster]
    var workload: Workload?
    var faults: [Fault]?
    var randomFaults: RandomFaults?
    var repetitions: Int?
    /// How long after the last heal the checks wait for every node to agree (10 s by default).
    var settleSeconds: Double?

    static let actions: Set<String> = ["kill-leader", "kill", "pause-leader", "pause", "resume", "restart", "partition-leader",
                                       "cut-leader-follower", "lossy", "slow", "heal"]
    static let kinds = ["create", "scale", "read", "delete"]
    /// What this machine takes at once: node processes over all clusters, and clients.
    static let maxNodes = 45
    static let maxClients = 256
    static let maxSeconds = 3_600.0

    /// Parses and checks a file; errors name the field.
    static func parse(_ bytes: [UInt8]) throws(LabError) -> ExperimentPlan {
        let plan: ExperimentPlan
        do {
            plan = try JSONBody.decodeStrictly(ExperimentPlan.self, from: bytes)
        } catch {
            throw LabError("experiment file: \(error.message)")
        }
        try plan.validate()
        return plan
    }

    func validate() throws(LabError) {
        func fail(_ message: String) -> LabError { LabError("experiment file: \(message)") }
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw fail("name must be 1 to 64 letters, digits, - or _, got \(JSONText.quote(name))")
        }
        guard seconds >= 1, seconds <= Self.maxSeconds else { throw fail("seconds must be from 1 to \(Int(Self.maxSeconds)), got \(seconds)") }
        guard !clusters.isEmpty, clusters.count <= 10 else { throw fail("clusters must list 1 to 10 clusters, got \(clusters.count)") }
        var names = Set<String>()
        for (index, cluster) in clusters.enumerated() {
            guard names.insert(cluster.name).inserted else { throw fail("clusters[\(index)].name \(JSONText.quote(cluster.name)) appears twice") }
            do {
                try settings(of: cluster).validate()
            } catch {
                throw fail("clusters[\(index)] (\(cluster.name)): \(error.description)")
            }
            if let loss = cluster.linkLoss, !(0...0.9).contains(loss) { throw fail("clusters[\(index)].linkLoss must be from 0 to 0.9, got \(loss)") }
            if let delay = cluster.linkDelayMs, !(0...10_000).contains(delay) { throw fail("clusters[\(index)].linkDelayMs must be from 0 to 10000, got \(delay)") }
        }
        let totalNodes = clusters.reduce(0) { $0 + settings(of: $1).nodes }
        guard totalNodes <= Self.maxNodes else {
            throw fail("\(totalNodes) nodes in all is more than this machine runs side by side (\(Self.maxNodes) processes on \(ProcessInfo.processInfo.activeProcessorCount) cores); use fewer clusters or nodes")
        }
        let clients = workload?.clients ?? 2
        guard (0...Self.maxClients).contains(clients * clusters.count) else {
            throw fail("workload.clients × clusters must be from 0 to \(Self.maxClients), got \(clients * clusters.count)")
        }
        if let rate = workload?.rate, !(0.1...10_000).contains(rate) { throw fail("workload.rate must be from 0.1 to 10000 per second, got \(rate)") }
        for (kind, weight) in workload?.mix ?? [:] {
            guard Self.kinds.contains(kind) else { throw fail("workload.mix has unknown kind \(JSONText.quote(kind)) (kinds: \(Self.kinds.joined(separator: ", ")))") }
            guard weight >= 0 else { throw fail("workload.mix.\(kind) must be at least 0, got \(weight)") }
        }
        if let mix = workload?.mix, mix.values.reduce(0, +) == 0 { throw fail("workload.mix weighs nothing; give at least one kind a weight") }
        if let services = workload?.services, !(1...1_000).contains(services) { throw fail("workload.services must be from 1 to 1000, got \(services)") }
        for (index, fault) in (faults ?? []).enumerated() {
            guard Self.actions.contains(fault.action) else {
                throw fail("faults[\(index)].action \(JSONText.quote(fault.action)) is unknown (actions: \(Self.actions.sorted().joined(separator: ", ")))")
            }
            guard fault.at >= 0, fault.at < seconds else { throw fail("faults[\(index)].at must be from 0 to below seconds (\(seconds)), got \(fault.at)") }
            if let node = fault.node, !clusters.allSatisfy({ node >= 0 && node < settings(of: $0).nodes }) {
                throw fail("faults[\(index)].node \(node) is not a node position in every cluster")
            }
            if ["kill", "pause"].contains(fault.action), fault.node == nil { throw fail("faults[\(index)]: \(fault.action) needs node (a position)") }
            if let loss = fault.loss, !(0...1).contains(loss) { throw fail("faults[\(index)].loss must be from 0 to 1, got \(loss)") }
            if let every = fault.every, !(0.2...3_600).contains(every) { throw fail("faults[\(index)].every must be from 0.2 to 3600 seconds, got \(every)") }
        }
        if let random = randomFaults, !(0.2...600).contains(random.every) { throw fail("randomFaults.every must be from 0.2 to 600 seconds, got \(random.every)") }
        if let repetitions, !(1...100).contains(repetitions) { throw fail("repetitions must be from 1 to 100, got \(repetitions)") }
        if let settle = settleSeconds, !(1...600).contains(settle) { throw fail("settleSeconds must be from 1 to 600, got \(settle)") }
    }

    /// A cluster's settings, the orchestrator's defaults where the file says nothing.
    func settings(of cluster: Cluster) -> ClusterSettings {
        var settings = ClusterSettings(nodes: cluster.nodes ?? 3, heartbeatMs: cluster.heartbeatMs ?? 50, electionTimeoutMs: cluster.electionTimeoutMs ?? 500,
                                       capacity: cluster.capacity ?? 1_000, unhealthyAfterMs: 3_000)
        settings.electionJitterMs = cluster.electionJitterMs
        settings.snapshotEveryEntries = cluster.snapshotEveryEntries
        settings.preVote = cluster.preVote
        settings.checkQuorum = cluster.checkQuorum
        settings.tickUs = cluster.tickUs
        settings.fixedElectionTimeout = cluster.fixedElectionTimeout
        settings.fastFirstElection = cluster.fastFirstElection
        return settings
    }

    /// The weights of create, scale, read and delete.
    var mix: [(kind: String, weight: Int)] {
        let given = workload?.mix ?? ["create": 30, "scale": 30, "read": 35, "delete": 5]
        return Self.kinds.map { ($0, given[$0] ?? 0) }
    }

    /// The fault schedule: the file's, or random faults drawn from the seed.
    func schedule() -> [Fault] {
        var all: [Fault] = []
        for fault in faults ?? [] {
            var at = fault.at
            repeat {
                var one = fault
                one.at = at
                one.every = nil
                all.append(one)
                at += fault.every ?? seconds
            } while at < seconds
        }
        if let random = randomFaults {
            var generator = SplitMix64(seed: random.seed)
            var at = 0.0
            let actions = ["kill-leader", "restart", "pause-leader", "resume", "partition-leader", "heal", "cut-leader-follower", "lossy", "heal"]
            while true {
                at += random.every * (0.5 + Double(generator.next(below: 1_000)) / 1_000)
                guard at < seconds * 0.85 else { break }
                all.append(Fault(at: (at * 10).rounded() / 10, action: actions[generator.next(below: actions.count)], loss: 0.3, delayMs: 100))
            }
        }
        return all.sorted { $0.at < $1.at }
    }
}

