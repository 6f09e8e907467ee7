import ClusterNode
import Foundation

/// One spawned node process and what the supervisor knows of it.
final class NodeProcess: @unchecked Sendable {
    enum Status: String, Codable {
        case running, paused, stopped, killed, exited
    }

    let port: Int
    let dataDirectory: String
    let logPath: String
    private let lock = NSLock()
    private var process: Process?
    private var parentPipe: Pipe?
    private var currentStatus: Status = .stopped
    private var exitStatus: Int32?

    init(port: Int, dataDirectory: String, logPath: String) {
        self.port = port
        self.dataDirectory = dataDirectory
        self.logPath = logPath
    }

    var status: Status { lock.withLock { currentStatus } }
    var pid: Int32? { lock.withLock { process?.isRunning == true ? process?.processIdentifier : nil } }
    var lastExitStatus: Int32? { lock.withLock { exitStatus } }

    /// A node's environment: the parent's (setting `Process.environment` replaces it whole),
    /// with glibc's allocator tuned for a node unless the parent tuned it already:
    /// - `MALLOC_ARENA_MAX=2`: glibc gives busy threads arenas of their own; a node's threads
    ///   mostly wait, and two arenas keep the resident size of many idle nodes down;
    /// - `GLIBC_TUNABLES=glibc.malloc.tcache_count=512:glibc.malloc.mxfast=0`: a thread's cache
    ///   of freed blocks holds 7 of a size by default, and a node's event loops free what its
    ///   round thread allocated (and the other way round), so most frees went to the shared
    ///   arenas' bins and their locks. With 512 a size (and no fast bins), alternated at 128
    ///   connections: leader CPU per request 103-108 -> 89-90 us, 9,906-10,285 -> 11,752-11,902
    ///   req/s; about 7 MB more resident per node after 60,000 services.
    static func environment(inheriting parent: [String: String]) -> [String: String] {
        var environment = parent
        environment["MALLOC_ARENA_MAX"] = parent["MALLOC_ARENA_MAX"] ?? "2"
        environment["GLIBC_TUNABLES"] = parent["GLIBC_TUNABLES"] ?? "glibc.malloc.tcache_count=512:glibc.malloc.mxfast=0"
        return environment
    }

    /// Starts `executable` with `arguments`, output appended to the log file, standard input a
    /// pipe whose write end we keep (the node exits when it closes).
    func start(executable: String, arguments: [String]) throws {
        // Appended, never truncated: the reason a node died stays after it is restarted. The
        // node rotates the file itself (it is told --log); this handle only catches what it
        // prints before it opens it.
        let log = FileHandle(fileDescriptor: try EventLog.openAppending(logPath), closeOnDealloc: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = Self.environment(inheriting: ProcessInfo.processInfo.environment)
        let pipe = Pipe()
        // Not inherited by the other nodes we spawn: each node must see end-of-file as soon as
        // the orchestrator is gone, not when its siblings are.
        _ = fcntl(pipe.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipe.fileHandleForReading.fileDescriptor, F_SETFD, FD_CLOEXEC)
        process.standardInput = pipe
        process.standardOutput = log
        process.standardError = log
        process.terminationHandler = { [weak self] finished in
            guard let self else { return }
            self.lock.withLock {
                // Only the current process: a restarted node's previous one may be reported late.
                guard self.process === finished else { return }
                self.exitStatus = finished.terminationStatus
                if self.currentStatus == .running || self.currentStatus == .paused { self.currentStatus = .exited }
            }
        }
        // Recorded as running before it runs: a process that exits at once (a node whose port
        // is taken) may be reported to the handler before `run()` returns. Recorded after, its
        // exit was overwritten and the node counted as running for good (a test saw it once,
        // on a loaded machine: "exit 3" still running 10 s later).
        let before = lock.withLock { () -> (process: Process?, pipe: Pipe?, status: Status, exitStatus: Int32?) in
            defer {
                self.process = process
                parentPipe = pipe
                currentStatus = .running
                exitStatus = nil
            }
            return (self.process, parentPipe, currentStatus, exitStatus)
        }
        do {
            try process.run()
        } catch {
            lock.withLock { (self.process, parentPipe, currentStatus, exitStatus) = before }
            throw error
        }
        try? log.close()  // the child has its own copy
    }

    /// Sends `signal` to the process; returns false when it is not running.
    @discardableResult
    func send(_ signalNumber: Int32) -> Bool {
        guard let pid else { return false }
        return kill(pid, signalNumber) == 0
    }

    func markStatus(_ status: Status) { lock.withLock { currentStatus = status } }

    /// Stops the process: SIGTERM (SIGCONT first if paused), then SIGKILL after `graceSeconds`.
    func terminate(graceSeconds: Double = 2) {
        // Marked first: while it ends, it is one we stopped, never one that exited by itself.
        markStatus(.stopped)
        guard let pid else { return }
        kill(pid, SIGCONT)
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(graceSeconds)
        while self.pid != nil, Date() < deadline { usleep(5_000) }
        if self.pid != nil {
            kill(pid, SIGKILL)
            let killDeadline = Date().addingTimeInterval(2)
            while self.pid != nil, Date() < killDeadline { usleep(5_000) }
        }
        closePipe()
    }

    /// Kills at once (SIGKILL), as a crash would.
    func killNow() {
        guard let pid else { return }
        markStatus(.killed)  // first, as in `terminate`
        kill(pid, SIGKILL)
        let deadline = Date().addingTimeInterval(2)
        while self.pid != nil, Date() < deadline { usleep(2_000) }
        closePipe()
    }

    private func closePipe() {
        let pipe = lock.withLock { () -> Pipe? in
            defer { parentPipe = nil }
            return parentPipe
        }
        try? pipe?.fileHandleForWriting.close()  // the process is gone; nothing to report
    }
}
