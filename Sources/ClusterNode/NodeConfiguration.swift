import Raft

/// Everything one node process needs to know to start.
public struct NodeConfiguration: Sendable {
    /// The cluster's ID; Raft messages from other clusters are refused.
    public var clusterID: String
    /// The node's HTTP port, which is also its Raft ID.
    public var port: Int
    /// The address the node serves on.
    public var host = "127.0.0.1"
    /// Every member's port, this node's included.
    public var members: [UInt64]
    /// Where the node keeps its write-ahead log.
    public var dataDirectory: String
    /// H: the leader's heartbeat interval.
    public var heartbeatMilliseconds = 50
    /// T: the minimum election timeout.
    public var electionTimeoutMilliseconds = 500
    /// The election timeout is drawn from [T, T + jitter); nil is [T, 2T).
    public var electionJitterMilliseconds: Int? = nil
    /// One Raft tick in microseconds: H and T are whole numbers of ticks.
    public var tickMicroseconds = 10_000
    /// The election timeout may have no randomness (`electionJitterMilliseconds` 0).
    public var allowsFixedElectionTimeout = false
    /// Replica slots per node (with 4 CPUs and 8 GB each).
    public var capacity = 100
    /// fdatasync before acting on writes (turn off only to measure what it costs).
    public var isFsyncEnabled = true
    /// How long a service request waits for its commit before answering 504.
    public var commitTimeoutSeconds = 5.0
    /// A snapshot is taken every this many applied entries, keeping this many before it in the log.
    public var snapshotEveryEntries = 10_000
    public var snapshotTrailingEntries = 1_000
    /// How long the leader waits without hearing from a node before marking it unhealthy
    /// and placing its replicas elsewhere.
    public var unhealthyAfterSeconds = 3.0
    /// Pre-vote (thesis §9.6) and check-quorum (§6.2): on unless an experiment compares without them.
    public var isPreVoteEnabled = true
    public var isCheckQuorumEnabled = true
    /// A fresh cluster's lowest-ID voter campaigns at once (`RaftSettings.isFastFirstElectionEnabled`).
    public var isFastFirstElectionEnabled = true

    /// A configuration with the defaults (H = 50 ms, T = 500 ms, capacity 100, fsync on).
    public init(clusterID: String, port: Int, members: [UInt64], dataDirectory: String) {
        self.clusterID = clusterID
        self.port = port
        self.members = members
        self.dataDirectory = dataDirectory
    }

    /// The node's Raft ID: its port.
    public var id: UInt64 { UInt64(port) }

    /// The Raft settings these timings give.
    public var raftSettings: RaftSettings {
        let tick = max(1, tickMicroseconds)
        func ticks(_ milliseconds: Int) -> Int { milliseconds * 1_000 / tick }
        var settings = RaftSettings(electionTicks: max(2, ticks(electionTimeoutMilliseconds)), heartbeatTicks: max(1, ticks(heartbeatMilliseconds)))
        if settings.electionTicks <= settings.heartbeatTicks { settings.electionTicks = settings.heartbeatTicks + 1 }
        settings.electionJitterTicks = electionJitterMilliseconds.map { max(1, ticks($0)) }
        settings.allowsFixedElectionTimeout = allowsFixedElectionTimeout
        settings.snapshotThresholdEntries = max(1, snapshotEveryEntries)
        settings.compactionTrailingEntries = max(0, snapshotTrailingEntries)
        settings.isPreVoteEnabled = isPreVoteEnabled
        settings.isCheckQuorumEnabled = isCheckQuorumEnabled
        settings.isFastFirstElectionEnabled = isFastFirstElectionEnabled
        return settings
    }
}
