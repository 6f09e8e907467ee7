import Raft
import Synchronization

/// An in-memory `FileSystem` that does to unsynced data what a crash does to a real disk,
/// so the simulation can run the real write-ahead log and snapshot store.
///
/// Each file keeps what was written and, apart, what is durable (as of its last `sync`);
/// each directory keeps its names and, apart, the names that are durable (as of its last
/// `syncDirectory`). `crash` keeps what is durable, plus a random prefix of each file's
/// unsynced tail (a torn last write, sometimes with a zeroed block inside, as when a
/// later block of the write reached the platter before an earlier one), and forgets every
/// name not made durable. `capacityBytes` makes writes fail with "no space left" once the
/// disk is full, after writing what fits.
public final class SimulatedDisk: FileSystem {
    private struct Inode {
        var bytes: [UInt8] = []
        /// The durable content is `bytes.prefix(durableLength)`, unless the file was cut or
        /// emptied since its last sync: then it is `divergedDurable`. (Not a copy per sync:
        /// files only grow between syncs, and copying them made the simulation quadratic.)
        var durableLength = 0
        var divergedDurable: [UInt8]?

        var durableBytes: [UInt8] { divergedDurable ?? Array(bytes.prefix(durableLength)) }

        /// Cuts the file to `length` without making it durable.
        mutating func cut(to length: Int) {
            guard length < bytes.count else { return }
            if divergedDurable == nil, length < durableLength { divergedDurable = Array(bytes.prefix(durableLength)) }
            bytes.removeSubrange(length...)
        }

        mutating func makeDurable() {
            durableLength = bytes.count
            divergedDurable = nil
        }
    }

    private struct State {
        var inodes: [Int: Inode] = [:]
        var nextInode = 1
        /// Path → inode, as a reader sees it now.
        var names: [String: Int] = [:]
        /// Path → inode, as a crash would leave it.
        var durableNames: [String: Int] = [:]
        var directories: Set<String> = ["/"]
        /// Open descriptors: inode and path.
        var open: [Int32: (inode: Int, path: String)] = [:]
        var nextDescriptor: Int32 = 3
        var capacityBytes: Int?
        var syncCount = 0
    }

    /// Every name and open descriptor refers to an inode that exists (inodes go only when
    /// nothing refers to them), which the force unwraps below rely on.
    private let state = Mutex(State())

    public init() {}

    /// Bytes all files take now.
    public var usedBytes: Int { state.withLock { $0.inodes.values.reduce(0) { $0 + $1.bytes.count } } }

    /// When set, a write that would take the disk past this fails ("no space left").
    public var capacityBytes: Int? {
        get { state.withLock { $0.capacityBytes } }
        set { state.withLock { $0.capacityBytes = newValue } }
    }

    /// Syncs (file and directory) so far.
    public var syncCount: Int { state.withLock { $0.syncCount } }

    private static func parent(_ path: String) -> String {
        // On the UTF-8 view: searching Characters cost the simulation several percent.
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    /// True when `path` names an entry directly inside `directory`.
    private static func isEntry(_ path: String, of directory: String) -> Bool {
        path.utf8.count > directory.utf8.count && path.hasPrefix(directory) && parent(path) == directory
    }

    private static func error(_ operation: String, _ path: String, _ reason: String) -> StorageError {
        StorageError("\(operation) \(path): \(reason) (simulated disk)")
    }

    public func makeDirectories(_ path: String) throws(StorageError) {
        state.withLock { state in
            var prefix = ""
            for component in path.split(separator: "/") {
                prefix += (path.hasPrefix("/") || !prefix.isEmpty ? "/" : "") + component
                state.directories.insert(prefix)
            }
        }
    }

    public func listDirectory(_ path: String) throws(StorageError) -> [String] {
        try state.withLock { state throws(StorageError) -> [String] in
            guard state.directories.contains(path) else { throw Self.error("opendir", path, "No such file or directory") }
            return state.names.keys.filter { Self.parent($0) == path }.map { String($0.dropFirst(path.count + 1)) }
        }
    }

    public func readFile(_ path: String) throws(StorageError) -> [UInt8] {
        try state.withLock { state throws(StorageError) -> [UInt8] in
            guard let inode = state.names[path] else { throw Self.error("open", path, "No such file or directory") }
            return state.inodes[inode]!.bytes
        }
    }

    private func open(_ path: String, emptying: Bool) throws(StorageError) -> Int32 {
        try state.withLock { state throws(StorageError) -> Int32 in
            guard state.directories.contains(Self.parent(path)) else { throw Self.error("open", path, "No such file or directory") }
            let inode: Int
            if let existing = state.names[path] {
                inode = existing
                if emptying { state.inodes[inode]!.cut(to: 0) }
            } else {
                inode = state.nextInode
                state.nextInode += 1
                state.inodes[inode] = Inode()
                state.names[path] = inode
            }
            let descriptor = state.nextDescriptor
            state.nextDescriptor += 1
            state.open[descriptor] = (inode, path)
            return descriptor
        }
    }

    /// A segment here is written by appending: bytes past `offset` (none, after recovery
    /// cut a torn tail) are cut, unsynced, and no zeros are written ahead.
    public func openSegment(_ path: String, at offset: Int) throws(StorageError) -> Int32 {
        let descriptor = try open(path, emptying: false)
        truncate(descriptor, to: offset)
        return descriptor
    }

    public func extendWithZeros(_ file: Int32, to length: Int, path: String) throws(StorageError) -> Int { 0 }

    public func createEmpty(_ path: String) throws(StorageError) -> Int32 { try open(path, emptying: true) }

    public func write(_ file: Int32, _ bytes: [UInt8], path: String) throws(StorageError) {
        try state.withLock { state throws(StorageError) in
            guard let (inode, _) = state.open[file] else { throw Self.error("write", path, "Bad file descriptor") }
            var room = bytes.count
            if let capacity = state.capacityBytes {
                room = max(0, min(room, capacity - state.inodes.values.reduce(0) { $0 + $1.bytes.count }))
            }
            state.inodes[inode]!.bytes += bytes[..<room]
            guard room == bytes.count else { throw Self.error("write", path, "No space left on device") }
        }
    }

    public func truncate(_ file: Int32, to length: Int) {
        state.withLock { state in
            guard let (inode, _) = state.open[file] else { return }
            state.inodes[inode]!.cut(to: length)
        }
    }

    public func sync(_ file: Int32, path: String) throws(StorageError) {
        try state.withLock { state throws(StorageError) in
            guard let (inode, _) = state.open[file] else { throw Self.error("fdatasync", path, "Bad file descriptor") }
            state.inodes[inode]!.makeDurable()
            state.syncCount += 1
        }
    }

    public func close(_ file: Int32) { _ = state.withLock { $0.open.removeValue(forKey: file) } }

    public func truncateFile(_ path: String, to length: Int) throws(StorageError) {
        try state.withLock { state throws(StorageError) in
            guard let inode = state.names[path] else { throw Self.error("open", path, "No such file or directory") }
            state.inodes[inode]!.cut(to: length)
            state.inodes[inode]!.makeDurable()
            state.syncCount += 1
        }
    }

    public func syncDirectory(_ path: String) throws(StorageError) {
        state.withLock { state in
            for name in state.durableNames.keys.filter({ Self.isEntry($0, of: path) }) { state.durableNames[name] = nil }
            for (name, inode) in state.names where Self.isEntry(name, of: path) { state.durableNames[name] = inode }
            state.syncCount += 1
            // A file no name reaches, now or after a crash, and that is not open is gone.
            let reachable = Set(state.names.values).union(state.durableNames.values).union(state.open.values.map(\.inode))
            for number in state.inodes.keys where !reachable.contains(number) { state.inodes[number] = nil }
        }
    }

    public func removeFile(_ path: String) throws(StorageError) {
        _ = state.withLock { $0.names.removeValue(forKey: path) }
    }

    public func rename(_ source: String, to destination: String) throws(StorageError) {
        try state.withLock { state throws(StorageError) in
            guard let inode = state.names.removeValue(forKey: source) else { throw Self.error("rename", source, "No such file or directory") }
            state.names[destination] = inode
        }
    }

    /// What a power loss leaves: durable names only, each file's durable bytes plus a random
    /// prefix of what was written after them (possibly with a zeroed block inside), and no
    /// open descriptors. Returns the unsynced bytes lost.
    @discardableResult
    public func crash(using random: inout some RandomNumberGenerator) -> Int {
        state.withLock { state in
            var lost = 0
            for (number, inode) in state.inodes.sorted(by: { $0.key < $1.key }) {
                var survived = inode.durableBytes
                let written = inode.bytes
                if inode.divergedDurable == nil, written.count > survived.count {
                    // The unsynced tail: any prefix of it may have reached the disk.
                    let tail = Array(written[survived.count...])
                    var kept = Array(tail.prefix(Int.random(in: 0...tail.count, using: &random)))
                    if kept.count > 16, Bool.random(using: &random) {
                        let start = Int.random(in: 0..<kept.count, using: &random)
                        let end = min(kept.count, start + Int.random(in: 1...16, using: &random))
                        for position in start..<end { kept[position] = 0 }
                    }
                    lost += tail.count - kept.count
                    survived += kept
                } else if written != survived {
                    lost += written.count  // rewritten or cut since the sync: the sync's state stands
                }
                state.inodes[number] = Inode(bytes: survived, durableLength: survived.count)
            }
            state.names = state.durableNames
            let reachable = Set(state.names.values)
            for number in state.inodes.keys where !reachable.contains(number) { state.inodes[number] = nil }
            state.open = [:]
            return lost
        }
    }
}
