#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An operating error of the durable log, naming the file and what went wrong.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }

    static func system(_ operation: String, _ path: String, _ code: Int32) -> StorageError {
        StorageError("\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))")
    }
}

/// The durable log of one server: hard state and entries in segment files of a data
/// directory. Not thread-safe: its owner (the node's driver) serializes calls.
///
/// Writes are buffered by `append` and `save` and reach the disk in `flush`, as one batch
/// in one `write`, followed by `fdatasync` when asked. A driver that calls `flush` once for
/// everything that arrived while the previous flush ran gets group commit.
public final class WriteAheadLog {
    /// What the directory held when it was opened.
    public struct Recovered: Sendable {
        public var hardState: HardState
        public var log: RaftLog
        /// Bytes of an unfinished last write that recovery cut off (0 after a clean stop).
        public var truncatedBytes: Int
    }

    public let directory: String
    public let maxSegmentBytes: Int
    public private(set) var recovered: Recovered
    /// fdatasync calls made so far.
    public private(set) var syncCount = 0
    /// Bytes written so far.
    public private(set) var bytesWritten = 0

    private var descriptor: Int32 = -1
    private var segmentNumber: UInt64 = 0
    private var segmentBytes = 0
    private var pending = ByteWriter()

    /// Opens (creating if needed) the log in `directory`, recovering what it holds. Throws
    /// a `StorageError` naming file and offset when a segment is corrupt beyond a torn tail.
    public init(directory: String, maxSegmentBytes: Int = 64 * 1024 * 1024) throws(StorageError) {
        self.directory = directory
        self.maxSegmentBytes = maxSegmentBytes
        self.recovered = Recovered(hardState: HardState(), log: RaftLog(), truncatedBytes: 0)
        try FileSystem.makeDirectories(directory)
        let segments = try FileSystem.listDirectory(directory)
            .compactMap(Self.segmentNumber(fileName:)).sorted()
        var entries: [Entry] = []
        for (position, number) in segments.enumerated() {
            let path = segmentPath(number)
            let bytes = try FileSystem.readFile(path)
            let scan: WALFormat.ScanResult
            do {
                scan = try WALFormat.scan(bytes, mayEndTorn: position == segments.count - 1)
            } catch {
                throw StorageError("write-ahead log corrupted: \(path) at offset \(error.offset): \(error.reason); refusing to start (move the data directory away to start this node afresh)")
            }
            for record in scan.records {
                switch record {
                case .hardState(let state):
                    recovered.hardState = state
                case .entries(let firstIndex, let newEntries):
                    let keep = Int(firstIndex.rawValue) - 1
                    guard keep <= entries.count else {
                        throw StorageError("write-ahead log corrupted: \(path): entries start at \(firstIndex) after last index \(entries.count)")
                    }
                    entries.removeSubrange(keep...)
                    entries.append(contentsOf: newEntries)
                }
            }
            if scan.hasTornTail {
                recovered.truncatedBytes = bytes.count - scan.validBytes
                try FileSystem.truncate(path, to: scan.validBytes)
            }
            segmentNumber = number
            segmentBytes = scan.validBytes
        }
        recovered.log = RaftLog(entries: entries)
        if segments.isEmpty {
            try openSegment(1)
        } else {
            descriptor = try FileSystem.openForAppend(segmentPath(segmentNumber))
        }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Buffers entries to write; the first may replace stored entries from its index on.
    public func append(_ entries: [Entry]) {
        guard let first = entries.first else { return }
        WALFormat.encode(.entries(firstIndex: first.index, entries), into: &pending)
    }

    /// Buffers a new hard state to write.
    public func save(_ hardState: HardState) {
        WALFormat.encode(.hardState(hardState), into: &pending)
    }

    /// True when something is buffered.
    public var hasPendingWrites: Bool { !pending.bytes.isEmpty }

    /// Writes what is buffered as one batch, then fdatasyncs when `sync` is set. On a
    /// failed write the segment is cut back to its last whole batch before throwing.
    public func flush(sync: Bool) throws(StorageError) {
        if !pending.bytes.isEmpty {
            let batch = WALFormat.batch(payload: pending.bytes)
            pending = ByteWriter()
            do {
                try FileSystem.writeAll(descriptor, batch, path: segmentPath(segmentNumber))
            } catch {
                _ = ftruncate(descriptor, off_t(segmentBytes))
                throw error
            }
            segmentBytes += batch.count
            bytesWritten += batch.count
        }
        if sync {
            guard fdatasync(descriptor) == 0 else { throw .system("fdatasync", segmentPath(segmentNumber), errno) }
            syncCount += 1
            if segmentBytes >= maxSegmentBytes { try openSegment(segmentNumber + 1) }
        }
    }

    /// The paths of the segment files, oldest first.
    public func segmentPaths() throws(StorageError) -> [String] {
        try FileSystem.listDirectory(directory).compactMap(Self.segmentNumber(fileName:)).sorted().map(segmentPath)
    }

    private func openSegment(_ number: UInt64) throws(StorageError) {
        let path = segmentPath(number)
        let newDescriptor = try FileSystem.openForAppend(path)
        // The new file's name must be durable before anything in it counts.
        try FileSystem.syncDirectory(directory)
        if descriptor >= 0 { close(descriptor) }
        descriptor = newDescriptor
        segmentNumber = number
        segmentBytes = 0
    }

    private func segmentPath(_ number: UInt64) -> String {
        let digits = String(number)
        return directory + "/wal-" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".log"
    }

    private static func segmentNumber(fileName: String) -> UInt64? {
        guard fileName.hasPrefix("wal-"), fileName.hasSuffix(".log") else { return nil }
        return UInt64(fileName.dropFirst(4).dropLast(4))
    }
}
