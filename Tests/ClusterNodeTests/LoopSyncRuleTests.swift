@testable import ClusterNode
import Raft
import Testing

/// Which rounds an event loop that began them also syncs (`ReplicaDriver.syncsWhereBegun`):
/// a follower's small round that comes well after its last sync; not a leader's, not one
/// right after another sync, not a follower catching up or installing a snapshot (their
/// apply would hold the loop's other connections far longer than the sync).
@Suite struct LoopSyncRuleTests {
    private static func output(written: Int = 0, applied: Int = 0, snapshot: Bool = false) -> Output {
        var output = Output()
        output.entries = (0..<written).map { Entry(term: 1, index: LogIndex(UInt64(10 + $0))) }
        output.committed = (0..<applied).map { Entry(term: 1, index: LogIndex(UInt64(1 + $0))) }
        output.mustSync = written > 0 || snapshot
        if snapshot {
            output.snapshot = Snapshot(metadata: SnapshotMetadata(index: 9, term: 1, membership: Membership(voters: [1, 2, 3])), data: [1])
        }
        return output
    }

    private static let sparse = ReplicaDriver.sparseSyncGapSeconds * 2

    @Test func aFollowersSmallSparseRoundIsSyncedOnItsLoop() {
        // One client's commit: an append of one entry that also commits the one before.
        #expect(ReplicaDriver.syncsWhereBegun([Self.output(written: 1, applied: 1)], beganAsLeader: false, sinceLastSync: Self.sparse))
        let limit = ReplicaDriver.maxEntriesSyncedWhereBegun
        #expect(ReplicaDriver.syncsWhereBegun([Self.output(written: limit / 2, applied: limit / 2)], beganAsLeader: false, sinceLastSync: Self.sparse))
    }

    @Test func otherRoundsGoToTheRoundThread() {
        let small = [Self.output(written: 1, applied: 1)]
        #expect(!ReplicaDriver.syncsWhereBegun(small, beganAsLeader: true, sinceLastSync: Self.sparse), "a leader's")
        #expect(!ReplicaDriver.syncsWhereBegun(small, beganAsLeader: false, sinceLastSync: ReplicaDriver.sparseSyncGapSeconds / 2),
                "right after the last sync: under load")
        let limit = ReplicaDriver.maxEntriesSyncedWhereBegun
        #expect(!ReplicaDriver.syncsWhereBegun([Self.output(written: limit + 1)], beganAsLeader: false, sinceLastSync: Self.sparse),
                "catching up: many entries written")
        #expect(!ReplicaDriver.syncsWhereBegun([Self.output(written: 1), Self.output(applied: limit)], beganAsLeader: false, sinceLastSync: Self.sparse),
                "many entries applied")
        #expect(!ReplicaDriver.syncsWhereBegun([Self.output(snapshot: true)], beganAsLeader: false, sinceLastSync: Self.sparse),
                "a snapshot to install")
    }
}
