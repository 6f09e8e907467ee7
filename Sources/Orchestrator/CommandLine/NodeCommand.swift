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
                                 [--log FILE] [--no-fsync] [--no-pre-vote] [--no-check-quorum] [--no-fast-first-election] [--watch-parent]
                                 [--tick-us 10000] [--fixed-election-timeout]
          --members       the cluster's first members, the same for every node; a node not among
                          them starts as an outsider and waits for the leader to add it
          --snapshot-every  snapshot the state machine every N applied entries, keeping
                          --snapshot-trailing entries before it in the log
          --log FILE      append timestamped events (elections, leaders, membership, snapshots, links,
                          faults, fatal errors) and everything printed to FILE, rotated at 8 MiB
                          (FILE.1 and FILE.2 kept); without it they go to standard output
          --watch-parent  exit when standard input closes (the orchestrator that spawned us is gone)
        """

    /// The node's configuration from its flags, each checked against `ClusterLimits`.
    private static func configuration(from arguments: CommandLineArguments) throws -> NodeConfiguration {
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
        configuration.heartbeatMilliseconds = try arguments.integer("heartbeat-ms", default: 50, in: ClusterLimits.heartbeatMilliseconds)
        configuration.electionTimeoutMilliseconds = try arguments.integer("election-timeout-ms", default: 500, in: ClusterLimits.electionTimeoutMilliseconds)
        configuration.capacity = try arguments.integer("capacity", default: 100, in: ClusterLimits.capacity)
        configuration.snapshotEveryEntries = try arguments.integer("snapshot-every", default: 10_000, in: ClusterLimits.snapshotEveryEntries)
        configuration.snapshotTrailingEntries = try arguments.integer("snapshot-trailing", default: 1_000, in: ClusterLimits.snapshotTrailingEntries)
        configuration.commitTimeoutSeconds = Double(try arguments.integer("commit-timeout-ms", default: 5_000, in: ClusterLimits.commitTimeoutMilliseconds)) / 1_000
        configuration.isFsyncEnabled = !arguments.has("no-fsync")
        configuration.isPreVoteEnabled = !arguments.has("no-pre-vote")
        configuration.tickMicroseconds = try arguments.integer("tick-us", default: 10_000, in: ClusterLimits.tickMicroseconds)
        configuration.allowsFixedElectionTimeout = arguments.has("fixed-election-timeout")
        configuration.isCheckQuorumEnabled = !arguments.has("no-check-quorum")
        configuration.isFastFirstElectionEnabled = !arguments.has("no-fast-first-election")
        if arguments.options["election-jitter-ms"] != nil {
            configuration.electionJitterMilliseconds = try arguments.integer("election-jitter-ms", default: 0, in: ClusterLimits.electionJitterMilliseconds)
        }
        configuration.unhealthyAfterSeconds = Double(try arguments.integer("unhealthy-after-ms", default: 3_000, in: ClusterLimits.unhealthyAfterMilliseconds)) / 1_000
        guard configuration.electionTimeoutMilliseconds > configuration.heartbeatMilliseconds else {
            throw CommandLineArguments.Problem(description: "--election-timeout-ms must exceed --heartbeat-ms")
        }
        return configuration
    }

    static func run(_ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(
            words, options: ["port", "members", "data-dir", "cluster", "tick-us", "heartbeat-ms", "election-timeout-ms", "capacity", "commit-timeout-ms", "unhealthy-after-ms", "election-jitter-ms", "host", "snapshot-every", "snapshot-trailing", "log"],
            flags: ["no-fsync", "no-pre-vote", "no-check-quorum", "no-fast-first-election", "fixed-election-timeout", "watch-parent", "help"])
        if arguments.has("help") {
            print(usage)
            return 0
        }
        let configuration = try Self.configuration(from: arguments)
        let port = configuration.port
        let dataDirectory = configuration.dataDirectory
        let memberText = configuration.members.map(String.init).joined(separator: ",")

        let log: EventLog
        do {
            log = try arguments.options["log"].map { try EventLog(path: $0) } ?? EventLog()
        } catch {
            FileHandle.standardError.write(Data("node \(port): \(error.localizedDescription)\n".utf8))
            return 1
        }
        log.write("node \(port) of cluster \(configuration.clusterID) starting, pid \(getpid()), data in \(dataDirectory), members \(memberText)")
        let node: Node
        do {
            node = try Node(configuration: configuration, log: log)
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
        server.onConnectionClosed { connection in node.connectionClosed(connection) }
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
