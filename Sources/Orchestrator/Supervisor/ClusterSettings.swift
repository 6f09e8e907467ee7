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
    /// One Raft tick in microseconds (nil: 10,000), and whether `electionJitterMs` may be 0.
    var tickUs: Int? = nil
    var fixedElectionTimeout: Bool? = nil
    /// The first election at once on a fresh cluster (nil: on); off waits an election timeout.
    var fastFirstElection: Bool? = nil

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
        let tick = tickUs ?? 10_000
        try check("tickUs", tick, ClusterLimits.tickMicroseconds)
        // Timings are whole ticks: a heartbeat of at least one, a random range of at least two.
        guard heartbeatMs * 1_000 >= tick else { throw .invalidSettings("heartbeatMs (\(heartbeatMs)) must be at least one tick (\(tick) µs)") }
        guard electionTimeoutMs * 1_000 >= 2 * tick else { throw .invalidSettings("electionTimeoutMs (\(electionTimeoutMs)) must be at least two ticks (\(tick) µs each)") }
        if let jitter = electionJitterMs {
            try check("electionJitterMs", jitter, ClusterLimits.electionJitterMilliseconds.lowerBound...electionTimeoutMs)
            if jitter == 0 {
                guard fixedElectionTimeout == true else {
                    throw .invalidSettings("electionJitterMs 0 (no randomness: split votes can repeat for ever) needs fixedElectionTimeout: true")
                }
            } else if jitter * 1_000 < 2 * tick {
                throw .invalidSettings("electionJitterMs (\(jitter)) must be at least two ticks (\(tick) µs each), or 0 with fixedElectionTimeout")
            }
        }
        if let every = snapshotEveryEntries { try check("snapshotEveryEntries", every, ClusterLimits.snapshotEveryEntries) }
    }
}
