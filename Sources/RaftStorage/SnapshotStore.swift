import Raft
import Synchronization

/// Snapshot files in a data directory, one kept at a time. A snapshot is written to a
/// temporary file, fsync'd, renamed into place and the directory fsync'd, so a crash leaves
/// either the old snapshot or the new one, never a torn one; a CRC32C over the whole file
/// catches damage after the fact.
///
///     magic u32 | version u8 | metadata (index u64, term u64, membership) | length u64 | data | CRC32C u32
///
/// Thread-safe: the driver installs snapshots from the leader while a background thread
/// may be writing one of its own.
public final class SnapshotStore: @unchecked Sendable {
    static let magic: UInt32 = 0x504E_5352
    static let version: UInt8 = 1

    public let directory: String
    /// The disk it writes to: the real one, or the simulation's.
    public let fileSystem: any FileSystem
    private let lock = Mutex(())

    public init(directory: String, fileSystem: any FileSystem = PosixFileSystem.shared) throws(StorageError) {
        self.directory = directory
        self.fileSystem = fileSystem
        try fileSystem.makeDirectories(directory)
        for name in try fileSystem.listDirectory(directory) where name.hasPrefix("snapshot-") && name.hasSuffix(".tmp") {
            try fileSystem.removeFile(directory + "/" + name)  // an unfinished write from before a crash
        }
    }

    /// The newest snapshot on disk, or nil when there is none. Throws, naming the file,
    /// when it is damaged: starting without it would lose the entries it covers.
    public func load() throws(StorageError) -> Snapshot? {
        try lock.withLock { _ throws(StorageError) -> Snapshot? in
            guard let newest = try snapshotFiles().last else { return nil }
            let path = directory + "/" + newest.name
            let bytes = try fileSystem.readFile(path)
            guard let snapshot = Self.decode(bytes) else {
                throw StorageError("snapshot file damaged: \(path) (\(bytes.count) bytes) fails its checksum or does not parse; refusing to start (move the data directory away to start this node afresh)")
            }
            return snapshot
        }
    }

    /// Stores `snapshot` durably, replacing older ones; a snapshot no newer than the one
    /// stored is ignored (a leader's install and a local snapshot may race).
    public func save(_ snapshot: Snapshot) throws(StorageError) {
        try lock.withLock { _ throws(StorageError) in
            let existing = try snapshotFiles()
            if let newest = existing.last, newest.index >= snapshot.metadata.index.rawValue { return }
            let name = Self.fileName(snapshot.metadata.index)
            let temporary = directory + "/" + name + ".tmp"
            let (head, tail) = Self.frame(snapshot)
            let descriptor = try fileSystem.createEmpty(temporary)
            do throws(StorageError) {
                // The data as it is, between its header and checksum: a copy of a state of
                // tens of MB into one buffer would cost as much as writing it.
                try fileSystem.write(descriptor, head, path: temporary)
                try writeSteadily(snapshot.data, to: descriptor, path: temporary)
                try fileSystem.write(descriptor, tail, path: temporary)
                try fileSystem.sync(descriptor, path: temporary)
            } catch {
                fileSystem.close(descriptor)
                try? fileSystem.removeFile(temporary)  // the write already failed; that error is the one to report
                throw error
            }
            fileSystem.close(descriptor)
            try fileSystem.rename(temporary, to: directory + "/" + name)
            try fileSystem.syncDirectory(directory)
            for old in existing { try fileSystem.removeFile(directory + "/" + old.name) }
        }
    }

    /// Bytes of a snapshot written and synced at a time (see `writeSteadily`).
    public static let steadyWriteBytes = 1 << 20

    /// Writes `data` in pieces of `steadyWriteBytes`, each synced before the next is written.
    /// Written at once, a state of tens of MB sat in the page cache until its one fdatasync,
    /// which then pushed all of it to the device while every fdatasync of the log (this
    /// node's and, on one disk, the others') queued behind it: 124 to 631 ms for 27 to 78 MB
    /// on this machine, and all three nodes snapshot at about the same index. In pieces, a
    /// log's sync waits for one piece at most. (`sync_file_range` would start the writeback
    /// without a flush, but under a virtual machine's disk the last flush then persists the
    /// whole file on the host at once.)
    private func writeSteadily(_ data: [UInt8], to descriptor: Int32, path: String) throws(StorageError) {
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + Self.steadyWriteBytes)
            try fileSystem.write(descriptor, offset == 0 && end == data.count ? data : Array(data[offset..<end]), path: path)
            if end < data.count { try fileSystem.sync(descriptor, path: path) }
            offset = end
        }
    }

    /// What goes before a snapshot's data in its file and what after (the CRC32C of both).
    static func frame(_ snapshot: Snapshot) -> (head: [UInt8], tail: [UInt8]) {
        var head = ByteWriter()
        head.write(magic)
        head.write(version)
        head.write(snapshot.metadata)
        head.write(UInt64(snapshot.data.count))
        let crc = snapshot.data.withUnsafeBytes { data in
            head.bytes.withUnsafeBytes { CRC32C.checksum(data, continuing: CRC32C.checksum($0)) }
        }
        var tail = ByteWriter()
        tail.write(crc)
        return (head.bytes, tail.bytes)
    }

    static func decode(_ bytes: [UInt8]) -> Snapshot? {
        guard bytes.count >= 4, CRC32C.checksum(bytes[..<(bytes.count - 4)]) == {
            var reader = ByteReader(bytes[(bytes.count - 4)...])
            return (try? reader.readUInt32()) ?? 0
        }() else { return nil }
        var reader = ByteReader(bytes[..<(bytes.count - 4)])
        guard (try? reader.readUInt32()) == magic, (try? reader.readByte()) == version,
              let metadata = try? reader.readSnapshotMetadata(), let length = try? reader.readUInt64(),
              length <= UInt64(bytes.count), let data = try? reader.readBytes(Int(length)), reader.isAtEnd
        else { return nil }
        return Snapshot(metadata: metadata, data: data)
    }

    private func snapshotFiles() throws(StorageError) -> [(index: UInt64, name: String)] {
        try fileSystem.listDirectory(directory).compactMap { name -> (UInt64, String)? in
            guard name.hasPrefix("snapshot-"), name.hasSuffix(".snap"), let index = UInt64(name.dropFirst(9).dropLast(5)) else { return nil }
            return (index, name)
        }.sorted { $0.0 < $1.0 }
    }

    static func fileName(_ index: LogIndex) -> String {
        let digits = String(index.rawValue)
        return "snapshot-" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".snap"
    }
}
