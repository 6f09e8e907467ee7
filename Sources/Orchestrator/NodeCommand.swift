import ClusterNode
import Foundation
import Transport

/// `orchestrator node ...`: runs one node process (the orchestrator spawns these).
enum NodeCommand {
    static let usage = """
        usage: orchestrator node --port P --members P1,P2,... --data-dir DIR [--cluster ID]
                                 [--heartbeat-ms 50] [--election-timeout-ms 500] [--capacity 100]
                                 [--commit-timeout-ms 5000] [--unhealthy-after-ms 3000] [--election-jitter-ms T]
                                 [--snapshot-every 10000] [--snapshot-trailing 1000]
                                 [--log FILE] [--no-fsync] [--watch-parent]
          --members       the cluster's first members, the same for every node; a node not among
                          them starts as an outsider and waits for the leader to add it
          --snapshot-every  snapshot the state machine every N applied entries, keeping
                          --snapshot-trailing entries before it in the log
          --log FILE      append timestamped events (elections, leaders, membership, snapshots, links,
                          faults, fatal errors) and everything printed to FILE, rotated at 8 MiB
                          (FILE.1 and FILE.2 kept); without it they go to standard output
          --watch-parent  exit when standard input closes (the orchestrator that spawned us is gone)
        """

    static func run(_ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(
            words, options: ["port", "members", "data-dir", "cluster", "heartbeat-ms", "election-timeout-ms", "capacity", "commit-timeout-ms", "unhealthy-after-ms", "election-jitter-ms", "host", "snapshot-every", "snapshot-trailing", "log"],
            flags: ["no-fsync", "watch-parent", "help"])
        if arguments.has("help") {
            print(usage)
            return 0
        }
        let port = try arguments.integer("port", default: 0, in: 1...65_535)
        guard let memberText = arguments.options["members"] else { throw CommandLineArguments.Problem(description: "--members is required\n\(usage)") }
        let members = try memberText.split(separator: ",").map { part -> UInt64 in
            guard let member = UInt64(part), member > 0, member <= 65_535 else {
                throw CommandLineArguments.Problem(description: "--members takes ports separated by commas, got \"\(part)\"")
            }
            return member
        }
        guard let dataDirectory = arguments.options["data-dir"] else { throw CommandLineArguments.Problem(description: "--data-dir is required\n\(usage)") }
        var configuration = NodeConfiguration(clusterID: arguments.options["cluster"] ?? "0", port: port, members: members, dataDirectory: dataDirectory)
        configuration.heartbeatMilliseconds = try arguments.integer("heartbeat-ms", default: 50, in: 10...60_000)
        configuration.electionTimeoutMilliseconds = try arguments.integer("election-timeout-ms", default: 500, in: 20...600_000)
        configuration.capacity = try arguments.integer("capacity", default: 100, in: 0...1_000_000)
        configuration.snapshotEveryEntries = try arguments.integer("snapshot-every", default: 10_000, in: 1...100_000_000)
        configuration.snapshotTrailingEntries = try arguments.integer("snapshot-trailing", default: 1_000, in: 0...100_000_000)
        configuration.commitTimeoutSeconds = Double(try arguments.integer("commit-timeout-ms", default: 5_000, in: 100...600_000)) / 1_000
        configuration.isFsyncEnabled = !arguments.has("no-fsync")
        if arguments.options["election-jitter-ms"] != nil {
            configuration.electionJitterMilliseconds = try arguments.integer("election-jitter-ms", default: 0, in: 20...600_000)
        }
        configuration.unhealthyAfterSeconds = Double(try arguments.integer("unhealthy-after-ms", default: 3_000, in: 100...3_600_000)) / 1_000
        guard configuration.electionTimeoutMilliseconds > configuration.heartbeatMilliseconds else {
            throw CommandLineArguments.Problem(description: "--election-timeout-ms must exceed --heartbeat-ms")
        }

        let log: EventLog
        do {
            log = try arguments.options["log"].map { try EventLog(path: $0) } ?? EventLog()
        } catch {
            FileHandle.standardError.write(Data("node \(port): \(error.localizedDescription)\n".utf8))
            return 1
        }
        log.write("node \(port) of cluster \(configuration.clusterID) starting, pid \(getpid()), data in \(dataDirectory), members \(memberText)")
        let node: NodeDriver
        do {
            node = try NodeDriver(configuration: configuration, log: log)
        } catch {
            log.write("FATAL: cannot open its data in \(dataDirectory): \(error)")
            return 1
        }
        var limits = ServerLimits()
        // 1 MiB on the API like the orchestrator; only the Raft endpoint takes whole batches.
        limits.maxBodyBytes = NodeLimits.maxAPIBodyBytes
        limits.maxBodyBytesByPath = ["/raft/messages": NodeLimits.maxRaftBodyBytes]
        limits.maxBodyBytesInFlight = NodeLimits.maxBodyBytesInFlight
        let server = HTTPServer(host: arguments.options["host"] ?? "127.0.0.1", port: port, limits: limits, router: NodeAPI.router(for: node))
        do {
            try server.start()
        } catch {
            log.write("FATAL: cannot listen: port \(port) is taken or unusable (\(error))")
            return 1
        }
        node.start()
        log.write("listening on 127.0.0.1:\(port)")
        if arguments.has("watch-parent") {
            ParentWatch.onStandardInputClosed {
                log.write("the orchestrator is gone; exiting")
                // Everything written is already fdatasync'd; exit(3)'s atexit work can take a second.
                _exit(0)
            }
        }
        Signals.onTermination {
            log.write("stopping (SIGTERM or SIGINT)")
            server.stop(graceSeconds: 1)
            node.stop()
            fflush(nil)
            _exit(0)
        }
        while true { sleep(3_600) }
    }
}

/// Notices that the process that spawned this one is gone: it holds the write end of our
/// standard input, so end-of-file means it exited (or was killed).
enum ParentWatch {
    /// Runs `action` on a thread of its own once standard input closes.
    static func onStandardInputClosed(_ action: @escaping @Sendable () -> Void) {
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let count = read(0, &byte, 1)
                if count == 0 || (count < 0 && errno != EINTR) { break }
            }
            action()
        }
        thread.name = "parent-watch"
        thread.start()
    }
}

/// SIGINT and SIGTERM, received by one thread with sigwait(3).
///
/// `install()` must run first thing in `main`, before any thread exists: it blocks both
/// signals so every later thread inherits the block and none can receive (and, with no
/// handler, lose) them; the waiting thread is then the only receiver.
enum Signals {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var handler: (@Sendable () -> Void)?

    static func install() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waited = set
        let waiter = Thread {
            var set = waited
            while true {
                var received: Int32 = 0
                guard sigwait(&set, &received) == 0 else { continue }
                if let handler = lock.withLock({ Signals.handler }) {
                    handler()
                } else {
                    // No command asked for a clean stop: end as the signal would have.
                    fflush(nil)
                    _exit(128 + received)
                }
            }
        }
        waiter.name = "signals"
        waiter.start()
    }

    /// Runs `handler` (once per signal) on SIGINT or SIGTERM instead of exiting at once.
    static func onTermination(_ handler: @escaping @Sendable () -> Void) {
        lock.withLock { Signals.handler = handler }
    }
}
