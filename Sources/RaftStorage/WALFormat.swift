import Raft

/// The on-disk format of the write-ahead log, with no I/O (so every byte of it is testable).
///
/// A segment file is a sequence of batches. Each batch is one write followed by one
/// fdatasync:
///
///     magic u32 | payload length u32 | payload CRC32C u32 | header CRC32C u32 | payload
///
/// The header's own checksum lets recovery trust a length before reading that far. A
/// payload is a sequence of records, each a type byte and its fields, little-endian:
///
///     1 entries:    first index u64, count u32, then per entry term u64, kind u8, length u32, bytes
///     2 hard state: term u64, has vote u8, vote u64, commit index u64
///     3 snapshot:   index u64, term u64 (a snapshot from the leader was installed: the log
///                   keeps only what follows it, and nothing when its entry there differs)
///
/// A later entries record starting at or below an earlier one's last index replaces the
/// entries from its first index on (a follower's conflicting suffix, §5.3).
///
/// A segment is written with zeros ahead of its batches (`FileSystem.extendWithZeros`):
/// where a batch header should be and only zeros follow, the segment ends (no tear, nothing
/// to cut).
public enum WALFormat {
    static let magic: UInt32 = 0x4C57_4652
    /// Bytes in a batch header.
    public static let headerBytes = 16
    /// A batch may not exceed this: bounds what recovery reads on the word of a header.
    public static let maxPayloadBytes = 256 * 1024 * 1024

    /// One logical change recorded in the log.
    public enum Record: Equatable, Sendable {
        case entries(firstIndex: LogIndex, [Entry])
        case hardState(HardState)
        case snapshot(index: LogIndex, term: Term)
    }

    /// What reading one segment found.
    public struct ScanResult: Equatable, Sendable {
        public var records: [Record]
        /// Bytes from the start of the file that hold whole, valid batches.
        public var validBytes: Int
        /// True when bytes after `validBytes` are an unfinished last write (a torn tail).
        public var hasTornTail: Bool
    }

    /// Corruption found where a torn write cannot explain it.
    public struct Corruption: Error, Equatable, Sendable {
        public var offset: Int
        public var reason: String
    }

    /// Appends `record` to a batch payload being built.
    static func encode(_ record: Record, into writer: inout ByteWriter) {
        switch record {
        case .entries(let firstIndex, let entries):
            writer.write(UInt8(1))
            writer.write(firstIndex.rawValue)
            writer.write(UInt32(entries.count))
            for entry in entries { writer.write(entry) }
        case .hardState(let state):
            writer.write(UInt8(2))
            writer.write(state.currentTerm.rawValue)
            writer.write(UInt8(state.votedFor == nil ? 0 : 1))
            writer.write(state.votedFor?.rawValue ?? 0)
            writer.write(state.commitIndex.rawValue)
        case .snapshot(let index, let term):
            writer.write(UInt8(3))
            writer.write(index.rawValue)
            writer.write(term.rawValue)
        }
    }

    /// A whole batch (header and payload) ready for one write.
    static func batch(payload: [UInt8]) -> [UInt8] {
        precondition(payload.count <= maxPayloadBytes, "batch of \(payload.count) bytes exceeds \(maxPayloadBytes)")
        var header = ByteWriter(capacity: headerBytes + payload.count)
        header.write(magic)
        header.write(UInt32(payload.count))
        header.write(CRC32C.checksum(payload))
        header.write(CRC32C.checksum(header.bytes))
        header.write(payload)
        return header.bytes
    }

    /// Encodes `records` as one batch.
    public static func batch(_ records: [Record]) -> [UInt8] {
        var writer = ByteWriter()
        for record in records { encode(record, into: &writer) }
        return batch(payload: writer.bytes)
    }

    /// Reads every batch of a segment. A damaged batch with no valid batch after it is a
    /// torn tail when `mayEndTorn` (the last segment: a crash interrupted its last write);
    /// anything else damaged is corruption.
    public static func scan(_ bytes: [UInt8], mayEndTorn: Bool) throws(Corruption) -> ScanResult {
        var records: [Record] = []
        var offset = 0
        while offset < bytes.count {
            switch readBatch(bytes, at: offset) {
            case .success(let payload, let end):
                do {
                    try decodePayload(payload, into: &records)
                } catch {
                    // The checksum matched, so these bytes were written like this: a bug, not a crash.
                    throw Corruption(offset: offset, reason: "batch passes its checksum but its records do not parse")
                }
                offset = end
            case .failure(let reason):
                // Zeros written ahead of the batches, never written over.
                if bytes[offset...].allSatisfy({ $0 == 0 }) {
                    return ScanResult(records: records, validBytes: offset, hasTornTail: false)
                }
                let isTorn = mayEndTorn && !containsValidBatch(bytes, after: offset)
                guard isTorn else { throw Corruption(offset: offset, reason: reason) }
                return ScanResult(records: records, validBytes: offset, hasTornTail: true)
            }
        }
        return ScanResult(records: records, validBytes: offset, hasTornTail: false)
    }

    private enum BatchRead {
        case success(payload: ArraySlice<UInt8>, end: Int)
        case failure(String)
    }

    private static func readBatch(_ bytes: [UInt8], at offset: Int) -> BatchRead {
        guard bytes.count - offset >= headerBytes else {
            return .failure("incomplete batch header (\(bytes.count - offset) of \(headerBytes) bytes)")
        }
        var reader = ByteReader(bytes[offset..<(offset + headerBytes)])
        // The reads cannot run out: the slice holds exactly headerBytes.
        let fields = (try? (reader.readUInt32(), reader.readUInt32(), reader.readUInt32(), reader.readUInt32()))
        guard let (foundMagic, length, payloadChecksum, headerChecksum) = fields else {
            return .failure("unreadable batch header")
        }
        guard foundMagic == magic else { return .failure("bad batch magic \(foundMagic)") }
        guard CRC32C.checksum(bytes[offset..<(offset + 12)]) == headerChecksum else {
            return .failure("batch header checksum mismatch")
        }
        guard Int(length) <= maxPayloadBytes else { return .failure("batch length \(length) exceeds limit") }
        let start = offset + headerBytes
        guard bytes.count - start >= Int(length) else {
            return .failure("batch of \(length) bytes runs past the end of the file")
        }
        let payload = bytes[start..<(start + Int(length))]
        guard CRC32C.checksum(payload) == payloadChecksum else { return .failure("batch payload checksum mismatch") }
        return .success(payload: payload, end: start + Int(length))
    }

    /// True when some offset after `offset` starts a batch that reads back whole. A torn
    /// write is always the last thing in a file, so a good batch after damage proves the
    /// damage is corruption.
    private static func containsValidBatch(_ bytes: [UInt8], after offset: Int) -> Bool {
        var candidate = offset + 1
        let magicFirstByte = UInt8(truncatingIfNeeded: magic)  // little-endian: the first byte written
        while candidate + headerBytes <= bytes.count {
            if bytes[candidate] == magicFirstByte, case .success = readBatch(bytes, at: candidate) { return true }
            candidate += 1
        }
        return false
    }

    private static func decodePayload(_ payload: ArraySlice<UInt8>, into records: inout [Record]) throws {
        var reader = ByteReader(payload)
        while !reader.isAtEnd {
            switch try reader.readByte() {
            case 1:
                let firstIndex = LogIndex(try reader.readUInt64())
                let count = Int(try reader.readUInt32())
                var entries: [Entry] = []
                entries.reserveCapacity(min(count, payload.count / 13))
                for position in 0..<count { entries.append(try reader.readEntry(index: firstIndex + position)) }
                records.append(.entries(firstIndex: firstIndex, entries))
            case 2:
                let term = Term(try reader.readUInt64())
                let hasVote = try reader.readByte() == 1
                let vote = NodeID(try reader.readUInt64())
                let commit = LogIndex(try reader.readUInt64())
                records.append(.hardState(HardState(currentTerm: term, votedFor: hasVote ? vote : nil, commitIndex: commit)))
            case 3:
                let index = LogIndex(try reader.readUInt64())
                records.append(.snapshot(index: index, term: Term(try reader.readUInt64())))
            default:
                throw ByteReader.OutOfBounds()
            }
        }
    }
}
