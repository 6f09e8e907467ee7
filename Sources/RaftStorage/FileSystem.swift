import Raft
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file operations the write-ahead log and the snapshot files need, and nothing more.
///
/// `PosixFileSystem` is the real disk. The simulation passes an in-memory disk that models
/// what a crash does to unsynced writes, so the same storage code runs in both.
/// Durability follows POSIX: written bytes survive a crash only after `sync` of their file,
/// and a created, renamed or removed name only after `syncDirectory` of its directory.
public protocol FileSystem: AnyObject, Sendable {
    func makeDirectories(_ path: String) throws(StorageError)
    /// The names in a directory (not `.` and `..`), in no particular order.
    func listDirectory(_ path: String) throws(StorageError) -> [String]
    func readFile(_ path: String) throws(StorageError) -> [UInt8]
    /// Opens a file for writing from its start, creating it or emptying it.
    func createEmpty(_ path: String) throws(StorageError) -> Int32
    /// Opens a log segment (created when missing) to write from `offset` on.
    func openSegment(_ path: String, at offset: Int) throws(StorageError) -> Int32
    /// Makes an open segment at least `length` bytes long by writing zeros after its end (not
    /// synced), and returns its length. The zeros are written, not just reserved: a later
    /// write inside them overwrites blocks the file already has, so its fdatasync need not
    /// also record a new size (on ext4 that spares a journal commit, which the nodes' logs on
    /// one disk otherwise queue for). A file system may write none and return 0.
    func extendWithZeros(_ file: Int32, to length: Int, path: String) throws(StorageError) -> Int
    /// Writes all of `bytes` where the file is positioned (the next place of a segment, the
    /// end of a file created empty); on failure some of them may have been written.
    func write(_ file: Int32, _ bytes: [UInt8], path: String) throws(StorageError)
    /// Cuts an open file back to `length` bytes and writes from there on (after a failed
    /// write; best effort).
    func truncate(_ file: Int32, to length: Int)
    /// Makes an open file's data durable (fdatasync).
    func sync(_ file: Int32, path: String) throws(StorageError)
    func close(_ file: Int32)
    /// Cuts a file to `length` bytes durably (a torn tail found by recovery).
    func truncateFile(_ path: String, to length: Int) throws(StorageError)
    /// Makes the directory's names durable (creations, renames, removals in it).
    func syncDirectory(_ path: String) throws(StorageError)
    /// Removes a file; a missing one is not an error.
    func removeFile(_ path: String) throws(StorageError)
    /// Replaces `destination` by `source` atomically.
    func rename(_ source: String, to destination: String) throws(StorageError)
}

/// The real file system, through POSIX calls that read `errno` right after a failure and
/// throw it with the path.
public final class PosixFileSystem: FileSystem {
    /// The one instance (it has no state).
    public static let shared = PosixFileSystem()

    private init() {}

    public func makeDirectories(_ path: String) throws(StorageError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if mkdir(prefix, 0o755) != 0 {
                let code = errno
                guard code == EEXIST else { throw .system("mkdir", prefix, code) }
            }
        }
    }

    public func listDirectory(_ path: String) throws(StorageError) -> [String] {
        guard let directory = opendir(path) else { throw .system("opendir", path, errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func readFile(_ path: String) throws(StorageError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system("open", path, errno) }
        defer { Glibc.close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .system("fstat", path, errno) }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + offset, buffer.count - offset, off_t(offset))
            }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .system("read", path, code)
            }
            if count == 0 { break }
            offset += count
        }
        return Array(bytes[0..<offset])
    }

    public func createEmpty(_ path: String) throws(StorageError) -> Int32 {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .system("open", path, errno) }
        return descriptor
    }

    public func openSegment(_ path: String, at offset: Int) throws(StorageError) -> Int32 {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .system("open", path, errno) }
        guard lseek(descriptor, off_t(offset), SEEK_SET) >= 0 else {
            let code = errno
            _ = Glibc.close(descriptor)
            throw .system("lseek", path, code)
        }
        return descriptor
    }

    public func extendWithZeros(_ file: Int32, to length: Int, path: String) throws(StorageError) -> Int {
        var status = stat()
        guard fstat(file, &status) == 0 else { throw .system("fstat", path, errno) }
        var end = Int(status.st_size)
        let zeros = [UInt8](repeating: 0, count: min(256 * 1024, max(0, length - end)))
        while end < length {
            let count = zeros.withUnsafeBytes { pwrite(file, $0.baseAddress!, min($0.count, length - end), off_t(end)) }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .system("pwrite", path, code)
            }
            end += count
        }
        return end
    }

    public func write(_ file: Int32, _ bytes: [UInt8], path: String) throws(StorageError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                Glibc.write(file, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .system("write", path, code)
            }
            offset += count
        }
    }

    public func truncate(_ file: Int32, to length: Int) {
        // Best effort: the caller is already failing.
        _ = ftruncate(file, off_t(length))
        _ = lseek(file, off_t(length), SEEK_SET)
    }

    public func sync(_ file: Int32, path: String) throws(StorageError) {
        guard fdatasync(file) == 0 else { throw .system("fdatasync", path, errno) }
    }

    public func close(_ file: Int32) { _ = Glibc.close(file) }

    public func truncateFile(_ path: String, to length: Int) throws(StorageError) {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system("open", path, errno) }
        defer { Glibc.close(descriptor) }
        guard ftruncate(descriptor, off_t(length)) == 0 else { throw .system("ftruncate", path, errno) }
        guard fsync(descriptor) == 0 else { throw .system("fsync", path, errno) }
    }

    public func syncDirectory(_ path: String) throws(StorageError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system("open", path, errno) }
        defer { Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .system("fsync", path, errno) }
    }

    public func removeFile(_ path: String) throws(StorageError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw .system("unlink", path, errno) }
    }

    public func rename(_ source: String, to destination: String) throws(StorageError) {
        guard Glibc.rename(source, destination) == 0 else { throw .system("rename", source, errno) }
    }
}
