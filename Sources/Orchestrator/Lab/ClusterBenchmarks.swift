import ClusterNode
import Foundation
import Transport

/// `orchestrator bench failover|commit|scale`: clusters of real node processes (release
/// builds), measured from outside over HTTP like any client.
final class ClusterBenchmarks: @unchecked Sendable {
    let supervisor: ClusterSupervisor
    let client: HTTPClient
    let dataRoot: String
    private var nextPort: Int

    init() throws {
        dataRoot = NSTemporaryDirectory() + "orchestrator-bench-" + UUID().uuidString
        supervisor = try ClusterSupervisor(executable: ClusterSupervisor.currentExecutable(), dataRoot: dataRoot, keepData: false, echoesLog: false)
        var configuration = HTTPClient.Configuration()
        configuration.maxConnectionsPerHost = 256
        configuration.requestTimeoutSeconds = 10
        client = HTTPClient(configuration: configuration)
        nextPort = HTTPServer.listeningPortRange.lowerBound + Int.random(in: 0..<(HTTPServer.listeningPortRange.count / 2))
    }

    deinit { finish() }

    /// Stops every node and removes the data.
    func finish() {
        supervisor.stopAll()
        try? FileManager.default.removeItem(atPath: dataRoot)  // best effort: a temporary directory
    }

    static func progress(_ text: String) {
        FileHandle.standardError.write(Data(("  " + text + "\n").utf8))
    }

    /// Starts a cluster and returns it with the seconds from spawning to its first leader.
    func startCluster(nodes: Int, id: String, heartbeatMs: Int = 50, electionTimeoutMs: Int = 500, jitterMs: Int? = nil) throws -> (ManagedCluster, Double) {
        let started = Date()
        var settings = ClusterSettings(nodes: nodes, heartbeatMs: heartbeatMs, electionTimeoutMs: electionTimeoutMs, capacity: 1_000_000, unhealthyAfterMs: 3_600_000)
        settings.electionJitterMs = jitterMs
        let cluster = try supervisor.createCluster(id: id, settings: settings, basePort: nil, searchFrom: nextPort)
        nextPort = cluster.ports.last! + 1
        guard try leader(of: cluster, timeout: 10) != nil else { throw LabError("cluster \(id) elected no leader in 10 s") }
        return (cluster, Date().timeIntervalSince(started))
    }

    /// Starts a local etcd of `nodes` members (heartbeat H, election timeout 10 H, like ours)
    /// and returns it with its leader and the seconds from spawning to that leader.
    func startEtcd(nodes: Int, heartbeatMs: Int = 50) throws -> (EtcdCluster, leader: Int, seconds: Double) {
        let started = Date()
        let etcd = try EtcdCluster(nodes: nodes, heartbeatMs: heartbeatMs, electionTimeoutMs: 10 * heartbeatMs, client: client, searchFrom: nextPort)
        nextPort = etcd.lastPort + 1
        guard let (leader, _) = etcd.leader(excluding: nil, newerThan: 0, timeout: 20) else { throw LabError("etcd elected no leader in 20 s") }
        return (etcd, leader, Date().timeIntervalSince(started))
    }

    /// Writes to `leader` until one commits; the seconds since `started`.
    func firstWrite(_ subject: some FailoverSubject, to leader: Int, since started: Date) throws -> Double {
        while !subject.write(to: leader, timeout: 1) {
            guard Date().timeIntervalSince(started) < 20 else { throw LabError("\(subject.name): no first write within 20 s") }
        }
        return Date().timeIntervalSince(started)
    }

    /// The node that reports itself leader in the highest term, polled until `timeout`.
    func leader(of cluster: ManagedCluster, excluding excluded: Int? = nil, newerThan term: UInt64 = 0, timeout: Double) throws -> (port: Int, term: UInt64)? {
        cluster.client.waitForLeader(excluding: excluded, newerThan: term, timeoutSeconds: timeout, askTimeoutSeconds: 0.05, pollSeconds: 0.001)
    }

    private var requestNumber = 0
    private let requestLock = NSLock()

    /// One service creation sent straight to `port`; returns true on 201.
    func write(to port: Int, timeout: Double = 2) -> Bool {
        let number = requestLock.withLock { () -> Int in
            requestNumber += 1
            return requestNumber
        }
        let body = #"{"container": {"id": \#(number), "replicas": 1}, "requestId": "bench-\#(number)-\#(RandomID.uuidString())"}"#
        guard let response = try? client.postJSON(host: "127.0.0.1", port: port, path: "/service", body: Array(body.utf8), timeoutSeconds: timeout) else { return false }
        return response.status == .created
    }

    // MARK: - Failover

    /// What a failover round needs of a cluster, ours or etcd's; members are named by an Int.
    protocol FailoverSubject {
        var name: String { get }
        func leader(excluding: Int?, newerThan: UInt64, timeout: Double) -> (member: Int, term: UInt64)?
        func write(to member: Int, timeout: Double) -> Bool
        func fault(_ member: Int, kind: String)
        func recover(_ member: Int, kind: String) throws
    }

    struct FailoverRow: Codable {
        var nodes: Int
        var rounds: Int
        var startToLeaderSeconds: Double
        var electionMilliseconds: Summary
        var writeMilliseconds: Summary

        init(nodes: Int, startToLeaderSeconds: Double, rounds results: [(elected: Double, written: Double)]) {
            self.nodes = nodes
            rounds = results.count
            self.startToLeaderSeconds = startToLeaderSeconds
            electionMilliseconds = Summary(results.map(\.elected))
            writeMilliseconds = Summary(results.map(\.written))
        }
    }

    struct Summary: Codable {
        var median: Double
        var p90: Double
        var p99: Double
        var max: Double

        init(_ values: [Double]) {
            let sorted = values.sorted()
            median = percentile(sorted, 0.5)
            p90 = percentile(sorted, 0.9)
            p99 = percentile(sorted, 0.99)
            max = sorted.last ?? 0
        }
    }

    /// `fault`: kill (-9; the node's sockets close, so survivors hear of it) or pause (SIGSTOP;
    /// nothing closes, so only the election timeout tells). The node is restarted or resumed
    /// after each round.
    func failover(nodes: Int, rounds: Int, jitterMs: Int?, fault: String = "kill") throws -> FailoverRow {
        let (cluster, startup) = try startCluster(nodes: nodes, id: "failover-\(nodes)", jitterMs: jitterMs)
        Self.progress("\(nodes) nodes: first leader \(String(format: "%.2f", startup)) s after spawning")
        let subject = OurCluster(benchmarks: self, cluster: cluster)
        var results: [(elected: Double, written: Double)] = []
        for round in 1...rounds {
            results.append(try failoverRound(subject, fault: fault, round: round))
            Self.progress("\(nodes) nodes, round \(round)/\(rounds): leader elected after \(Int(results.last!.elected)) ms, write committed after \(Int(results.last!.written)) ms")
        }
        supervisor.removeCluster(cluster.id, deleteData: true)
        return FailoverRow(nodes: nodes, startToLeaderSeconds: startup, rounds: results)
    }

    /// The same rounds against ours and a local etcd of the same size, H and T, alternated
    /// round by round in one run (both clusters run throughout).
    func failoverAgainstEtcd(nodes: Int, rounds: Int, fault: String) throws -> (ours: FailoverRow, etcd: FailoverRow) {
        let (cluster, startup) = try startCluster(nodes: nodes, id: "failover-\(nodes)")
        let (etcd, _, etcdStartup) = try startEtcd(nodes: nodes)
        defer { etcd.finish() }
        let ours = OurCluster(benchmarks: self, cluster: cluster)
        var ourResults: [(elected: Double, written: Double)] = [], etcdResults: [(elected: Double, written: Double)] = []
        for round in 1...rounds {
            ourResults.append(try failoverRound(ours, fault: fault, round: round))
            etcdResults.append(try failoverRound(etcd, fault: fault, round: round))
            Self.progress("\(nodes) nodes, round \(round)/\(rounds): elected ours \(Int(ourResults.last!.elected)) ms, etcd \(Int(etcdResults.last!.elected)) ms; "
                          + "write ours \(Int(ourResults.last!.written)) ms, etcd \(Int(etcdResults.last!.written)) ms")
        }
        supervisor.removeCluster(cluster.id, deleteData: true)
        return (FailoverRow(nodes: nodes, startToLeaderSeconds: startup, rounds: ourResults),
                FailoverRow(nodes: nodes, startToLeaderSeconds: etcdStartup, rounds: etcdResults))
    }

    /// One round: a write through the current leader, a random phase against the heartbeat
    /// (so the fault does not always land right after one), the fault, then the milliseconds
    /// until another member reports itself leader in a newer term and until a write commits
    /// again; the member is restarted (resumed) before returning.
    func failoverRound(_ subject: some FailoverSubject, fault: String, round: Int) throws -> (elected: Double, written: Double) {
        guard let (oldLeader, oldTerm) = subject.leader(excluding: nil, newerThan: 0, timeout: 10) else { throw LabError("\(subject.name): no leader before round \(round)") }
        guard subject.write(to: oldLeader, timeout: 5) else { throw LabError("\(subject.name): no write before round \(round)") }
        usleep(UInt32(100_000 + Int.random(in: 0..<50_000)))
        subject.fault(oldLeader, kind: fault)
        let faultAt = Date()
        guard let (newLeader, _) = subject.leader(excluding: oldLeader, newerThan: oldTerm, timeout: 10) else {
            throw LabError("\(subject.name): no new leader within 10 s in round \(round)")
        }
        let elected = Date().timeIntervalSince(faultAt) * 1_000
        var target = newLeader
        while !subject.write(to: target, timeout: 1) {
            if let (current, _) = subject.leader(excluding: oldLeader, newerThan: 0, timeout: 1) { target = current }
            guard Date().timeIntervalSince(faultAt) < 20 else { throw LabError("\(subject.name): no write within 20 s in round \(round)") }
        }
        let written = Date().timeIntervalSince(faultAt) * 1_000
        try subject.recover(oldLeader, kind: fault)
        return (elected, written)
    }

    /// Our cluster as a failover subject: members are ports; the experiments' fault driver
    /// kills (pauses) and restarts (resumes) the leader, recording each fault.
    struct OurCluster: FailoverSubject {
        let benchmarks: ClusterBenchmarks
        let cluster: ManagedCluster
        let driver: FaultDriver
        var name: String { "ours" }

        init(benchmarks: ClusterBenchmarks, cluster: ManagedCluster) {
            self.benchmarks = benchmarks
            self.cluster = cluster
            driver = FaultDriver(name: cluster.id, nodes: LocalNodes(cluster: cluster, supervisor: benchmarks.supervisor), http: benchmarks.client, recorder: HistoryRecorder())
        }

        func leader(excluding excluded: Int?, newerThan term: UInt64, timeout: Double) -> (member: Int, term: UInt64)? {
            (try? benchmarks.leader(of: cluster, excluding: excluded, newerThan: term, timeout: timeout)).flatMap { $0 }.map { ($0.port, $0.term) }
        }

        func write(to member: Int, timeout: Double) -> Bool { benchmarks.write(to: member, timeout: timeout) }

        func fault(_ member: Int, kind: String) {
            driver.apply(ExperimentPlan.Fault(at: 0, action: kind, node: cluster.ports.firstIndex(of: member)))
        }

        func recover(_ member: Int, kind: String) throws {
            driver.apply(ExperimentPlan.Fault(at: 0, action: kind == "kill" ? "restart" : "resume"))
            guard cluster.nodes.first(where: { $0.port == member })?.status == .running else { throw LabError("node \(member) did not restart") }
        }
    }

    // MARK: - First leader

    struct FirstLeaderRow: Codable {
        var system: String
        var nodes: Int
        var rounds: Int
        var leaderSeconds: Summary
        var firstWriteSeconds: Summary
    }

    /// Fresh clusters, spawned one after another: the seconds from spawning to the first
    /// leader known and to the first write committed; with `etcd`, a fresh etcd of the same
    /// size after each of ours.
    func firstLeader(nodes: Int, rounds: Int, etcd compareWithEtcd: Bool) throws -> [FirstLeaderRow] {
        var ours: [(leader: Double, write: Double)] = [], etcd: [(leader: Double, write: Double)] = []
        for round in 1...rounds {
            let started = Date()
            let (cluster, elected) = try startCluster(nodes: nodes, id: "first-leader-\(round)")
            let subject = OurCluster(benchmarks: self, cluster: cluster)
            guard let (leader, _) = subject.leader(excluding: nil, newerThan: 0, timeout: 10) else { throw LabError("ours: no leader") }
            ours.append((elected, try firstWrite(subject, to: leader, since: started)))
            supervisor.removeCluster(cluster.id, deleteData: true)
            var line = "round \(round)/\(rounds): ours leader \(String(format: "%.3f", elected)) s, first write \(String(format: "%.3f", ours.last!.write)) s"
            if compareWithEtcd {
                let etcdStarted = Date()
                let (cluster, leader, etcdElected) = try startEtcd(nodes: nodes)
                defer { cluster.finish() }
                etcd.append((etcdElected, try firstWrite(cluster, to: leader, since: etcdStarted)))
                line += "; etcd leader \(String(format: "%.3f", etcdElected)) s, first write \(String(format: "%.3f", etcd.last!.write)) s"
            }
            Self.progress(line)
        }
        func row(_ system: String, _ values: [(leader: Double, write: Double)]) -> FirstLeaderRow {
            FirstLeaderRow(system: system, nodes: nodes, rounds: rounds, leaderSeconds: Summary(values.map(\.leader)), firstWriteSeconds: Summary(values.map(\.write)))
        }
        return compareWithEtcd ? [row("ours", ours), row("etcd", etcd)] : [row("ours", ours)]
    }

    // MARK: - Commit latency and throughput

    struct CommitRow: Codable {
        var nodes: Int
        var clients: Int
        var commitsPerSecond: Double
        var p50Milliseconds: Double
        var p99Milliseconds: Double
        var maxMilliseconds: Double
        var errors: Int
    }

    private final class Samples: @unchecked Sendable {
        let lock = NSLock()
        var latencies: [Double] = []
        var errors = 0
    }

    /// `clients` threads writing to the leader for `seconds`; latency of each 201.
    func measureCommits(cluster: ManagedCluster, clients: Int, seconds: Double) throws -> CommitRow {
        guard let (leader, _) = try leader(of: cluster, timeout: 10) else { throw LabError("no leader") }
        let samples = Samples()
        let deadline = Date().addingTimeInterval(seconds)
        let group = DispatchGroup()
        let started = Date()
        for _ in 0..<clients {
            group.enter()
            let thread = Thread { [self] in
                var latencies: [Double] = []
                var errors = 0
                while Date() < deadline {
                    let before = DispatchTime.now().uptimeNanoseconds
                    if write(to: leader, timeout: 5) {
                        latencies.append(Double(DispatchTime.now().uptimeNanoseconds - before) / 1e6)
                    } else {
                        errors += 1
                    }
                }
                samples.lock.withLock {
                    samples.latencies += latencies
                    samples.errors += errors
                }
                group.leave()
            }
            thread.stackSize = 512 * 1024
            thread.start()
        }
        group.wait()
        let elapsed = Date().timeIntervalSince(started)
        let sorted = samples.latencies.sorted()
        return CommitRow(nodes: cluster.nodes.count, clients: clients, commitsPerSecond: Double(sorted.count) / elapsed,
                         p50Milliseconds: percentile(sorted, 0.5), p99Milliseconds: percentile(sorted, 0.99),
                         maxMilliseconds: sorted.last ?? 0, errors: samples.errors)
    }

    // MARK: - Scale

    struct ScaleRow: Codable {
        var clusters: Int
        var nodesPerCluster: Int
        var idleSeconds: Double
        var totalCPUPercentOfOneCore: Double
        var cpuPercentPerNode: Double
        var residentMBPerNode: Summary
        /// Proportional set size: shared library pages divided among the processes sharing them.
        var proportionalMBPerNode: Summary
        /// Memory that is this node's alone (anonymous, private dirty): what each added node costs.
        var privateMBPerNode: Summary
        var electionsWhileIdle: Int
        var commitP50ByClusters: [String: Double]
    }

    /// CPU seconds (user + system) a process has used, from /proc.
    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident memory in MB, from /proc.
    static func residentMB(_ pid: Int32) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kilobytes / 1_024
    }

    /// A field of /proc/PID/smaps_rollup in MB (`Pss`, `Private_Dirty`, ...).
    static func smapsMB(_ pid: Int32, _ field: String) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
              let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kilobytes / 1_024
    }

    private func electionCount(_ clusters: [ManagedCluster]) -> Int {
        clusters.flatMap(\.nodes).reduce(0) { total, node in
            guard let response = try? client.get(host: "127.0.0.1", port: node.port, path: "/stats", timeoutSeconds: 2),
                  let stats = try? JSONBody.decode(NodeStats.self, from: response.body)
            else { return total }
            return total + (stats.counters["elections"] ?? 0) + (stats.counters["preVotes"] ?? 0)
        }
    }

    func scale(clusters count: Int, nodes: Int, heartbeatMs: Int, idleSeconds: Double) throws -> ScaleRow {
        var clusters: [ManagedCluster] = []
        var latencyByClusters: [String: Double] = [:]
        let checkpoints = Set([1, 5, 10, count].filter { $0 <= count })
        for number in 0..<count {
            let (cluster, _) = try startCluster(nodes: nodes, id: "scale-\(number)", heartbeatMs: heartbeatMs, electionTimeoutMs: 10 * heartbeatMs)
            clusters.append(cluster)
            if checkpoints.contains(clusters.count) {
                usleep(500_000)
                let row = try measureCommits(cluster: clusters[0], clients: 1, seconds: 2)
                latencyByClusters[String(clusters.count)] = row.p50Milliseconds
                Self.progress("\(clusters.count) clusters running: commit p50 in cluster 0 \(String(format: "%.2f", row.p50Milliseconds)) ms")
            }
        }
        Self.progress("\(count * nodes) node processes running; idle for \(Int(idleSeconds)) s")
        usleep(1_000_000)
        let pids = clusters.flatMap(\.nodes).compactMap(\.pid)
        let electionsBefore = electionCount(clusters)
        let cpuBefore = pids.map { Self.cpuSeconds($0) ?? 0 }
        let started = Date()
        usleep(UInt32(idleSeconds * 1_000_000))
        let elapsed = Date().timeIntervalSince(started)
        let cpuAfter = pids.map { Self.cpuSeconds($0) ?? 0 }
        let electionsAfter = electionCount(clusters)
        let used = zip(cpuBefore, cpuAfter).reduce(0) { $0 + ($1.1 - $1.0) }
        let memory = pids.compactMap(Self.residentMB)
        return ScaleRow(clusters: count, nodesPerCluster: nodes, idleSeconds: elapsed, totalCPUPercentOfOneCore: used / elapsed * 100,
                        cpuPercentPerNode: used / elapsed * 100 / Double(max(pids.count, 1)), residentMBPerNode: Summary(memory),
                        proportionalMBPerNode: Summary(pids.compactMap { Self.smapsMB($0, "Pss") }),
                        privateMBPerNode: Summary(pids.compactMap { Self.smapsMB($0, "Private_Dirty") }),
                        electionsWhileIdle: electionsAfter - electionsBefore, commitP50ByClusters: latencyByClusters)
    }

    /// The same idle measurement for etcd: `count` local etcd clusters of `nodes` members
    /// (heartbeat H, election timeout 10 H, as ours), each elected; CPU per member while idle,
    /// in percent of one core.
    func etcdIdleCPU(clusters count: Int, nodes: Int, heartbeatMs: Int, idleSeconds: Double) throws -> Double {
        var clusters: [EtcdCluster] = []
        defer { for cluster in clusters { cluster.finish() } }
        for _ in 0..<count { clusters.append(try startEtcd(nodes: nodes, heartbeatMs: heartbeatMs).0) }
        Self.progress("\(count * nodes) etcd members running; idle for \(Int(idleSeconds)) s")
        usleep(1_000_000)
        let pids = clusters.flatMap(\.members).compactMap { $0.process?.processIdentifier }
        let before = pids.map { Self.cpuSeconds($0) ?? 0 }
        let started = Date()
        usleep(UInt32(idleSeconds * 1_000_000))
        let elapsed = Date().timeIntervalSince(started)
        let used = zip(before, pids.map { Self.cpuSeconds($0) ?? 0 }).reduce(0) { $0 + ($1.1 - $1.0) }
        return used / elapsed * 100 / Double(max(pids.count, 1))
    }
}

/// The value at `fraction` (0...1) of sorted `values` (nearest rank), 0 when there are none.
func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
}
