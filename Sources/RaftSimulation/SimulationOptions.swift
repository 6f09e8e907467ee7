import Raft

/// What one simulation run does. Everything not given here is drawn from `seed`.
public struct SimulationOptions: Sendable {
    public var seed: UInt64
    /// Servers in the cluster; nil draws 3 to 7 from the seed.
    public var nodeCount: Int?
    /// Virtual time during which faults are injected.
    public var faultPhaseMilliseconds: UInt64 = 3_000
    /// After healing, a leader and a new commit on every server must come within this.
    public var livenessBoundMilliseconds: UInt64 = 10_000
    /// Virtual length of one tick.
    public var tickMicroseconds: UInt64 = 10_000
    /// Core settings: T = 10 ticks (100 ms), H = 2 ticks (20 ms) by default.
    public var settings: RaftSettings = {
        RaftSettings(electionTicks: 10, heartbeatTicks: 2)
    }()
    /// A run stops with a failure past this many events (a livelock guard).
    public var maxEvents = 5_000_000
    /// Print the run's significant events (roles, crashes, faults, overwrites) as they happen.
    public var isTracing = false

    public init(seed: UInt64) { self.seed = seed }
}

/// The fault mix of one run, drawn from its seed.
struct FaultProfile: CustomStringConvertible {
    var nodeCount: Int
    var dropRate: Double
    var duplicateRate: Double
    var minimumDelayMicroseconds: UInt64
    var delayJitterMicroseconds: UInt64
    var meanFaultIntervalMilliseconds: UInt64
    var meanProposalIntervalMilliseconds: UInt64
    /// Relative weights of partition, one-way cut, heal, crash, restart, pause, network change.
    var weights: [Int]
    /// Chance that a client keeps writing to the server it last saw leading, stale or not.
    var stickyClientRate: Double
    /// Safety must not depend on the liveness aids: some runs go without them.
    var isPreVoteEnabled: Bool
    var isCheckQuorumEnabled: Bool
    /// Small batches split a new leader's no-op from the older entries before it, which is
    /// when the commit rules of §5.3 and §5.4.2 matter.
    var maxEntriesPerAppend: Int
    var maxInflightAppends: Int
    /// Narrow election jitter (more split votes) on some runs. Drawn from its own generator so
    /// adding it left every earlier seed's run unchanged.
    var electionJitterTicks: Int?
    /// Snapshots: taken every so many applied entries (never when nil), with this many
    /// entries kept before them, sent in chunks of this size, padded to span chunks.
    var snapshotThresholdEntries: Int?
    var compactionTrailingEntries: Int
    var snapshotChunkBytes: Int
    /// Servers outside the initial cluster; with them, membership changes are injected.
    var spareCount: Int
    var isMembershipChanging: Bool
    /// Write-ahead log segment size: small ones make the real log rotate and compact.
    var walSegmentBytes: Int
    /// The first election at once on a fresh cluster, in half the runs (and then also for a
    /// server that crashed before it wrote anything).
    var isFastFirstElectionEnabled: Bool
    /// Crashes the network announces (the others hear the crashed server's connection
    /// close, and now and then a live server's), in half the runs; silent in the rest.
    var isCrashAnnounced: Bool

    init(options: SimulationOptions, random: inout SplitMix64) {
        nodeCount = options.nodeCount ?? (3 + random.next(below: 5))
        dropRate = [0, 0.01, 0.05, 0.15][random.next(below: 4)]
        duplicateRate = [0, 0.02, 0.1][random.next(below: 3)]
        minimumDelayMicroseconds = UInt64(100 + random.next(below: 2_000))
        delayJitterMicroseconds = UInt64(random.next(below: 10_000))
        meanFaultIntervalMilliseconds = UInt64(20 + random.next(below: 200))
        meanProposalIntervalMilliseconds = UInt64(10 + random.next(below: 60))
        weights = (0..<7).map { _ in random.next(below: 10) }
        weights[2] += 3  // heal often enough that progress is possible between faults
        stickyClientRate = [0, 0.3, 0.7][random.next(below: 3)]
        isPreVoteEnabled = random.next(below: 3) != 0
        isCheckQuorumEnabled = random.next(below: 3) != 0
        maxEntriesPerAppend = [1, 2, 4, 16, 64][random.next(below: 5)]
        maxInflightAppends = [1, 2, 4, 16][random.next(below: 4)]
        var jitterRandom = SplitMix64(seed: options.seed ^ 0x5EED_1177_E500_0000)
        electionJitterTicks = [nil, nil, 3, 5][jitterRandom.next(below: 4)]
        // Drawn from their own generator too: earlier seeds' draws above stay as they were.
        var completenessRandom = SplitMix64(seed: options.seed ^ 0x5AA9_5407_0000_0003)
        snapshotThresholdEntries = [nil, 8, 25, 80][completenessRandom.next(below: 4)]
        compactionTrailingEntries = [0, 0, 2, 8][completenessRandom.next(below: 4)]
        snapshotChunkBytes = [64, 1_024, 16_384][completenessRandom.next(below: 3)]
        isMembershipChanging = completenessRandom.next(below: 2) == 0
        spareCount = isMembershipChanging ? 1 + completenessRandom.next(below: 2) : 0
        var storageRandom = SplitMix64(seed: options.seed ^ 0x0057_0BA6_E000_0011)
        walSegmentBytes = [512, 4_096, 4 * 1024 * 1024][storageRandom.next(below: 3)]
        var startRandom = SplitMix64(seed: options.seed ^ 0x00FA_57F1_25E0_0005)
        isFastFirstElectionEnabled = startRandom.next(below: 2) == 0
        isCrashAnnounced = startRandom.next(below: 2) == 0
    }

    var description: String {
        "nodes=\(nodeCount) drop=\(dropRate) duplicate=\(duplicateRate) delay=\(minimumDelayMicroseconds)+\(delayJitterMicroseconds)us faultEvery~\(meanFaultIntervalMilliseconds)ms weights=\(weights) sticky=\(stickyClientRate) preVote=\(isPreVoteEnabled) checkQuorum=\(isCheckQuorumEnabled) batch=\(maxEntriesPerAppend) window=\(maxInflightAppends) jitter=\(electionJitterTicks.map(String.init) ?? "T") snapshotEvery=\(snapshotThresholdEntries.map(String.init) ?? "never") trail=\(compactionTrailingEntries) chunk=\(snapshotChunkBytes) spares=\(spareCount) membershipChanges=\(isMembershipChanging) segment=\(walSegmentBytes) fastFirstElection=\(isFastFirstElectionEnabled) crashAnnounced=\(isCrashAnnounced)"
    }
}
