import Raft
import RaftStorage
import Testing

/// The real write-ahead log and snapshot store on the simulation's disk: what a crash
/// leaves of unsynced writes, and a full disk.
@Suite struct SimulatedDiskTests {
    private let directory = "/data/node/raft"

    @Test func syncedWritesSurviveEveryCrashAndUnsyncedOnesNeverComeBackDamaged() throws {
        var random = SplitMix64(seed: 7)
        var tornSeen = 0
        for _ in 0..<300 {
            let disk = SimulatedDisk()
            let wal = try WriteAheadLog(directory: directory, fileSystem: disk)
            wal.append(entries(terms: [1, 1, 1]))
            wal.save(HardState(currentTerm: 1, votedFor: 1, commitIndex: 2))
            try wal.flush(sync: true)
            // Written, not synced: a crash may keep any prefix of it.
            wal.append(entries(terms: [2, 2], startingAt: 4))
            wal.save(HardState(currentTerm: 2, votedFor: 2, commitIndex: 3))
            try wal.flush(sync: false)
            disk.crash(using: &random)
            let recovered = try WriteAheadLog(directory: directory, fileSystem: disk).recovered
            let terms = recovered.log.entries.map(\.term.rawValue)
            #expect(terms == [1, 1, 1] || terms == [1, 1, 1, 2, 2], "recovered \(terms)")
            #expect(recovered.hardState.currentTerm == (terms.count == 5 ? 2 : 1))
            if recovered.truncatedBytes > 0 { tornSeen += 1 }
        }
        #expect(tornSeen > 50, "only \(tornSeen) torn tails in 300 crashes")
    }

    @Test func unsyncedSegmentNameAndSnapshotRenameAreLostTogether() throws {
        var random = SplitMix64(seed: 3)
        let disk = SimulatedDisk()
        let store = try SnapshotStore(directory: directory, fileSystem: disk)
        let first = Snapshot(metadata: SnapshotMetadata(index: 5, term: 1, membership: Membership(voters: [1])), data: [1, 2, 3])
        try store.save(first)
        disk.crash(using: &random)
        #expect(try SnapshotStore(directory: directory, fileSystem: disk).load() == first)
        // A temporary file written but never renamed leaves nothing behind after a crash.
        let orphan = try disk.createEmpty(directory + "/snapshot-0000000000000009.snap.tmp")
        try disk.write(orphan, [9, 9, 9], path: "orphan")
        disk.crash(using: &random)
        #expect(try disk.listDirectory(directory).allSatisfy { !$0.hasSuffix(".tmp") })
    }

    @Test func fullDiskFailsTheWriteAndLeavesTheLogWhole() throws {
        let disk = SimulatedDisk()
        let wal = try WriteAheadLog(directory: directory, fileSystem: disk)
        wal.append(entries(terms: [1, 1]))
        try wal.flush(sync: true)
        disk.capacityBytes = disk.usedBytes + 20
        wal.append(entries(terms: [1, 1, 1, 1], startingAt: 3))
        #expect(throws: StorageError.self) { try wal.flush(sync: true) }
        disk.capacityBytes = nil
        // The failed batch was cut back: recovery sees the first batch and nothing torn.
        let recovered = try WriteAheadLog(directory: directory, fileSystem: disk).recovered
        #expect(recovered.log.lastIndex == 2 && recovered.truncatedBytes == 0)
    }
}

extension SimulatedDiskTests {
    /// Rotation writes the hard state at the head of the new segment durably before any
    /// older segment may be deleted; buffered until the next write instead, a compaction in
    /// between left term and vote nowhere on disk (simulation seed 370 on 512-byte segments).
    @Test func hardStateSurvivesRotationCompactionAndACrash() throws {
        var random = SplitMix64(seed: 1)
        let disk = SimulatedDisk()
        let wal = try WriteAheadLog(directory: directory, maxSegmentBytes: 200, fileSystem: disk)
        wal.save(HardState(currentTerm: 4, votedFor: 2, commitIndex: 0))
        // Append until a flush has just rotated to a new segment (nothing written to it since).
        var last: UInt64 = 0
        var rotated = false
        while last < 20 || !rotated {
            let before = try wal.segmentPaths().count
            last += 1
            wal.append(entries(terms: [4], startingAt: last))
            try wal.flush(sync: true)
            rotated = try wal.segmentPaths().count > before
        }
        let store = wal.snapshots
        try store.save(Snapshot(metadata: SnapshotMetadata(index: LogIndex(last), term: 4, membership: Membership(voters: [1, 2, 3])), data: [1]))
        #expect(try wal.compact(through: LogIndex(last)) > 0)
        disk.crash(using: &random)
        let recovered = try WriteAheadLog(directory: directory, maxSegmentBytes: 200, fileSystem: disk).recovered
        #expect(recovered.hardState == HardState(currentTerm: 4, votedFor: 2, commitIndex: 0))
        #expect(recovered.snapshot?.metadata.index == LogIndex(last))
    }
}

extension SimulatedDiskTests {
    /// A snapshot from the leader stored, then a crash before the log's record of it: the
    /// log's stale entry at the snapshot's index must not make a later recovery drop what
    /// was appended after the restart (simulation seed 6847).
    @Test func entriesAfterARecoveredSnapshotSurviveTheNextRecovery() throws {
        let disk = SimulatedDisk()
        let wal = try WriteAheadLog(directory: directory, fileSystem: disk)
        wal.append(entries(terms: [1, 1, 1]))
        try wal.flush(sync: true)
        // The install's snapshot file is durable at once; its log record never made it.
        try wal.snapshots.save(Snapshot(metadata: SnapshotMetadata(index: 3, term: 2, membership: Membership(voters: [1, 2, 3])), data: [7]))
        let restarted = try WriteAheadLog(directory: directory, fileSystem: disk)
        #expect(restarted.recovered.log.lastIndex == 3 && restarted.recovered.log.entries.isEmpty)
        restarted.append(entries(terms: [2, 2], startingAt: 4))
        try restarted.flush(sync: true)
        let again = try WriteAheadLog(directory: directory, fileSystem: disk).recovered
        #expect(again.log.entries.map(\.index) == [4, 5])
        #expect(again.log.entries.map(\.term) == [2, 2])
    }
}
