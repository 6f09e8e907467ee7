import Foundation

/// An exclusive hold on a data directory for the life of this process: a file in it,
/// locked with flock(2) and holding the owner's PID.
///
/// The kernel drops the lock when the process dies however it dies (kill -9 included), so
/// a stale lock file never blocks a restart. The descriptor is opened close-on-exec: a
/// child process (a node spawned by the orchestrator) does not inherit its parent's hold.
public final class DirectoryLock: Sendable {
    /// Why a directory could not be locked.
    public struct Refused: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The lock file's name inside the directory it guards.
    public static let fileName = "LOCK"

    /// The directory this lock holds.
    public let directory: String
    private let descriptor: Int32

    /// Creates `directory` if needed and locks it; throws naming the directory and the PID
    /// holding it when another live process owns it.
    public init(directory: String) throws(Refused) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw Refused(description: "cannot create data directory \(directory): \(error.localizedDescription)")
        }
        let path = directory + "/" + Self.fileName
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw Refused(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = Self.recordedPID(descriptor)
            close(descriptor)
            if code == EWOULDBLOCK {
                throw Refused(description: "data directory \(directory) is in use by process \(holder.map(String.init) ?? "(unknown PID)"); stop it first or choose another --data-dir")
            }
            throw Refused(description: "cannot lock \(path): \(String(cString: strerror(code)))")
        }
        // Ours now: record our PID for whoever is refused next.
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        self.directory = directory
        self.descriptor = descriptor
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    /// The PID of the live process holding `directory`, or nil when no process holds it
    /// (or the directory has no lock file). Used before deleting a directory.
    public static func holder(of directory: String) -> Int32? {
        let descriptor = open(directory + "/" + fileName, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        if flock(descriptor, LOCK_EX | LOCK_NB) == 0 {
            flock(descriptor, LOCK_UN)
            return nil
        }
        return recordedPID(descriptor) ?? -1
    }

    private static func recordedPID(_ descriptor: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Every directory at or below `root` held by a live process, with its holder's PID
    /// (a deleted directory must not be one of them).
    public static func heldDirectories(under root: String) -> [(directory: String, pid: Int32)] {
        var held: [(String, Int32)] = []
        if let pid = holder(of: root) { held.append((root, pid)) }
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return held }
        while let relative = enumerator.nextObject() as? String {
            guard (relative as NSString).lastPathComponent == fileName else { continue }
            let directory = root + "/" + (relative as NSString).deletingLastPathComponent
            if directory != root + "/", let pid = holder(of: directory) { held.append((directory, pid)) }
        }
        return held
    }
}
