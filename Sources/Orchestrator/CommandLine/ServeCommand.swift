import ClusterNode
import Foundation
import Transport

/// `orchestrator` (or `orchestrator serve`): the REST API on 127.0.0.1:8000 and cluster `0`.
enum ServeCommand {
    static let usage = """
        usage: orchestrator [serve] [--config FILE] [--port 8000] [--nodes 5] [--heartbeat-ms 50]
                            [--election-timeout-ms 500] [--capacity 100] [--unhealthy-after-ms 3000]
                            [--snapshot-every 10000] [--data-dir data] [--keep-data] [--host 127.0.0.1]
                            [--desired-state Config/services.json] [--max-nodes 200]
          Serves the orchestrator API and starts cluster 0 with its nodes on the ports after --port.
          Settings come from Config/orchestrator.json (or --config), then these flags.
          A run starts from fresh data unless --keep-data (or "keepData": true) is given.
          --desired-state names a file of vital services that every cluster started keeps running.
          --max-nodes bounds the node processes of all clusters together (POST /clusters and
          resizes beyond it answer 409).
          --watch-parent stops everything when standard input closes (for scripts and tests).
        """

    struct Settings: Codable {
        var host = "127.0.0.1"
        var port = 8000
        var nodes = 5
        var heartbeatMs = 50
        var electionTimeoutMs = 500
        var capacity = 100
        var unhealthyAfterMs = 3_000
        /// Each node snapshots its state machine every this many applied entries (10,000 when absent).
        var snapshotEveryEntries: Int? = nil
        var dataDirectory = "data"
        var keepData = false
        /// A desired-state file (vital services) for every cluster started.
        var desiredStateFile: String? = nil
        /// Node processes of all clusters together, at most.
        var maxNodes: Int? = nil
        static let defaultMaxNodes = 200
    }

    /// The settings: `Config/orchestrator.json` (or `--config`), then the flags over it.
    private static func settings(from arguments: CommandLineArguments, configPath: String) throws -> Settings {
        var settings = Settings()
        if FileManager.default.fileExists(atPath: configPath) {
            do {
                let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: configPath)))
                settings = try JSONBody.decodeStrictly(Settings.self, from: bytes)
            } catch let error as HTTPError {
                throw CommandLineArguments.Problem(description: "config \(configPath): \(error.message)")
            }
        } else if arguments.options["config"] != nil {
            throw CommandLineArguments.Problem(description: "config file \(configPath) not found")
        }
        settings.port = try arguments.integer("port", default: settings.port, in: 1...65_000)
        settings.nodes = try arguments.integer("nodes", default: settings.nodes, in: ClusterLimits.nodes)
        settings.heartbeatMs = try arguments.integer("heartbeat-ms", default: settings.heartbeatMs, in: ClusterLimits.heartbeatMilliseconds)
        settings.electionTimeoutMs = try arguments.integer("election-timeout-ms", default: settings.electionTimeoutMs, in: ClusterLimits.electionTimeoutMilliseconds)
        settings.capacity = try arguments.integer("capacity", default: settings.capacity, in: ClusterLimits.capacity)
        settings.unhealthyAfterMs = try arguments.integer("unhealthy-after-ms", default: settings.unhealthyAfterMs, in: ClusterLimits.unhealthyAfterMilliseconds)
        settings.snapshotEveryEntries = try arguments.integer("snapshot-every", default: settings.snapshotEveryEntries ?? 10_000, in: ClusterLimits.snapshotEveryEntries)
        settings.dataDirectory = arguments.options["data-dir"] ?? settings.dataDirectory
        settings.host = arguments.options["host"] ?? settings.host
        settings.keepData = settings.keepData || arguments.has("keep-data")
        settings.desiredStateFile = arguments.options["desired-state"] ?? settings.desiredStateFile
        settings.maxNodes = try arguments.integer("max-nodes", default: settings.maxNodes ?? Settings.defaultMaxNodes, in: 1...2_000)
        return settings
    }

    static func run(_ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(
            words, options: ["config", "port", "nodes", "heartbeat-ms", "election-timeout-ms", "capacity", "unhealthy-after-ms", "data-dir", "host", "snapshot-every",
                              "desired-state", "max-nodes"],
            flags: ["keep-data", "watch-parent", "help"])
        if arguments.has("help") {
            print(usage)
            return 0
        }
        let configPath = arguments.options["config"] ?? "Config/orchestrator.json"
        let settings = try Self.settings(from: arguments, configPath: configPath)
        let dataRoot = URL(fileURLWithPath: settings.dataDirectory).standardizedFileURL.path

        let started = Date()
        let supervisor: ClusterSupervisor
        do {
            supervisor = try ClusterSupervisor(executable: ClusterSupervisor.currentExecutable(), dataRoot: dataRoot, keepData: settings.keepData)
        } catch {
            FileHandle.standardError.write(Data("orchestrator: \((error as? DirectoryLock.Refused)?.description ?? error.localizedDescription)\n".utf8))
            return 1
        }
        supervisor.maxNodes = settings.maxNodes ?? Settings.defaultMaxNodes
        var defaults = ClusterSettings(nodes: settings.nodes, heartbeatMs: settings.heartbeatMs, electionTimeoutMs: settings.electionTimeoutMs,
                                       capacity: settings.capacity, unhealthyAfterMs: settings.unhealthyAfterMs)
        defaults.snapshotEveryEntries = settings.snapshotEveryEntries
        do {
            try defaults.validate()  // a config file's values too, by the API's rules
        } catch {
            throw CommandLineArguments.Problem(description: "\(configPath): \(error.description)")
        }
        var api = OrchestratorAPI(supervisor: supervisor, defaults: defaults, searchFrom: settings.port + 1)
        if let path = settings.desiredStateFile {
            guard let data = FileManager.default.contents(atPath: path) else { throw CommandLineArguments.Problem(description: "desired-state file \(path) cannot be read") }
            do {
                try DesiredState.check(Array(data))
            } catch {
                throw CommandLineArguments.Problem(description: "desired-state file \(path): \(error.httpError.message)")
            }
            api.desiredState = Array(data)
        }
        EventWatcher(hub: api.events, supervisor: supervisor).start()
        let limits = ServerLimits()  // 2,048 connections, 1,024 per client address, 1 MiB bodies
        let server = HTTPServer(host: settings.host, port: settings.port, limits: limits, router: api.router())
        do {
            try server.start()
        } catch {
            FileHandle.standardError.write(Data("orchestrator: cannot serve on \(settings.host):\(settings.port): port \(settings.port) is taken or unusable (\(error))\n".utf8))
            return 1
        }
        let shutdown: @Sendable () -> Void = {
            print("orchestrator: stopping every node")
            fflush(nil)
            server.stop(graceSeconds: 1)
            supervisor.stopAll()
            fflush(nil)
            _exit(0)
        }
        Signals.onTermination(shutdown)
        if arguments.has("watch-parent") {
            // For tests and scripts: when whoever started us goes away, stop the nodes too.
            ParentWatch.onStandardInputClosed(shutdown)
        }
        print("orchestrator API on http://\(settings.host):\(settings.port) (pid \(getpid()))")
        fflush(nil)
        let cluster: ManagedCluster
        do {
            cluster = try supervisor.createCluster(id: "0", settings: defaults, basePort: settings.port + 1, searchFrom: settings.port + 1)
        } catch {
            FileHandle.standardError.write(Data("orchestrator: cannot start cluster 0: \((error as? HTTPError)?.message ?? (error as? SupervisorError)?.description ?? "\(error)")\n".utf8))
            server.stop(graceSeconds: 0)
            return 1
        }
        for node in cluster.nodes {
            print("  node localhost:\(node.port) pid \(node.pid.map(String.init) ?? "-"): data \(node.dataDirectory), log \(node.logPath)")
        }
        fflush(nil)
        if let (leader, term) = cluster.client.waitForLeader(timeoutSeconds: 10) {
            print("cluster 0 ready: leader \(NodeAddress(port: leader)) (term \(term)) elected \(String(format: "%.2f", Date().timeIntervalSince(started))) s after start")
        } else {
            print("cluster 0: no leader yet after 10 s; see the node logs above")
        }
        if let desired = api.desiredState {
            do {
                try api.applyDesiredState(desired, to: cluster)
                print("cluster 0: desired state from \(settings.desiredStateFile ?? "") committed; its vital services are kept running")
            } catch {
                print("cluster 0: desired state not committed: \(error)")
            }
        }
        fflush(nil)
        while true { sleep(3_600) }
    }
}
