import ClusterNode
import Transport

/// The settings of one cluster.
struct ClusterSettings: Codable, Sendable {
    var nodes: Int
    var heartbeatMs: Int
    var electionTimeoutMs: Int
    var capacity: Int
    /// The reconcile loop's grace period before an unreachable node is marked unhealthy.
    var unhealthyAfterMs: Int
    /// The election timeout's random range above T, in ms; nil is T (the paper's [T, 2T)).
    var electionJitterMs: Int? = nil
    /// A snapshot every this many applied entries (nil: the node's default, 10,000).
    var snapshotEveryEntries: Int? = nil
    /// Pre-vote and check-quorum (nil: on).
    var preVote: Bool? = nil
    var checkQuorum: Bool? = nil

    /// Checks every setting against `ClusterLimits` and the rules between them; the error
    /// names the setting (as the API spells it) and its bounds.
    func validate() throws(SupervisorError) {
        func check(_ name: String, _ value: Int, _ range: ClosedRange<Int>) throws(SupervisorError) {
            guard range.contains(value) else {
                throw .invalidSettings("\(name) must be from \(range.lowerBound) to \(range.upperBound), got \(value)")
            }
        }
        try check("nodes", nodes, ClusterLimits.nodes)
        try check("heartbeatMs", heartbeatMs, ClusterLimits.heartbeatMilliseconds)
        try check("electionTimeoutMs", electionTimeoutMs, ClusterLimits.electionTimeoutMilliseconds)
        guard electionTimeoutMs > heartbeatMs else {
            throw .invalidSettings("electionTimeoutMs (\(electionTimeoutMs)) must exceed heartbeatMs (\(heartbeatMs))")
        }
        try check("capacity", capacity, ClusterLimits.capacity)
        try check("unhealthyAfterMs", unhealthyAfterMs, ClusterLimits.unhealthyAfterMilliseconds)
        if let jitter = electionJitterMs {
            try check("electionJitterMs", jitter, ClusterLimits.electionJitterMilliseconds.lowerBound...electionTimeoutMs)
        }
        if let every = snapshotEveryEntries { try check("snapshotEveryEntries", every, ClusterLimits.snapshotEveryEntries) }
    }
}
