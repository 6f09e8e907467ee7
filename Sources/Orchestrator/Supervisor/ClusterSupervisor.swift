import ClusterNode
import Foundation
import Transport

/// One cluster: its node processes, first on consecutive ports; the cluster can grow
/// (new nodes on ports never used by it before) and shrink.
final class ManagedCluster: @unchecked Sendable {
    let id: String
    let settings: ClusterSettings
    /// The first members: every node, joined later or not, starts from this membership
    /// (the log then says what it is now), so that all replay the log alike.
    let initialPorts: [Int]
    let dataDirectory: String
    let createdAt = Date()
    private let lock = NSLock()
    private var current: [NodeProcess]
    private var used: Set<Int>
    /// Serializes resizes of this cluster.
    let resizeLock = NSLock()
    /// Talks to the cluster's nodes as a client: leader discovery and requests to the leader.
    private(set) var client: ClusterClient!

    init(id: String, settings: ClusterSettings, ports: [Int], dataDirectory: String, http: HTTPClient) {
        self.id = id
        self.settings = settings
        self.initialPorts = ports
        self.dataDirectory = dataDirectory
        self.current = ports.map { Self.process(port: $0, dataDirectory: dataDirectory) }
        self.used = Set(ports)
        self.client = ClusterClient(http: http, whyNoLeaderCanCome: { [unowned self] in whyNoLeaderCanCome }) { [unowned self] in self.ports }
    }

    static func process(port: Int, dataDirectory: String) -> NodeProcess {
        NodeProcess(port: port, dataDirectory: dataDirectory + "/node-\(port)", logPath: dataDirectory + "/node-\(port).log")
    }

    /// The nodes of the cluster now, by port.
    var nodes: [NodeProcess] { lock.withLock { current } }
    var ports: [Int] { nodes.map(\.port) }
    /// Why no leader can be elected now, when fewer than a majority of the cluster's nodes
    /// have a process running (a paused one cannot vote); nil when a majority runs.
    var whyNoLeaderCanCome: String? {
        let nodes = self.nodes
        let running = nodes.filter { $0.status == .running && $0.pid != nil }.count
        guard running <= nodes.count / 2 else { return nil }
        return "cluster \(id) has \(running) of \(nodes.count) nodes running, not a majority, so no leader can be elected "
            + "(start or resume nodes: POST /clusters/\(id)/nodes/PORT/start or .../resume)"
    }
    /// Every port this cluster has used: a removed node's port is never given to a new one
    /// (servers holding an old membership would take the newcomer's vote for the old node's).
    var usedPorts: Set<Int> { lock.withLock { used } }

    func add(_ node: NodeProcess) {
        lock.withLock {
            current.append(node)
            used.insert(node.port)
        }
    }

    func remove(_ node: NodeProcess) { lock.withLock { current.removeAll { $0 === node } } }

    func node(_ name: String) -> NodeProcess? {
        let port = NodeAddress(parsing: name)?.port
        return nodes.first { $0.port == port }
    }
}

/// Spawns, watches and stops the node processes of every cluster.
final class ClusterSupervisor: @unchecked Sendable {
    let executable: String
    let dataRoot: String
    let keepData: Bool
    private let lock = NSLock()
    private var clusters: [String: ManagedCluster] = [:]
    private var order: [String] = []
    private var reservedPorts: Set<Int> = []
    /// Node processes this orchestrator runs at most, over every cluster (experiments' too):
    /// one client must not be able to start processes until the machine gives out.
    var maxNodes = Int.max
    let client: HTTPClient
    /// This orchestrator's hold on its data root: a second orchestrator on the same folder
    /// is refused instead of deleting the first one's data.
    private let dataLock: DirectoryLock
    /// What this orchestrator did: clusters created and deleted, faults injected (also
    /// printed); appended across runs in the data root.
    let log: EventLog

    /// Takes the data root for this process; throws naming the PID of an orchestrator
    /// already using it.
    /// `echoesLog`: the log's lines are printed too (`serve` does; the benchmarks, whose
    /// standard output may be JSON, do not).
    init(executable: String, dataRoot: String, keepData: Bool, echoesLog: Bool = true) throws {
        self.executable = executable
        self.dataRoot = dataRoot
        self.keepData = keepData
        self.dataLock = try DirectoryLock(directory: dataRoot)
        self.log = try EventLog(path: dataRoot + "/orchestrator.log", takesStandardStreams: false, echoes: echoesLog)
        var configuration = HTTPClient.Configuration()
        configuration.connectTimeoutSeconds = 0.3
        configuration.requestTimeoutSeconds = 1
        self.client = HTTPClient(configuration: configuration)
    }

    var allClusters: [ManagedCluster] { lock.withLock { order.compactMap { clusters[$0] } } }
    /// The highest port any cluster has used (new nodes and clusters go above it).
    var highestUsedPort: Int? { allClusters.flatMap(\.usedPorts).max() }
    func cluster(_ id: String) -> ManagedCluster? { lock.withLock { clusters[id] } }

    /// The path of this very executable (so nodes run the same binary).
    static func currentExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// True when nothing listens on `port` and we may bind it.
    static func isPortFree(_ port: Int) -> Bool { HTTPServer.isPortFree(port: port) }

    /// Creates and starts a cluster on `basePort...` (or the next free run of ports after
    /// `searchFrom`), waiting until every node answers. Throws naming a taken port.
    func createCluster(id requestedID: String?, settings: ClusterSettings, basePort: Int?, searchFrom: Int) throws -> ManagedCluster {
        let (id, ports) = try lock.withLock { () throws -> (String, [Int]) in
            let id = requestedID ?? (0...).lazy.map(String.init).first { clusters[$0] == nil }!
            guard clusters[id] == nil else { throw SupervisorError.clusterExists(id) }
            let ports: [Int]
            if let basePort {
                ports = Array(basePort..<(basePort + settings.nodes))
                for port in ports where reservedPorts.contains(port) || !Self.isPortFree(port) {
                    throw SupervisorError.portTaken(port: port, cluster: id)
                }
            } else {
                var start = searchFrom
                while true {
                    let candidate = Array(start..<(start + settings.nodes))
                    guard candidate.last! <= 65_535 else { throw SupervisorError.noFreePorts("run of \(settings.nodes) ports") }
                    if let taken = candidate.first(where: { reservedPorts.contains($0) || !Self.isPortFree($0) }) {
                        start = taken + 1
                        continue
                    }
                    ports = candidate
                    break
                }
            }
            let running = clusters.values.reduce(0) { $0 + $1.nodes.count }
            guard running + ports.count <= maxNodes else { throw SupervisorError.tooManyNodes(running: running, asked: ports.count, limit: maxNodes) }
            reservedPorts.formUnion(ports)
            return (id, ports)
        }
        let directory = dataRoot + "/cluster-\(id)"
        do {
            if !keepData { try deleteData(at: directory) }  // a fresh run starts from fresh data
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            lock.withLock { reservedPorts.subtract(ports) }
            throw error
        }
        let cluster = ManagedCluster(id: id, settings: settings, ports: ports, dataDirectory: directory, http: client)
        lock.withLock {
            clusters[id] = cluster
            order.append(id)
        }
        do {
            for node in cluster.nodes { try start(node, in: cluster) }
            try waitUntilReady(cluster.nodes, seconds: 15)
        } catch {
            log.write("cluster \(id) failed to start: \(error)")
            removeCluster(id, deleteData: false)
            throw error
        }
        log.write("cluster \(id) created: nodes \(ports.map(String.init).joined(separator: ", ")) (pids \(cluster.nodes.map { $0.pid.map(String.init) ?? "-" }.joined(separator: ", "))), "
            + "heartbeat \(settings.heartbeatMs) ms, election timeout \(settings.electionTimeoutMs) ms, capacity \(settings.capacity), data in \(directory)")
        return cluster
    }

    func arguments(for node: NodeProcess, in cluster: ManagedCluster) -> [String] {
        let settings = cluster.settings
        var arguments = ["node", "--port", String(node.port), "--members", cluster.initialPorts.map(String.init).joined(separator: ","),
                         "--cluster", cluster.id, "--data-dir", node.dataDirectory, "--log", node.logPath]
        arguments += ["--heartbeat-ms", String(settings.heartbeatMs), "--election-timeout-ms", String(settings.electionTimeoutMs)]
        arguments += ["--capacity", String(settings.capacity), "--unhealthy-after-ms", String(settings.unhealthyAfterMs), "--watch-parent"]
        if let jitter = settings.electionJitterMs { arguments += ["--election-jitter-ms", String(jitter)] }
        if settings.preVote == false { arguments.append("--no-pre-vote") }
        if let tick = settings.tickUs { arguments += ["--tick-us", String(tick)] }
        if settings.fixedElectionTimeout == true { arguments.append("--fixed-election-timeout") }
        if settings.checkQuorum == false { arguments.append("--no-check-quorum") }
        if settings.fastFirstElection == false { arguments.append("--no-fast-first-election") }
        if let every = settings.snapshotEveryEntries {
            arguments += ["--snapshot-every", String(every), "--snapshot-trailing", String(max(1, every / 10))]
        }
        return arguments
    }

    func start(_ node: NodeProcess, in cluster: ManagedCluster) throws {
        try node.start(executable: executable, arguments: arguments(for: node, in: cluster))
    }

    /// Polls each node's `GET /` until it answers (no fixed sleeps). A node killed, stopped or
    /// paused through the API meanwhile is not waited for: the cluster is listed, and its
    /// nodes take faults, as soon as they start, and a fault asked for is not a failed start
    /// (a test that killed a one-node cluster's leader the moment it was elected made the
    /// orchestrator give up cluster 0 and exit). Only a node that exited by itself fails it.
    func waitUntilReady(_ nodes: [NodeProcess], seconds: Double) throws {
        let deadline = Date().addingTimeInterval(seconds)
        var waiting = nodes
        while !waiting.isEmpty {
            waiting.removeAll { node in
                [.killed, .stopped, .paused].contains(node.status)
                    || (try? client.get(host: "127.0.0.1", port: node.port, path: "/", timeoutSeconds: 0.2))?.status == .ok
            }
            if waiting.isEmpty { return }
            if let dead = waiting.first(where: { $0.pid == nil }) {
                let lastLine = (try? String(contentsOfFile: dead.logPath, encoding: .utf8))?.split(separator: "\n").last.map { String($0.suffix(300)) }
                throw SupervisorError.exitedDuringStart(port: dead.port, exitStatus: dead.lastExitStatus, log: dead.logPath, lastLine: lastLine)
            }
            guard Date() < deadline else {
                throw SupervisorError.didNotAnswer(ports: waiting.map(\.port), seconds: seconds, log: waiting[0].logPath)
            }
            usleep(10_000)
        }
    }

    /// Stops a cluster's nodes and forgets it (deleting its data when asked).
    func removeCluster(_ id: String, deleteData: Bool) {
        guard let cluster = lock.withLock({ clusters.removeValue(forKey: id) }) else { return }
        lock.withLock { order.removeAll { $0 == id } }
        stopNodes(cluster.nodes)
        lock.withLock { reservedPorts.subtract(cluster.usedPorts) }
        if deleteData { try? self.deleteData(at: cluster.dataDirectory) }  // best effort: the cluster is gone either way
    }

    /// Starts one more node for `cluster`, on a port no cluster uses and this one never used,
    /// with an empty data directory, and waits until it answers. It joins no membership by
    /// itself: the leader adds it.
    func addNode(to cluster: ManagedCluster) throws -> NodeProcess {
        let firstCandidate = (highestUsedPort ?? cluster.initialPorts[0]) + 1
        let port = try lock.withLock { () throws -> Int in
            let running = clusters.values.reduce(0) { $0 + $1.nodes.count }
            guard running + 1 <= maxNodes else { throw SupervisorError.tooManyNodes(running: running, asked: 1, limit: maxNodes) }
            var candidate = firstCandidate
            while reservedPorts.contains(candidate) || !Self.isPortFree(candidate) {
                candidate += 1
                guard candidate <= 65_535 else { throw SupervisorError.noFreePorts("port for a new node of cluster \(cluster.id)") }
            }
            reservedPorts.insert(candidate)
            return candidate
        }
        let node = ManagedCluster.process(port: port, dataDirectory: cluster.dataDirectory)
        do {
            try deleteData(at: node.dataDirectory)  // a new member starts empty
        } catch {
            lock.withLock { _ = reservedPorts.remove(port) }
            throw error
        }
        cluster.add(node)
        try start(node, in: cluster)
        try waitUntilReady([node], seconds: 15)
        return node
    }

    /// Stops a node that left its cluster's membership and deletes its data; its port stays
    /// reserved for the cluster's lifetime.
    func retire(_ node: NodeProcess, from cluster: ManagedCluster) {
        cluster.remove(node)
        node.terminate()
        try? deleteData(at: node.dataDirectory)  // best effort: the node is out of the cluster either way
    }

    /// Deletes a data directory unless a live process holds it (or anything in it): a
    /// directory in use is never deleted under its owner. Throws 409 naming the holder.
    func deleteData(at path: String) throws(SupervisorError) {
        if let (directory, pid) = DirectoryLock.heldDirectories(under: path).first {
            throw .directoryInUse(directory: directory, pid: pid)
        }
        guard FileManager.default.fileExists(atPath: path) else { return }
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw .cannotDelete(path: path, reason: error.localizedDescription)
        }
    }

    /// Stops every node of every cluster (on exit).
    func stopAll() {
        stopNodes(allClusters.flatMap(\.nodes))
    }

    private func stopNodes(_ nodes: [NodeProcess]) {
        let group = DispatchGroup()
        for node in nodes {
            group.enter()
            Thread {
                node.terminate()
                group.leave()
            }.start()
        }
        group.wait()
    }
}
