#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A process's log of what an operator needs to know, one timestamped line per event,
/// appended across restarts and rotated by size.
///
/// Opened on a file, it also becomes the process's standard output and error (dup2), so a
/// runtime trap or a message printed by any code lands in the same file, after the events
/// that led to it. Rotation renames the file to `.1` (and `.1` to `.2`) and starts anew.
public final class EventLog: Sendable {
    /// A file this size is rotated before the next line: 8 MiB holds days of an idle node's
    /// events and hours of a busy one's; with two older files a node keeps at most 24 MiB.
    public static let maxFileBytes = 8 * 1024 * 1024
    /// Rotated files kept beside the current one.
    public static let keptFiles = 2

    private struct State {
        var descriptor: Int32
        var bytes: Int
        /// RFC 3339 in UTC with milliseconds; made once (a formatter costs more to make than
        /// to use) and used under the lock.
        let formatter: ISO8601DateFormatter = {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            formatter.timeZone = TimeZone(identifier: "UTC")
            return formatter
        }()
    }

    /// The file (nil: standard output only).
    public let path: String?
    private let state: Mutex<State>
    private let maxBytes: Int
    /// The file is the process's standard output and error (a node's log).
    private let takesStandardStreams: Bool
    /// Each line also goes to standard output (the orchestrator's terminal).
    private let echoes: Bool

    /// A log on standard output, for processes started without a log file.
    public init() {
        self.path = nil
        self.maxBytes = .max
        self.takesStandardStreams = false
        self.echoes = false
        self.state = Mutex(State(descriptor: 1, bytes: 0))
    }

    /// Opens `path` for appending (creating it). With `takesStandardStreams` it becomes
    /// standard output and error too; with `echoes` each line is also printed.
    public init(path: String, maxBytes: Int = EventLog.maxFileBytes, takesStandardStreams: Bool = true, echoes: Bool = false) throws {
        let descriptor = try Self.openAppending(path)
        self.path = path
        self.maxBytes = maxBytes
        self.takesStandardStreams = takesStandardStreams
        self.echoes = echoes
        var status = stat()
        fstat(descriptor, &status)
        self.state = Mutex(State(descriptor: descriptor, bytes: Int(status.st_size)))
        if takesStandardStreams { Self.redirectStandardStreams(to: descriptor) }
    }

    /// Appends one line: the time (RFC 3339, UTC, milliseconds), then `message`.
    public func write(_ message: String) {
        // One event, one line: a message never breaks the format with its own newlines.
        let text = message.replacingOccurrences(of: "\n", with: " ")
        let line = state.withLock { state -> [UInt8] in
            let line = Array("\(state.formatter.string(from: Date())) \(text)\n".utf8)
            if let path, state.bytes + line.count > maxBytes, state.bytes > 0 { rotate(path, &state) }
            var written = 0
            while written < line.count {
                let count = line[written...].withUnsafeBytes { Glibc.write(state.descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }  // a full disk loses the line, never the process
                written += count
            }
            state.bytes += written
            return line
        }
        if echoes {
            print(String(decoding: line.dropLast(), as: UTF8.self))
            fflush(nil)
        }
    }

    private func rotate(_ path: String, _ state: inout State) {
        fflush(nil)  // whatever buffered output belongs to the old file goes there first
        for generation in stride(from: Self.keptFiles - 1, through: 1, by: -1) {
            rename("\(path).\(generation)", "\(path).\(generation + 1)")
        }
        rename(path, "\(path).1")
        guard let descriptor = try? Self.openAppending(path) else { return }  // keep writing to the renamed file
        close(state.descriptor)
        state.descriptor = descriptor
        state.bytes = 0
        if takesStandardStreams { Self.redirectStandardStreams(to: descriptor) }
    }

    /// Opens `path` for appending, creating it (close-on-exec); throws naming the path.
    public static func openAppending(_ path: String) throws -> Int32 {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: "cannot open log \(path): \(String(cString: strerror(errno)))"])
        }
        return descriptor
    }

    private static func redirectStandardStreams(to descriptor: Int32) {
        fflush(nil)
        dup2(descriptor, 1)
        dup2(descriptor, 2)
    }
}
