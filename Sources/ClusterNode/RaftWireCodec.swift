import Raft

/// The binary encoding of Raft messages between nodes: a batch of envelopes per POST to
/// `/raft/messages`, little-endian, every read bounds-checked. JSON would cost more than
/// the consensus itself (PLATFORM.md: ~20k AppendEntries decodes per second).
///
///     count u32, then per envelope: from u64, to u64, kind u8, fields (see `encode`)
public enum RaftWireCodec {
    /// Why a body could not be decoded.
    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    /// Envelopes per batch and entries per message that a receiver accepts: far above what
    /// a sender produces, low enough that a hostile count cannot allocate without bound.
    static let maxEnvelopes = 100_000
    static let maxEntries = 1_000_000

    /// What `encode` writes, or a little more: the body is written into one allocation, not
    /// grown by doubling from empty. A message's fixed fields take at most 64 bytes with its
    /// addresses; an entry 13 besides its data; a snapshot chunk's metadata 8 per member.
    public static func encodedBytes(_ envelopes: [Envelope]) -> Int {
        envelopes.reduce(4) { total, envelope in
            switch envelope.message {
            case .appendEntries(let m): total + 64 + m.entries.reduce(0) { $0 + 13 + $1.data.count }
            case .installSnapshot(let m):
                total + 128 + 8 * (m.metadata.membership.voters.count + m.metadata.membership.learners.count) + m.data.count
            default: total + 64
            }
        }
    }

    /// One POST body carrying `envelopes`.
    public static func encode(_ envelopes: [Envelope]) -> [UInt8] {
        var writer = ByteWriter(capacity: encodedBytes(envelopes))
        writer.write(UInt32(envelopes.count))
        for envelope in envelopes {
            writer.write(envelope.from.rawValue)
            writer.write(envelope.to.rawValue)
            switch envelope.message {
            case .requestVote(let m):
                writer.write(UInt8(1))
                writer.write(m.term.rawValue)
                writer.write(m.lastLogIndex.rawValue)
                writer.write(m.lastLogTerm.rawValue)
                writer.write(UInt8((m.isPreVote ? 1 : 0) | (m.isLeaderTransfer ? 2 : 0)))
            case .requestVoteResponse(let m):
                writer.write(UInt8(2))
                writer.write(m.term.rawValue)
                writer.write(UInt8((m.isGranted ? 1 : 0) | (m.isPreVote ? 2 : 0)))
            case .appendEntries(let m):
                writer.write(UInt8(3))
                writer.write(m.term.rawValue)
                writer.write(m.prevLogIndex.rawValue)
                writer.write(m.prevLogTerm.rawValue)
                writer.write(m.leaderCommit.rawValue)
                writer.write(UInt32(m.entries.count))
                for entry in m.entries { writer.write(entry) }
            case .appendEntriesResponse(let m):
                writer.write(UInt8(4))
                writer.write(m.term.rawValue)
                writer.write(UInt8(m.isSuccess ? 1 : 0))
                writer.write(m.matchIndex.rawValue)
                writer.write(m.rejectedIndex.rawValue)
                writer.write(m.hintIndex.rawValue)
                writer.write(m.hintTerm.rawValue)
            case .heartbeat(let m):
                writer.write(UInt8(5))
                writer.write(m.term.rawValue)
                writer.write(m.leaderCommit.rawValue)
                writer.write(m.readContext)
                writer.write(UInt8(m.isAnswerRequested ? 1 : 0))
            case .heartbeatResponse(let m):
                writer.write(UInt8(6))
                writer.write(m.term.rawValue)
                writer.write(m.readContext)
            case .timeoutNow(let m):
                writer.write(UInt8(7))
                writer.write(m.term.rawValue)
            case .installSnapshot(let m):
                writer.write(UInt8(8))
                writer.write(m.term.rawValue)
                writer.write(m.metadata)
                writer.write(m.offset)
                writer.write(m.totalBytes)
                writer.write(m.checksum)
                writer.write(UInt8(m.isLast ? 1 : 0))
                writer.write(UInt32(m.data.count))
                writer.write(m.data)
            case .installSnapshotResponse(let m):
                writer.write(UInt8(9))
                writer.write(m.term.rawValue)
                writer.write(m.snapshotIndex.rawValue)
                writer.write(m.nextOffset)
            }
        }
        return writer.bytes
    }

    /// The envelopes of a POST body; throws on anything malformed, never traps.
    public static func decode(_ bytes: [UInt8]) throws(Malformed) -> [Envelope] {
        var reader = ByteReader(bytes[...])
        do {
            let count = Int(try reader.readUInt32())
            guard count <= maxEnvelopes else { throw Malformed(description: "\(count) messages in one batch exceed \(maxEnvelopes)") }
            var envelopes: [Envelope] = []
            envelopes.reserveCapacity(min(count, bytes.count / 17))
            for _ in 0..<count {
                let from = NodeID(try reader.readUInt64())
                let to = NodeID(try reader.readUInt64())
                envelopes.append(Envelope(from: from, to: to, message: try decodeMessage(&reader)))
            }
            guard reader.isAtEnd else { throw Malformed(description: "bytes left after \(count) messages") }
            return envelopes
        } catch let error as Malformed {
            throw error
        } catch {
            throw Malformed(description: "message batch ends early")
        }
    }

    private static func decodeMessage(_ reader: inout ByteReader) throws -> Message {
        switch try reader.readByte() {
        case 1:
            let term = Term(try reader.readUInt64())
            let index = LogIndex(try reader.readUInt64())
            let lastTerm = Term(try reader.readUInt64())
            let flags = try reader.readByte()
            return .requestVote(RequestVote(term: term, lastLogIndex: index, lastLogTerm: lastTerm,
                                            isPreVote: flags & 1 != 0, isLeaderTransfer: flags & 2 != 0))
        case 2:
            let term = Term(try reader.readUInt64())
            let flags = try reader.readByte()
            return .requestVoteResponse(RequestVoteResponse(term: term, isGranted: flags & 1 != 0, isPreVote: flags & 2 != 0))
        case 3:
            let term = Term(try reader.readUInt64())
            let prevIndex = LogIndex(try reader.readUInt64())
            let prevTerm = Term(try reader.readUInt64())
            let commit = LogIndex(try reader.readUInt64())
            let count = Int(try reader.readUInt32())
            guard count <= maxEntries else { throw Malformed(description: "\(count) entries in one message exceed \(maxEntries)") }
            var entries: [Entry] = []
            entries.reserveCapacity(min(count, 4_096))
            for position in 0..<count { entries.append(try reader.readEntry(index: prevIndex + (position + 1))) }
            return .appendEntries(AppendEntries(term: term, prevLogIndex: prevIndex, prevLogTerm: prevTerm, entries: entries, leaderCommit: commit))
        case 4:
            let term = Term(try reader.readUInt64())
            let isSuccess = try reader.readByte() == 1
            let match = LogIndex(try reader.readUInt64())
            let rejected = LogIndex(try reader.readUInt64())
            let hintIndex = LogIndex(try reader.readUInt64())
            let hintTerm = Term(try reader.readUInt64())
            return .appendEntriesResponse(AppendEntriesResponse(term: term, isSuccess: isSuccess, matchIndex: match,
                                                                rejectedIndex: rejected, hintIndex: hintIndex, hintTerm: hintTerm))
        case 5:
            let term = Term(try reader.readUInt64())
            let commit = LogIndex(try reader.readUInt64())
            let context = try reader.readUInt64()
            return .heartbeat(Heartbeat(term: term, leaderCommit: commit, readContext: context, isAnswerRequested: try reader.readByte() == 1))
        case 6:
            let term = Term(try reader.readUInt64())
            return .heartbeatResponse(HeartbeatResponse(term: term, readContext: try reader.readUInt64()))
        case 7:
            return .timeoutNow(TimeoutNow(term: Term(try reader.readUInt64())))
        case 8:
            let term = Term(try reader.readUInt64())
            let metadata = try reader.readSnapshotMetadata()
            let offset = try reader.readUInt64()
            let total = try reader.readUInt64()
            let checksum = try reader.readUInt32()
            let isLast = try reader.readByte() == 1
            let data = try reader.readBytes(Int(try reader.readUInt32()))
            return .installSnapshot(InstallSnapshot(term: term, metadata: metadata, offset: offset, totalBytes: total,
                                                    checksum: checksum, data: data, isLast: isLast))
        case 9:
            let term = Term(try reader.readUInt64())
            let index = LogIndex(try reader.readUInt64())
            return .installSnapshotResponse(InstallSnapshotResponse(term: term, snapshotIndex: index, nextOffset: try reader.readUInt64()))
        default:
            throw Malformed(description: "unknown message kind")
        }
    }
}
