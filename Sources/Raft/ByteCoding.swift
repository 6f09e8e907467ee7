/// Little-endian encoding into a growing byte array (the write-ahead log's format, and
/// the nodes' binary Raft wire format).
public struct ByteWriter: Sendable {
    public var bytes: [UInt8] = []

    public init() {}

    /// A writer with room for `capacity` bytes, so that a small message is written with one
    /// allocation instead of one per doubling of its buffer.
    public init(capacity: Int) { bytes.reserveCapacity(capacity) }

    public mutating func write(_ value: UInt8) { bytes.append(value) }

    public mutating func write(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: [UInt8]) { bytes.append(contentsOf: value) }
}

/// Little-endian decoding with bounds checks; running past the end throws.
public struct ByteReader {
    /// The input ended before the value did.
    public struct OutOfBounds: Error {
        public init() {}
    }

    let bytes: ArraySlice<UInt8>
    var offset: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.offset = bytes.startIndex
    }

    public var isAtEnd: Bool { offset >= bytes.endIndex }

    public mutating func readByte() throws(OutOfBounds) -> UInt8 {
        guard offset < bytes.endIndex else { throw OutOfBounds() }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readUInt32() throws(OutOfBounds) -> UInt32 {
        guard bytes.endIndex - offset >= 4 else { throw OutOfBounds() }
        var value: UInt32 = 0
        for shift in 0..<4 { value |= UInt32(bytes[offset + shift]) << (8 * shift) }
        offset += 4
        return value
    }

    public mutating func readUInt64() throws(OutOfBounds) -> UInt64 {
        guard bytes.endIndex - offset >= 8 else { throw OutOfBounds() }
        var value: UInt64 = 0
        for shift in 0..<8 { value |= UInt64(bytes[offset + shift]) << (8 * shift) }
        offset += 8
        return value
    }

    public mutating func readBytes(_ count: Int) throws(OutOfBounds) -> [UInt8] {
        guard count >= 0, bytes.endIndex - offset >= count else { throw OutOfBounds() }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// `count` bytes decoded as UTF-8 (invalid sequences repaired), straight from the input:
    /// no intermediate array, so a string of at most 15 bytes allocates nothing.
    public mutating func readString(byteCount count: Int) throws(OutOfBounds) -> String {
        guard count >= 0, bytes.endIndex - offset >= count else { throw OutOfBounds() }
        defer { offset += count }
        return String(decoding: bytes[offset..<(offset + count)], as: UTF8.self)
    }
}

extension ByteWriter {
    /// One entry without its index (implied by its position): term u64, kind u8, length u32, bytes.
    public mutating func write(_ entry: Entry) {
        precondition(entry.data.count <= Int(UInt32.max), "entry \(entry.index) too large: \(entry.data.count) bytes")
        write(entry.term.rawValue)
        write(entry.kind.rawValue)
        write(UInt32(entry.data.count))
        write(entry.data)
    }
}

extension ByteReader {
    /// Reads an entry written by `ByteWriter.write(_: Entry)`, giving it `index`.
    public mutating func readEntry(index: LogIndex) throws(OutOfBounds) -> Entry {
        let term = Term(try readUInt64())
        guard let kind = EntryKind(rawValue: try readByte()) else { throw OutOfBounds() }
        let length = Int(try readUInt32())
        return Entry(term: term, index: index, kind: kind, data: try readBytes(length))
    }
}
