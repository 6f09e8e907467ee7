import Foundation
import Raft
import RaftStorage
import Testing

@Suite struct WriteAheadLogTests {
    private func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "wal-test-" + UUID().uuidString
        return path
    }

    private func write(_ directory: String, _ batches: [([Entry], HardState?)]) throws {
        let wal = try WriteAheadLog(directory: directory)
        for (entries, hardState) in batches {
            wal.append(entries)
            if let hardState { wal.save(hardState) }
            try wal.flush(sync: true)
        }
    }

    private var sampleBatches: [([Entry], HardState?)] {
        [
            (entries(terms: [1, 1]), HardState(currentTerm: 1, votedFor: 2, commitIndex: 0)),
            (entries(terms: [2, 2, 2], startingAt: 3), HardState(currentTerm: 2, votedFor: 3, commitIndex: 2)),
            // A follower's conflicting suffix: index 4 onward replaced by term 3.
            (entries(terms: [3, 3], startingAt: 4), HardState(currentTerm: 3, votedFor: nil, commitIndex: 4)),
        ]
    }

    @Test func recoversEntriesHardStateAndReplacedSuffix() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try write(directory, sampleBatches)
        let recovered = try WriteAheadLog(directory: directory).recovered
        #expect(recovered.log.entries.map(\.term) == [1, 1, 2, 3, 3])
        #expect(recovered.log.entries == entries(terms: [1, 1], startingAt: 1) + entries(terms: [2], startingAt: 3) + entries(terms: [3, 3], startingAt: 4))
        #expect(recovered.hardState == HardState(currentTerm: 3, votedFor: nil, commitIndex: 4))
        #expect(recovered.truncatedBytes == 0)
    }

    @Test func emptyDirectoryStartsEmpty() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let recovered = try WriteAheadLog(directory: directory).recovered
        #expect(recovered.log.lastIndex == 0 && recovered.hardState == HardState())
    }

    /// A crash mid-write leaves any prefix of the last batch (possibly followed by zeros the
    /// file system allocated): recovery keeps exactly the earlier batches, and the log goes
    /// on working after it.
    @Test func tornTailAtEveryByteOfLastBatchIsTruncated() throws {
        let complete = WALFormat.batch([.entries(firstIndex: 1, entries(terms: [1, 1])), .hardState(HardState(currentTerm: 1, votedFor: 1, commitIndex: 1))])
        let last = WALFormat.batch([.entries(firstIndex: 3, entries(terms: [2], startingAt: 3)), .hardState(HardState(currentTerm: 2, votedFor: 1, commitIndex: 3))])
        for cut in 0..<last.count {
            for withZeros in [false, true] {
                // Zero padding that restores the missing bytes exactly makes the batch whole again.
                if withZeros && last[cut...].allSatisfy({ $0 == 0 }) { continue }
                let directory = temporaryDirectory()
                defer { try? FileManager.default.removeItem(atPath: directory) }
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                var bytes = complete + last[..<cut]
                if withZeros { bytes += [UInt8](repeating: 0, count: 64) }
                try Data(bytes).write(to: URL(fileURLWithPath: directory + "/wal-0000000000000001.log"))
                let wal = try WriteAheadLog(directory: directory, maxSegmentBytes: 4096)
                #expect(wal.recovered.log.entries.map(\.term) == [1, 1], "cut at \(cut)")
                #expect(wal.recovered.hardState.currentTerm == 1, "cut at \(cut)")
                // Nothing but zeros after the whole batches is the unwritten rest of a
                // preallocated segment: the log's end, not a tear.
                let isUnwritten = bytes[complete.count...].allSatisfy { $0 == 0 }
                #expect(wal.recovered.truncatedBytes == (isUnwritten ? 0 : bytes.count - complete.count), "cut at \(cut)")
                wal.append(entries(terms: [4], startingAt: 3))
                try wal.flush(sync: true)
                let reopened = try WriteAheadLog(directory: directory, maxSegmentBytes: 4096).recovered
                #expect(reopened.log.entries.map(\.term) == [1, 1, 4], "cut at \(cut)")
            }
        }
    }

    /// Damage that a crash cannot explain (a valid batch follows it) refuses to start, naming
    /// the file and the offset.
    @Test func flippedBitMidFileIsRefusedWithFileAndOffset() throws {
        let first = WALFormat.batch([.entries(firstIndex: 1, entries(terms: [1, 1, 1]))])
        let second = WALFormat.batch([.entries(firstIndex: 4, entries(terms: [1]))])
        let third = WALFormat.batch([.hardState(HardState(currentTerm: 1, votedFor: 1, commitIndex: 4))])
        for position in [2, 10, 20, first.count - 1, first.count + 5] {
            let directory = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var bytes = first + second + third
            bytes[position] ^= 0x10
            let path = directory + "/wal-0000000000000001.log"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let expectedOffset = position < first.count ? 0 : first.count
            #expect {
                _ = try WriteAheadLog(directory: directory)
            } throws: { error in
                let message = "\(error)"
                return message.contains(path) && message.contains("offset \(expectedOffset)")
            }
        }
    }

    /// A write is: buffer, write(2), fdatasync. A crash before the write loses the batch; a
    /// crash after it (synced or not, if the page cache survived) keeps it whole; a crash
    /// during it is a torn tail (above). Each case recovers to a state some prefix of the
    /// batches explains.
    @Test func recoveryAfterCrashAtEachStepOfWrite() throws {
        let batches = sampleBatches
        for crashAfter in 0...batches.count {
            for isLastWritten in [false, true] {
                let directory = temporaryDirectory()
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let wal = try WriteAheadLog(directory: directory)
                for (position, (entries, hardState)) in batches.enumerated() {
                    wal.append(entries)
                    if let hardState { wal.save(hardState) }
                    if position == crashAfter && !isLastWritten { break }  // crash before write(2)
                    try wal.flush(sync: position < crashAfter)           // written; synced unless the crash follows
                    if position == crashAfter { break }
                }
                let recovered = try WriteAheadLog(directory: directory).recovered
                let written = min(batches.count, crashAfter + (isLastWritten ? 1 : 0))
                let expectedTerms: [[UInt64]] = [[], [1, 1], [1, 1, 2, 2, 2], [1, 1, 2, 3, 3]]
                #expect(recovered.log.entries.map(\.term.rawValue) == expectedTerms[written], "crash after \(crashAfter), written \(isLastWritten)")
                #expect(recovered.hardState == (written == 0 ? HardState() : batches[written - 1].1!))
            }
        }
    }

    @Test func rotatesSegmentsAndRecoversAcrossThem() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let wal = try WriteAheadLog(directory: directory, maxSegmentBytes: 200)
        for index in 1...40 {
            wal.append([Entry(term: 1, index: LogIndex(UInt64(index)), data: [UInt8](repeating: 7, count: 30))])
            try wal.flush(sync: true)
        }
        #expect(try wal.segmentPaths().count > 3)
        let recovered = try WriteAheadLog(directory: directory, maxSegmentBytes: 200).recovered
        #expect(recovered.log.lastIndex == 40)
    }

    /// A segment is written with zeros ahead (here up to its full size, smaller than a step),
    /// written over from its start and read back to where its batches end; a restarted log
    /// goes on writing where they end.
    @Test func segmentsArePreallocatedAndTheirZerosAreTheEnd() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let segmentBytes = 64 * 1024
        let wal = try WriteAheadLog(directory: directory, maxSegmentBytes: segmentBytes)
        wal.append(entries(terms: [1, 1]))
        try wal.flush(sync: true)
        let path = try #require(try wal.segmentPaths().first)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == segmentBytes)
        let restarted = try WriteAheadLog(directory: directory, maxSegmentBytes: segmentBytes)
        #expect(restarted.recovered.log.entries.map(\.term) == [1, 1])
        #expect(restarted.recovered.truncatedBytes == 0)
        restarted.append(entries(terms: [2], startingAt: 3))
        try restarted.flush(sync: true)
        let again = try WriteAheadLog(directory: directory, maxSegmentBytes: segmentBytes).recovered
        #expect(again.log.entries.map(\.term) == [1, 1, 2])
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == segmentBytes)
        // A tear inside the zeros (a header persisted without its payload) is cut off, and
        // the segment is preallocated again behind it.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        let used = WALFormat.batch([.entries(firstIndex: 1, entries(terms: [1, 1]))]).count
            + WALFormat.batch([.entries(firstIndex: 3, entries(terms: [2], startingAt: 3))]).count
        try handle.seek(toOffset: UInt64(used))
        handle.write(Data(WALFormat.batch([.entries(firstIndex: 4, entries(terms: [2], startingAt: 4))]).prefix(20)))
        try handle.close()
        let torn = try WriteAheadLog(directory: directory, maxSegmentBytes: segmentBytes)
        #expect(torn.recovered.log.entries.map(\.term) == [1, 1, 2])
        #expect(torn.recovered.truncatedBytes == segmentBytes - used)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == segmentBytes)
    }

    @Test func tornBatchInEarlierSegmentIsCorruption() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let batch = WALFormat.batch([.entries(firstIndex: 1, entries(terms: [1]))])
        try Data(batch.dropLast(3)).write(to: URL(fileURLWithPath: directory + "/wal-0000000000000001.log"))
        try Data(WALFormat.batch([.entries(firstIndex: 1, entries(terms: [1]))])).write(to: URL(fileURLWithPath: directory + "/wal-0000000000000002.log"))
        #expect(throws: StorageError.self) { _ = try WriteAheadLog(directory: directory) }
    }
}
