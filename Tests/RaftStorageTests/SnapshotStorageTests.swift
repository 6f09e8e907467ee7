import Foundation
import Raft
import RaftStorage
import Testing

/// Snapshot files and the write-ahead log's compaction and recovery around them.
@Suite struct SnapshotStorageTests {
    private func temporaryDirectory() -> String { NSTemporaryDirectory() + "snapshot-test-" + UUID().uuidString }

    private func snapshot(at index: UInt64, term: UInt64 = 1, bytes: Int = 100) -> Snapshot {
        Snapshot(metadata: SnapshotMetadata(index: LogIndex(index), term: Term(term), membership: Membership(voters: [1, 2, 3], learners: [4])),
                 data: (0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(index)) })
    }

    @Test func savedSnapshotLoadsBackAndReplacesOlderOnes() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SnapshotStore(directory: directory)
        #expect(try store.load() == nil)
        try store.save(snapshot(at: 10))
        try store.save(snapshot(at: 30))
        try store.save(snapshot(at: 20))  // older than the one stored: ignored
        #expect(try SnapshotStore(directory: directory).load() == snapshot(at: 30))
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(files == ["snapshot-0000000000000030.snap"])
    }

    /// A snapshot of several pieces is written and synced piece by piece (so a log's sync on
    /// the same disk never waits behind the whole file), and loads back whole.
    @Test func largeSnapshotIsSyncedPieceByPieceAndLoadsBackWhole() throws {
        let disk = SimulatedDisk()
        let store = try SnapshotStore(directory: "/data/raft", fileSystem: disk)
        let large = snapshot(at: 40, bytes: 3 * SnapshotStore.steadyWriteBytes + 12_345)
        let syncsBefore = disk.syncCount
        try store.save(large)
        // Three pieces synced before the last, then the file, then its directory.
        #expect(disk.syncCount - syncsBefore == 5)
        #expect(try SnapshotStore(directory: "/data/raft", fileSystem: disk).load() == large)
        let small = snapshot(at: 50, bytes: 1_000)
        let syncsBeforeSmall = disk.syncCount
        try store.save(small)
        #expect(disk.syncCount - syncsBeforeSmall == 2)
        #expect(try SnapshotStore(directory: "/data/raft", fileSystem: disk).load() == small)
    }

    @Test func damagedSnapshotIsRefusedNamingTheFile() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try SnapshotStore(directory: directory).save(snapshot(at: 5))
        let path = directory + "/snapshot-0000000000000005.snap"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[40] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try SnapshotStore(directory: directory).load()
        } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("checksum")
        }
        // A temporary file left by a crash mid-write is removed and never read.
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: directory + "/snapshot-0000000000000009.snap.tmp"))
        _ = try? SnapshotStore(directory: directory)
        #expect(!FileManager.default.fileExists(atPath: directory + "/snapshot-0000000000000009.snap.tmp"))
    }

    @Test func compactionDeletesCoveredSegmentsAndRecoveryStartsFromTheSnapshot() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let wal = try WriteAheadLog(directory: directory, maxSegmentBytes: 300)
        for index in 1...60 {
            wal.append([Entry(term: 2, index: LogIndex(UInt64(index)), data: [UInt8](repeating: 1, count: 30))])
            wal.save(HardState(currentTerm: 2, votedFor: 1, commitIndex: LogIndex(UInt64(index))))
            try wal.flush(sync: true)
        }
        let before = try wal.segmentPaths().count
        try wal.snapshots.save(Snapshot(metadata: SnapshotMetadata(index: 50, term: 2, membership: Membership(voters: [1])), data: [42]))
        let deleted = try wal.compact(through: 50)
        let after = try wal.segmentPaths().count
        #expect(deleted > 0 && after == before - deleted)
        let recovered = try WriteAheadLog(directory: directory, maxSegmentBytes: 300).recovered
        #expect(recovered.snapshot?.metadata.index == 50)
        #expect(recovered.log.snapshotIndex == 50 && recovered.log.lastIndex == 60 && recovered.log.entries.count == 10)
        // The hard state survived although the segments that first held it are gone.
        #expect(recovered.hardState == HardState(currentTerm: 2, votedFor: 1, commitIndex: 60))
    }

    @Test func installedSnapshotReplacesAConflictingLogAndKeepsAMatchingOne() throws {
        for (storedTerm, expectedEntries) in [(UInt64(1), 0), (3, 2)] {
            let directory = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let wal = try WriteAheadLog(directory: directory)
            wal.append(entries(terms: Array(repeating: storedTerm, count: 12)))
            try wal.flush(sync: true)
            // The leader's snapshot covers up to 10 with term 3.
            try wal.install(Snapshot(metadata: SnapshotMetadata(index: 10, term: 3, membership: Membership(voters: [1, 2])), data: [7]))
            try wal.flush(sync: true)
            let recovered = try WriteAheadLog(directory: directory).recovered
            #expect(recovered.log.snapshotIndex == 10)
            #expect(recovered.log.entries.count == expectedEntries, "stored term \(storedTerm)")
            if storedTerm == 1 {
                // New entries after the install continue the snapshot, not the old log.
                let again = try WriteAheadLog(directory: directory)
                again.append([Entry(term: 3, index: 11)])
                try again.flush(sync: true)
                #expect(try WriteAheadLog(directory: directory).recovered.log.entries == [Entry(term: 3, index: 11)])
            }
        }
    }

    @Test func logThatStartsAfterTheSnapshotIsRefused() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let wal = try WriteAheadLog(directory: directory, maxSegmentBytes: 100)
        for index in 1...30 {
            wal.append([Entry(term: 1, index: LogIndex(UInt64(index)), data: [UInt8](repeating: 1, count: 40))])
            try wal.flush(sync: true)
        }
        try wal.snapshots.save(Snapshot(metadata: SnapshotMetadata(index: 20, term: 1, membership: Membership(voters: [1])), data: []))
        try wal.compact(through: 20)
        // Lose the snapshot: the remaining log no longer starts at 1.
        for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasPrefix("snapshot-") {
            try FileManager.default.removeItem(atPath: directory + "/" + file)
        }
        #expect {
            _ = try WriteAheadLog(directory: directory, maxSegmentBytes: 100)
        } throws: { error in
            "\(error)".contains("entries are missing")
        }
    }
}
