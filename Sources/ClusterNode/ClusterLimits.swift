/// The bounds of a cluster's settings: one set, used by the orchestrator's API and command
/// line, a node's command line, the nemesis and the benchmarks, each with its reason.
public enum ClusterLimits {
    /// Nodes per cluster: 15 processes is what a 2-core machine runs with room to spare.
    public static let nodes = 1...15
    /// One Raft tick, in microseconds: 10 ms by default; experiments that need 1 ms ranges
    /// of election timeouts (the thesis's 150-151 ms) use ticks down to 0.1 ms.
    public static let tickMicroseconds = 100...10_000
    /// Heartbeat interval: at least one tick (1 ms as a bound, 10 ms at the default tick) up to a minute.
    public static let heartbeatMilliseconds = 1...60_000
    /// Election timeout: two ticks up to ten minutes (and above the heartbeat).
    public static let electionTimeoutMilliseconds = 2...600_000
    /// The election timeout's random range: at least two ticks (and at most the timeout);
    /// 0 (no randomness, endless split votes) only where a cluster allows it explicitly.
    public static let electionJitterMilliseconds = 0...600_000
    /// Replicas of the default size per node.
    public static let capacity = 0...1_000_000
    /// The reconcile loop's grace period before a node is marked unhealthy.
    public static let unhealthyAfterMilliseconds = 100...3_600_000
    /// A snapshot every this many applied entries: fewer than 10 snapshots on every write.
    public static let snapshotEveryEntries = 10...100_000_000
    /// Entries kept in the log before a snapshot, for followers slightly behind.
    public static let snapshotTrailingEntries = 0...100_000_000
    /// How long a client waits for its entry to commit.
    public static let commitTimeoutMilliseconds = 100...600_000
}
