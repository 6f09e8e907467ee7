import Raft
import Testing

@Suite struct RaftLogTests {
    @Test func emptyLogHasIndexAndTermZero() {
        let log = RaftLog()
        #expect(log.lastIndex == 0 && log.lastTerm == 0 && log.term(at: 0) == 0)
        #expect(log.term(at: 1) == nil && log.entry(at: 1) == nil)
    }

    @Test func termLookupCoversHeldRangeOnly() {
        let log = RaftLog(entries: entries(terms: [1, 1, 2]))
        #expect((0...3).map { log.term(at: LogIndex(UInt64($0))) } == [0, 1, 1, 2])
        #expect(log.term(at: 4) == nil)
    }

    @Test func batchesRespectCountAndBytesButNeverStall() {
        let log = RaftLog(entries: (1...10).map { Entry(term: 1, index: LogIndex(UInt64($0)), data: [UInt8](repeating: 0, count: 100)) })
        #expect(log.entries(from: 1, maxCount: 3, maxBytes: .max).map(\.index) == [1, 2, 3])
        #expect(log.entries(from: 1, maxCount: 100, maxBytes: 300).count == 2)  // 124 bytes each
        #expect(log.entries(from: 5, maxCount: 100, maxBytes: 1).count == 1)   // one entry always goes
        #expect(log.entries(from: 11, maxCount: 5, maxBytes: .max).isEmpty)
    }

    @Test func firstConflictFindsDifferingTermOrNewEntry() {
        let log = RaftLog(entries: entries(terms: [1, 2, 2]))
        #expect(log.firstConflict(in: entries(terms: [1, 2], startingAt: 1)) == nil)
        #expect(log.firstConflict(in: entries(terms: [2, 3], startingAt: 2)) == 3)
        #expect(log.firstConflict(in: entries(terms: [2, 2, 2], startingAt: 2)) == 4)
    }

    @Test func conflictHintSkipsWholeTerms() {
        let log = RaftLog(entries: entries(terms: [1, 1, 3, 3, 3, 5, 5]))
        #expect(log.lastIndex(atOrBelow: 7, withTermAtMost: 4) == 5)
        #expect(log.lastIndex(atOrBelow: 7, withTermAtMost: 2) == 2)
        #expect(log.lastIndex(atOrBelow: 4, withTermAtMost: 9) == 4)
        #expect(log.lastIndex(atOrBelow: 7, withTermAtMost: 0) == 0)
    }

    @Test func truncateRemovesSuffixAndCompactKeepsTail() {
        var log = RaftLog(entries: entries(terms: [1, 1, 2, 2]))
        log.truncate(from: 3)
        #expect(log.lastIndex == 2 && log.lastTerm == 1)
        log.append(entries(terms: [3], startingAt: 3))
        log.compact(through: 2, term: 1)
        #expect(log.firstIndex == 3 && log.term(at: 2) == 1 && log.term(at: 1) == nil && log.lastIndex == 3)
    }

    @Test func upToDateComparesLastTermBeforeLength() {
        let log = RaftLog(entries: entries(terms: [1, 2, 2]))
        #expect(log.isUpToDate(lastIndex: 1, lastTerm: 3))
        #expect(!log.isUpToDate(lastIndex: 10, lastTerm: 1))
        #expect(log.isUpToDate(lastIndex: 3, lastTerm: 2))
        #expect(!log.isUpToDate(lastIndex: 2, lastTerm: 2))
    }
}

@Suite struct QuorumTests {
    @Test(arguments: [
        ([1: 5, 2: 5, 3: 1], 5),
        ([1: 5, 2: 3, 3: 1], 3),
        ([1: 9, 2: 0, 3: 0], 0),
        ([1: 7], 7),
    ] as [([UInt64: UInt64], UInt64)])
    func committedIndexIsWhatAMajorityHolds(matches: [UInt64: UInt64], expected: UInt64) {
        let voters = Set(matches.keys.map { NodeID($0) })
        let indexes = Dictionary(uniqueKeysWithValues: matches.map { (NodeID($0.key), LogIndex($0.value)) })
        #expect(Quorum.committedIndex(voters: voters, matchIndexes: indexes) == LogIndex(expected))
    }

    @Test func evenClustersNeedMoreThanHalf() {
        let voters: Set<NodeID> = [1, 2, 3, 4]
        #expect(Quorum.committedIndex(voters: voters, matchIndexes: [1: 9, 2: 9, 3: 1, 4: 1]) == 1)
        #expect(Quorum.voteResult(voters: voters, votes: [1: true, 2: true]) == .pending)
        #expect(Quorum.voteResult(voters: voters, votes: [1: true, 2: true, 3: true]) == .won)
        #expect(Quorum.voteResult(voters: voters, votes: [1: true, 2: false, 3: false]) == .lost)
    }

    @Test func committedIndexIsTheLargestIndexAMajorityHoldsForAnyVotersAndIndexes() {
        // Against the definition: the largest index that at least a majority of voters have.
        var random = SplitMix64(seed: 17)
        for _ in 0..<2_000 {
            let count = Int(random.next() % 9) + 1
            let voters = Set((0..<count).map { _ in NodeID(random.next() % 12 + 1) })
            var matches: [NodeID: LogIndex] = [:]
            for voter in voters where random.next() % 5 != 0 { matches[voter] = LogIndex(random.next() % 20) }
            let expected = (0...20).reversed().first { index in
                voters.filter { (matches[$0] ?? 0) >= LogIndex(UInt64(index)) }.count >= Quorum.majority(of: voters.count)
            }.map { LogIndex(UInt64($0)) } ?? 0
            #expect(Quorum.committedIndex(voters: voters, matchIndexes: matches) == expected)
            #expect(Quorum.committedIndex(voters: voters) { matches[$0] ?? 0 } == expected)
        }
    }

    @Test func votesOfNonVotersDoNotCount() {
        #expect(Quorum.voteResult(voters: [1, 2, 3], votes: [1: true, 8: true, 9: true]) == .pending)
        #expect(Quorum.committedIndex(voters: [1, 2, 3], matchIndexes: [1: 4, 8: 4, 9: 4]) == 0)
    }
}

@Suite struct ProgressTests {
    @Test func probeSendsOneAppendThenWaits() {
        var progress = Progress(nextIndex: 5, maxInflight: 4)
        #expect(!progress.isPaused)
        progress.didSend(lastIndex: 6, entryCount: 2)
        #expect(progress.isPaused && progress.nextIndex == 5)
    }

    @Test func acknowledgementSwitchesToPipelinedReplication() {
        var progress = Progress(nextIndex: 5, maxInflight: 2)
        progress.didSend(lastIndex: 6, entryCount: 2)
        let answer1 = progress.didAcknowledge(6)
        #expect(answer1)
        #expect(progress.state == .replicate && progress.matchIndex == 6 && progress.nextIndex == 7)
        progress.didSend(lastIndex: 8, entryCount: 2)
        progress.didSend(lastIndex: 10, entryCount: 2)
        #expect(progress.isPaused && progress.nextIndex == 11)
        let answer2 = progress.didAcknowledge(8)
        #expect(answer2)
        #expect(!progress.isPaused && progress.inflight == [10])
        let answer3 = progress.didAcknowledge(7)
        #expect(!answer3)
    }

    @Test func staleRejectionIsIgnoredAndCurrentOneMovesBack() {
        var progress = Progress(nextIndex: 10, maxInflight: 4)
        let answer4 = progress.didAcknowledge(9)
        #expect(answer4)
        progress.didSend(lastIndex: 12, entryCount: 3)
        let answer5 = progress.didReject(rejectedIndex: 8, probeIndex: 3)
        #expect(!answer5)
        let answer6 = progress.didReject(rejectedIndex: 12, probeIndex: 11)
        #expect(answer6)
        #expect(progress.state == .probe && progress.nextIndex == 12)
        // Never back past the known match.
        let answer7 = progress.didReject(rejectedIndex: 11, probeIndex: 2)
        #expect(answer7)
        #expect(progress.nextIndex == 10)
    }

    @Test func stalledReplicationFallsBackToProbe() {
        var progress = Progress(nextIndex: 1, maxInflight: 4)
        let answer8 = progress.didAcknowledge(3)
        #expect(answer8)
        progress.didSend(lastIndex: 5, entryCount: 2)
        progress.didAnswerHeartbeat(leaderLastIndex: 5)  // progress since the last heartbeat: keep going
        #expect(progress.state == .replicate)
        progress.didAnswerHeartbeat(leaderLastIndex: 5)  // a whole interval without progress: the append was lost
        #expect(progress.state == .probe && progress.nextIndex == 4)
    }
}

@Suite struct CRC32CTests {
    @Test func matchesStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    @Test func slicedAndBytewisePathsAgree() {
        var random = SplitMix64(seed: 3)
        let bytes = (0..<1_000).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        for split in [0, 1, 7, 8, 9, 500, 999] {
            let whole = CRC32C.checksum(bytes)
            let first = bytes[..<split].withUnsafeBytes { CRC32C.checksum($0) }
            let continued = bytes[split...].withUnsafeBytes { CRC32C.checksum($0, continuing: first) }
            #expect(whole == continued)
        }
    }
}

@Suite struct ByteReaderTests {
    @Test func stringsAreReadInPlaceWithinBounds() throws {
        let short = Array("bench".utf8), long = Array("5f0c7a52-1f3e-4c58-9d2a-0b7e3c1a9f44 héllo".utf8)
        var writer = ByteWriter()
        writer.write(short)
        writer.write(long)
        writer.write([0x61, 0xFF, 0x62])  // invalid UTF-8 in the middle
        // From a slice that does not start at 0, as a log entry's bytes often do.
        let bytes = [0xAA, 0xBB] + writer.bytes
        var reader = ByteReader(bytes[2...])
        #expect(try reader.readString(byteCount: short.count) == "bench")
        #expect(try reader.readString(byteCount: long.count) == String(decoding: long, as: UTF8.self))
        #expect(try reader.readString(byteCount: 3) == "a\u{FFFD}b")
        #expect(reader.isAtEnd)
        #expect(throws: ByteReader.OutOfBounds.self) { try reader.readString(byteCount: 1) }
        var again = ByteReader(bytes[2...])
        #expect(throws: ByteReader.OutOfBounds.self) { try again.readString(byteCount: -1) }
        #expect(throws: ByteReader.OutOfBounds.self) { try again.readString(byteCount: bytes.count) }
        #expect(try again.readString(byteCount: 2) == "be")  // a refused read consumed nothing
    }
}
