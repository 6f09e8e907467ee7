import Raft
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An operating error of the durable log, naming the file and what went wrong.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    static func system(_ operation: String, _ path: String, _ code: Int32) -> StorageError {
        StorageError("\(operation) \(path): \(String(cString: strerror(code))) (errno \(code))")
    }
}

/// The durable log of one server: hard state and entries in segment files of a data
/// directory, and the latest snapshot (through a `SnapshotStore`). Not thread-safe: its
/// owner (the node's driver) serializes calls.
///
/// Writes are buffered by `append` and `save` and reach the disk in `flush`, as one batch
/// in one `write`, followed by `fdatasync` when asked. A driver that calls `flush` once for
/// everything that arrived while the previous flush ran gets group commit. A segment is
/// written with zeros ahead of its batches (512 KiB at a time, up to `maxSegmentBytes`) and
/// written over, so an fdatasync mostly flushes data without recording a new file size (on
/// this machine three nodes' concurrent fdatasyncs took 110 instead of 152 us at the
/// median). Once a snapshot
/// covers every entry of a closed segment, `compact(through:)` deletes that segment; each
/// new segment starts with the current hard state, so no deleted segment held the latest.
public final class WriteAheadLog {
    /// What the directory held when it was opened.
    public struct Recovered: Sendable {
        public var hardState: HardState
        /// The log after the snapshot (or from index 1 when there is none).
        public var log: RaftLog
        public var snapshot: Snapshot?
        /// Bytes of an unfinished last write that recovery cut off (0 after a clean stop).
        public var truncatedBytes: Int
    }

    public let directory: String
    public let maxSegmentBytes: Int
    public let snapshots: SnapshotStore
    /// The disk it writes to: the real one, or the simulation's.
    public let fileSystem: any FileSystem
    public private(set) var recovered: Recovered
    /// fdatasync calls made so far.
    public private(set) var syncCount = 0
    /// Bytes written so far.
    public private(set) var bytesWritten = 0

    private var descriptor: Int32 = -1
    private var segmentNumber: UInt64 = 0
    /// The open segment's path, named in errors: kept with `descriptor`, not built again for
    /// every write and sync.
    private var openPath = ""
    private var segmentBytes = 0
    /// How far the open segment is written with zeros ahead of its batches (0: not at all).
    private var zeroedThrough = 0
    /// Zeros written ahead at a time: a node's first fdatasync flushes no more than this, and
    /// a segment's size changes (an fdatasync that records it) once per step.
    static let zeroStepBytes = 512 * 1024
    /// The largest buffer of pending records kept from one round to the next.
    static let keptBufferBytes = 64 * 1024
    private var pending = ByteWriter()
    /// The highest entry index each segment holds (0: none), by segment number.
    private var segmentLastIndex: [UInt64: LogIndex] = [:]
    private var pendingLastIndex: LogIndex = 0
    private var lastHardState = HardState()

    /// Opens (creating if needed) the log in `directory`, recovering what it holds. Throws
    /// a `StorageError` naming file and offset when a segment or the snapshot is corrupt
    /// beyond a torn tail.
    public init(directory: String, maxSegmentBytes: Int = 4 * 1024 * 1024,
                fileSystem: any FileSystem = PosixFileSystem.shared) throws(StorageError) {
        self.directory = directory
        self.maxSegmentBytes = maxSegmentBytes
        self.fileSystem = fileSystem
        self.snapshots = try SnapshotStore(directory: directory, fileSystem: fileSystem)
        self.recovered = Recovered(hardState: HardState(), log: RaftLog(), snapshot: nil, truncatedBytes: 0)
        try fileSystem.makeDirectories(directory)
        let snapshot = try snapshots.load()
        let segments = try fileSystem.listDirectory(directory)
            .compactMap(Self.segmentNumber(fileName:)).sorted()
        // The entries read so far: those after `base`, in order.
        var base: LogIndex = 0
        var entries: [Entry] = []
        func term(at index: LogIndex) -> Term? {
            guard index > base, index <= base + entries.count else { return nil }
            return entries[Int(index.rawValue - base.rawValue) - 1].term
        }
        for (position, number) in segments.enumerated() {
            let path = segmentPath(number)
            let bytes = try fileSystem.readFile(path)
            let scan: WALFormat.ScanResult
            do {
                scan = try WALFormat.scan(bytes, mayEndTorn: position == segments.count - 1)
            } catch {
                throw StorageError("write-ahead log corrupted: \(path) at offset \(error.offset): \(error.reason); refusing to start (move the data directory away to start this node afresh)")
            }
            var highest: LogIndex = 0
            for record in scan.records {
                switch record {
                case .hardState(let state):
                    recovered.hardState = state
                case .entries(let firstIndex, let newEntries):
                    if firstIndex > base + entries.count + 1 || firstIndex <= base {
                        // Older segments were deleted after a snapshot (or a snapshot was
                        // installed): the log continues from here; the check below makes sure
                        // the snapshot covers what came before.
                        base = firstIndex - 1
                        entries = []
                    }
                    entries.removeSubrange(Int(firstIndex.rawValue - base.rawValue - 1)...)
                    entries.append(contentsOf: newEntries)
                    highest = max(highest, firstIndex + (newEntries.count - 1))
                case .snapshot(let index, let snapshotTerm):
                    if term(at: index) == snapshotTerm {
                        entries.removeFirst(Int(index.rawValue - base.rawValue))
                    } else {
                        entries = []
                    }
                    base = index
                }
            }
            if scan.hasTornTail {
                recovered.truncatedBytes = bytes.count - scan.validBytes
                try fileSystem.truncateFile(path, to: scan.validBytes)
            }
            segmentLastIndex[number] = highest
            segmentNumber = number
            segmentBytes = scan.validBytes
        }
        let snapshotIndex = snapshot?.metadata.index ?? 0
        guard base <= snapshotIndex else {
            throw StorageError("write-ahead log in \(directory) starts at index \(base + 1) but the snapshot covers only up to \(snapshotIndex): entries are missing; refusing to start")
        }
        var snapshotContinuesLog = true
        if let snapshot {
            let metadata = snapshot.metadata
            // The core's rule (RaftLog.install): the entries after the snapshot stay when the
            // log holds its last entry (a node that crashed after storing a leader's snapshot
            // but before logging its install may not). A log starting right after the
            // snapshot's index continues it by construction.
            var log = RaftLog(snapshotIndex: base, snapshotTerm: base == metadata.index ? metadata.term : 0, entries: entries)
            snapshotContinuesLog = log.install(snapshotAt: metadata.index, term: metadata.term)
            recovered.log = log
            recovered.snapshot = snapshot
        } else {
            recovered.log = RaftLog(entries: entries)
        }
        lastHardState = recovered.hardState
        if segments.isEmpty {
            try openSegment(1)
        } else {
            openPath = segmentPath(segmentNumber)
            descriptor = try fileSystem.openSegment(openPath, at: segmentBytes)
            // Best effort, here and below: without the zeros a batch just grows the file.
            zeroedThrough = (try? fileSystem.extendWithZeros(descriptor, to: min(maxSegmentBytes, segmentBytes + Self.zeroStepBytes),
                                                             path: openPath)) ?? 0
        }
        if let metadata = snapshot?.metadata, !snapshotContinuesLog {
            // The snapshot was stored but the record that makes the log continue from it was
            // lost to a crash: without writing it now, the next recovery would again find the
            // stale entry at the snapshot's index and drop every entry appended after it
            // (found by the simulation, seed 6847).
            WALFormat.encode(.snapshot(index: metadata.index, term: metadata.term), into: &pending)
            try flush(sync: true)
        }
    }

    deinit {
        if descriptor >= 0 { fileSystem.close(descriptor) }
    }

    /// Buffers entries to write; the first may replace stored entries from its index on.
    public func append(_ entries: [Entry]) {
        guard let first = entries.first, let last = entries.last else { return }
        WALFormat.encode(.entries(firstIndex: first.index, entries), into: &pending)
        pendingLastIndex = max(pendingLastIndex, last.index)
    }

    /// Buffers a new hard state to write.
    public func save(_ hardState: HardState) {
        WALFormat.encode(.hardState(hardState), into: &pending)
        lastHardState = hardState
    }

    /// Stores a snapshot received from the leader (its own file, synced at once) and buffers
    /// the record that makes the log continue from it.
    public func install(_ snapshot: Snapshot) throws(StorageError) {
        try snapshots.save(snapshot)
        WALFormat.encode(.snapshot(index: snapshot.metadata.index, term: snapshot.metadata.term), into: &pending)
    }

    /// What `record` found in a round's outputs.
    public struct Recorded: Sendable {
        /// Something recorded must be fsync'd before the round's messages go out.
        public var mustSync = false
        /// The core compacted its log through this index (after a snapshot was stored).
        public var compactedThrough: LogIndex?
    }

    /// Buffers what a round's outputs must make durable, in the order recovery replays it:
    /// an installed snapshot (stored at once), then entries, then the hard state. The one
    /// place the node's driver and the simulation both turn outputs into writes.
    public func record(_ outputs: [Output]) throws(StorageError) -> Recorded {
        var recorded = Recorded()
        for output in outputs {
            if let snapshot = output.snapshot { try install(snapshot) }
            if !output.entries.isEmpty { append(output.entries) }
            if let hardState = output.hardState { save(hardState) }
            recorded.mustSync = recorded.mustSync || output.mustSync
            if let through = output.compactedThrough { recorded.compactedThrough = through }
        }
        return recorded
    }

    /// True when something is buffered.
    public var hasPendingWrites: Bool { !pending.bytes.isEmpty }

    /// Writes what is buffered as one batch, then fdatasyncs when `sync` is set. On a
    /// failed write the segment is cut back to its last whole batch before throwing.
    public func flush(sync: Bool) throws(StorageError) {
        if !pending.bytes.isEmpty {
            let batch = WALFormat.batch(payload: pending.bytes)
            // The next round's records go into the same buffer instead of regrowing one from
            // empty (a few allocations a round), unless this round's was unusually large.
            if pending.bytes.capacity <= Self.keptBufferBytes {
                pending.bytes.removeAll(keepingCapacity: true)
            } else {
                pending = ByteWriter()
            }
            if segmentBytes + batch.count > zeroedThrough, zeroedThrough > 0, zeroedThrough < maxSegmentBytes {
                let target = min(maxSegmentBytes, max(segmentBytes + batch.count, zeroedThrough + Self.zeroStepBytes))
                zeroedThrough = (try? fileSystem.extendWithZeros(descriptor, to: target, path: openPath)) ?? zeroedThrough
            }
            do {
                try fileSystem.write(descriptor, batch, path: openPath)
            } catch {
                fileSystem.truncate(descriptor, to: segmentBytes)
                zeroedThrough = min(zeroedThrough, segmentBytes)
                throw error
            }
            segmentBytes += batch.count
            bytesWritten += batch.count
            segmentLastIndex[segmentNumber] = max(segmentLastIndex[segmentNumber] ?? 0, pendingLastIndex)
            pendingLastIndex = 0
        }
        if sync {
            try fileSystem.sync(descriptor, path: openPath)
            syncCount += 1
            if segmentBytes >= maxSegmentBytes { try openSegment(segmentNumber + 1) }
        }
    }

    /// Deletes the closed segments whose entries all lie at or before `index`, which a
    /// durable snapshot covers. Returns how many were deleted.
    @discardableResult
    public func compact(through index: LogIndex) throws(StorageError) -> Int {
        var deleted = 0
        for number in segmentLastIndex.keys.sorted() where number < segmentNumber {
            guard let last = segmentLastIndex[number], last <= index else { break }
            try fileSystem.removeFile(segmentPath(number))
            segmentLastIndex[number] = nil
            deleted += 1
        }
        if deleted > 0 { try fileSystem.syncDirectory(directory) }
        return deleted
    }

    /// The paths of the segment files, oldest first.
    public func segmentPaths() throws(StorageError) -> [String] {
        try fileSystem.listDirectory(directory).compactMap(Self.segmentNumber(fileName:)).sorted().map(segmentPath)
    }

    private func openSegment(_ number: UInt64) throws(StorageError) {
        let isRotation = descriptor >= 0
        let path = segmentPath(number)
        let newDescriptor = try fileSystem.openSegment(path, at: 0)
        let zeroed = (try? fileSystem.extendWithZeros(newDescriptor, to: min(maxSegmentBytes, Self.zeroStepBytes), path: path)) ?? 0
        var written = 0
        if isRotation {
            // Every later segment starts with the hard state, durably, before older segments
            // may be deleted: buffered until the next flush instead, a compaction in between
            // lost term and vote to a crash (found by the simulation on 512-byte segments).
            let batch = WALFormat.batch([.hardState(lastHardState)])
            do {
                try fileSystem.write(newDescriptor, batch, path: path)
                try fileSystem.sync(newDescriptor, path: path)
            } catch {
                fileSystem.close(newDescriptor)
                throw error
            }
            written = batch.count
            syncCount += 1
            bytesWritten += batch.count
        }
        // The new file's name must be durable before anything in it counts.
        try fileSystem.syncDirectory(directory)
        if descriptor >= 0 { fileSystem.close(descriptor) }
        descriptor = newDescriptor
        openPath = path
        segmentNumber = number
        segmentBytes = written
        zeroedThrough = zeroed
        segmentLastIndex[number] = segmentLastIndex[number] ?? 0
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
