import ClusterNode
import Foundation
import Raft
import Transport

/// Runs an experiment: starts every cluster at once, gives each the same workload and the
/// same faults at the same offsets, records the history, heals, checks, and writes the report.
final class ExperimentRunner: @unchecked Sendable {
    /// Progress, for `GET /experiments/:id` and stderr.
    struct Progress: Codable, Sendable {
        var state: String  // starting, running, healing, checking, reporting, finished, cancelled, failed
        var repetition: Int
        var elapsedSeconds: Double
        var totalSeconds: Double
        var currentFault: String?
        var operations: Int
        var reportDirectory: String
        var verdict: String?
        var error: String?
    }

    let plan: ExperimentPlan
    let supervisor: ClusterSupervisor
    let outputDirectory: String
    let searchFrom: Int
    private let say: @Sendable (String) -> Void
    private let lock = NSLock()
    private var progress: Progress
    private var isCancelled = false
    private let http: HTTPClient

    init(plan: ExperimentPlan, supervisor: ClusterSupervisor, outputDirectory: String, searchFrom: Int, say: @escaping @Sendable (String) -> Void) {
        self.plan = plan
        self.supervisor = supervisor
        self.outputDirectory = outputDirectory
        self.searchFrom = searchFrom
        self.say = say
        progress = Progress(state: "starting", repetition: 1, elapsedSeconds: 0, totalSeconds: plan.seconds, currentFault: nil, operations: 0,
                            reportDirectory: outputDirectory)
        var configuration = HTTPClient.Configuration()
        configuration.requestTimeoutSeconds = 10
        configuration.maxConnectionsPerHost = 64
        http = HTTPClient(configuration: configuration)
    }

    var currentProgress: Progress { lock.withLock { progress } }
    var cancelled: Bool { lock.withLock { isCancelled } }

    /// Stops the run soon: clients and faults end, what was recorded is checked and reported.
    func cancel() { lock.withLock { isCancelled = true } }

    private func update(_ change: (inout Progress) -> Void) { lock.withLock { change(&progress) } }

    /// One cluster of one repetition, as it runs.
    final class Run: @unchecked Sendable {
        let name: String
        let plan: ExperimentPlan.Cluster
        let cluster: ManagedCluster
        let lock = NSLock()
        /// Services created and acknowledged, for scale, read and delete to work on.
        var services: [Int] = []
        /// Nodes killed or paused by a fault (port → "killed" / "paused").
        var down: [Int: String] = [:]
        init(name: String, plan: ExperimentPlan.Cluster, cluster: ManagedCluster) {
            self.name = name
            self.plan = plan
            self.cluster = cluster
        }
    }

    /// Runs every repetition; returns the report's results.
    func run() throws -> ExperimentReport.Results {
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        var repetitions: [ExperimentReport.Repetition] = []
        defer {
            let ended = cancelled ? "cancelled" : "finished"
            update { $0.state = ended }
        }
        for repetition in 1...(plan.repetitions ?? 1) where !cancelled {
            update { $0.repetition = repetition }
            repetitions.append(try runOnce(repetition))
        }
        update { $0.state = "reporting" }
        let results = ExperimentReport.Results(plan: plan, machine: .current(), repetitions: repetitions, cancelled: cancelled)
        try ExperimentReport.write(results, to: outputDirectory)
        update { $0.verdict = results.passed ? "passed" : "failed" }
        say("experiment \(plan.name): \(results.passed ? "passed" : "FAILED"); report in \(outputDirectory)/report.html")
        return results
    }

    private func runOnce(_ repetition: Int) throws -> ExperimentReport.Repetition {
        update { $0.state = "starting" }
        // Every cluster starts at once, so that none has the machine to itself.
        let created = parallelMap(plan.clusters) { [self] cluster -> Result<Run, Error> in
            let id = "\(plan.name)-\(cluster.name)-\(repetition)"
            do {
                let highest = supervisor.highestUsedPort ?? searchFrom - 1
                let managed = try supervisor.createCluster(id: id, settings: plan.settings(of: cluster), basePort: nil, searchFrom: max(searchFrom, highest + 1))
                return .success(Run(name: cluster.name, plan: cluster, cluster: managed))
            } catch {
                return .failure(LabError("cluster \(cluster.name) did not start: \(error)"))
            }
        }
        let runs = created.compactMap { try? $0.get() }
        defer { for run in runs { supervisor.removeCluster(run.cluster.id, deleteData: true) } }
        if let failure = created.first(where: { (try? $0.get()) == nil }), case .failure(let error) = failure { throw error }
        for run in runs {
            setDefaultLinks(run)
            guard run.cluster.client.waitForLeader(timeoutSeconds: 15) != nil else { throw LabError("cluster \(run.name) elected no leader within 15 s") }
        }
        let recorder = HistoryRecorder()
        update { $0.state = "running" }
        // Each node's CPU time from here to the end of the run.
        let cpuAtStart = Dictionary(uniqueKeysWithValues: runs.flatMap(\.cluster.nodes).compactMap { node in
            node.pid.flatMap { pid in MachineFacts.cpuSeconds(of: pid).map { (node.port, (pid, $0)) } }
        })
        let end = Date().addingTimeInterval(plan.seconds)
        let group = DispatchGroup()
        func spawn(_ body: @escaping @Sendable () -> Void) {
            group.enter()
            let thread = Thread {
                body()
                group.leave()
            }
            thread.stackSize = 512 * 1024
            thread.start()
        }
        for run in runs {
            for client in 0..<(plan.workload?.clients ?? 2) { spawn { self.clientLoop(run, client, recorder, until: end) } }
            spawn { self.sampleRoles(run, recorder, until: end) }
        }
        spawn { self.sampleCPU(recorder, until: end) }
        spawn { self.applyFaults(runs, recorder, until: end) }
        while Date() < end, !cancelled {
            usleep(1_000_000)
            let elapsed = min(plan.seconds, recorder.nowMs / 1_000)
            update {
                $0.elapsedSeconds = elapsed
                $0.operations = recorder.operationCount
            }
            let now = currentProgress
            say("  \(plan.name) #\(repetition): \(Int(elapsed)) of \(Int(plan.seconds)) s, \(now.operations) operations\(now.currentFault.map { ", fault: \($0)" } ?? "")")
        }
        group.wait()
        let cpuPerNode = Dictionary(uniqueKeysWithValues: runs.flatMap(\.cluster.nodes).compactMap { node -> (Int, Double)? in
            // Only nodes that ran the whole time (a killed or restarted one is another process).
            guard let pid = node.pid, let (startPID, since) = cpuAtStart[node.port], startPID == pid, let now = MachineFacts.cpuSeconds(of: pid) else { return nil }
            return (node.port, 100 * (now - since) / max(0.1, recorder.nowMs / 1_000))
        })
        update { $0.state = "healing" }
        let healedAt = recorder.nowMs
        parallelMap(runs) { [self] run in heal(run, recorder, detail: "heal at the end") }.forEach { _ in }
        let convergence = parallelMap(runs) { [self] run in waitForConvergence(run, seconds: plan.settleSeconds ?? 10) }
        update { $0.state = "checking" }
        var clusters: [ExperimentReport.ClusterResult] = []
        for (run, converged) in zip(runs, convergence) {
            let leaders = collectLeaders(run)
            recorder.record(leaders: leaders, of: run.name)
            let history = recorder.snapshot
            let operations = history.operations.filter { $0.cluster == run.name }
            var verdict = HistoryChecker.check(operations, leadersByTerm: history.leadersByTerm[run.name] ?? [:])
            if converged == nil {
                verdict.problems.append("nodes did not agree within \(Int(plan.settleSeconds ?? 10)) s of healing")
            }
            verdict.problems += acknowledgedWritesPresent(run, operations)
            verdict.passed = verdict.problems.isEmpty
            var result = ExperimentReport.ClusterResult(name: run.name, id: run.cluster.id, settings: run.cluster.settings,
                                                        convergenceSeconds: converged.map { $0 - healedAt / 1_000 }, verdict: verdict)
            for node in run.cluster.nodes { result.cpuPerNodePercent[String(node.port)] = cpuPerNode[node.port].map { ($0 * 100).rounded() / 100 } }
            clusters.append(result)
        }
        let history = recorder.snapshot
        let path = outputDirectory + "/history-\(repetition).json"
        try JSONEncoder().encode(history).write(to: URL(fileURLWithPath: path))
        return ExperimentReport.Repetition(number: repetition, history: history, clusters: clusters)
    }

    // MARK: - Workload

    private func clientLoop(_ run: Run, _ client: Int, _ recorder: HistoryRecorder, until end: Date) {
        var random = SplitMix64(seed: UInt64(client) &* 7_919 &+ FNV1a.hash(Array(run.name.utf8)))
        let mix = plan.mix
        let total = mix.reduce(0) { $0 + $1.weight }
        let clients = Double(plan.workload?.clients ?? 2)
        let interval = plan.workload?.rate.map { clients / $0 } // seconds between one client's requests
        var next = Date()
        var sequence = 0
        while Date() < end, !cancelled {
            if let interval {
                next = next.addingTimeInterval(interval)
                let wait = next.timeIntervalSinceNow
                if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
                guard Date() < end, !cancelled else { break }
            }
            var pick = random.next(below: max(1, total))
            var kind = "read"
            for (candidate, weight) in mix {
                if pick < weight {
                    kind = candidate
                    break
                }
                pick -= weight
            }
            let known = run.lock.withLock { run.services }
            if kind != "create", known.isEmpty { kind = "create" }
            let service = known.isEmpty ? nil : known[random.next(below: known.count)]
            sequence += 1
            let operation = perform(kind, on: service, value: 1 + random.next(below: 5), run: run, client: client, sequence: sequence, recorder)
            recorder.record(operation)
            if operation.outcome != .ok, interval == nil { usleep(50_000) }  // back off while unavailable
        }
    }

    /// One request to the cluster's leader, recorded with its outcome.
    private func perform(_ kind: String, on service: Int?, value: Int, run: Run, client: Int, sequence: Int, _ recorder: HistoryRecorder) -> History.Operation {
        var operation = History.Operation(cluster: run.name, client: client, kind: kind, service: kind == "create" ? nil : service,
                                          value: kind == "create" || kind == "scale" ? value : nil, invokeMs: recorder.nowMs, outcome: .unknown)
        let requestID = "\(run.cluster.id)-\(client)-\(sequence)"
        let (method, path, body): (String, String, String) = switch kind {
        case "create": ("POST", "/service", #"{"container": {"name": "\#(requestID)", "replicas": \#(value)}, "requestId": "\#(requestID)"}"#)
        case "scale": ("PATCH", "/services/\(service ?? 0)", #"{"replicas": \#(value), "requestId": "\#(requestID)"}"#)
        case "delete": ("DELETE", "/services/\(service ?? 0)", "")
        default: ("GET", "/services/\(service ?? 0)", "")
        }
        do {
            let response = try run.cluster.client.sendToLeader(method: method, path: path, headers: HTTPHeaders([("Content-Type", "application/json"), ("Idempotency-Key", requestID)]),
                                                               body: Array(body.utf8), timeoutSeconds: 6, patienceSeconds: 2, clusterID: run.cluster.id)
            operation.completeMs = recorder.nowMs
            operation.status = response.status.rawValue
            switch response.status.rawValue {
            case 200, 201, 204:
                operation.outcome = .ok
                let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
                if kind == "create", let id = (object?["services"] as? [[String: Any]])?.first?["id"] as? Int {
                    operation.service = id
                    run.lock.withLock { run.services.append(id) }
                }
                if kind == "read" { operation.value = object?["replicas"] as? Int }
                if kind == "delete", let service { run.lock.withLock { run.services.removeAll { $0 == service } } }
            case 404:
                operation.outcome = .ok
                operation.absent = true
                if let service { run.lock.withLock { run.services.removeAll { $0 == service } } }
            case 400..<500:
                // Refused before anything applied.
                operation.outcome = .failed
                operation.error = response.bodyText
            default:
                // 504, and 503 too: a follower that forwarded it may have lost the leader's
                // answer, so the write may have applied. Unknown, never "failed".
                operation.outcome = .unknown
                operation.error = response.bodyText
            }
        } catch {
            operation.completeMs = recorder.nowMs  // when the client gave up; it may still apply
            operation.outcome = .unknown
            operation.error = "\(error)"
        }
        return operation
    }

    // MARK: - Observation

    /// Polls every node's `GET /` (role, term, leader) every 25 ms; a change is recorded.
    private func sampleRoles(_ run: Run, _ recorder: HistoryRecorder, until end: Date) {
        while Date() < end, !cancelled {
            for node in run.cluster.nodes {
                let definition = try? run.cluster.client.definition(of: node.port, timeoutSeconds: 0.1)
                // The node's own time of the change (when it has one after the start), not when we asked.
                let since = definition?.roleSince.map { ($0 - recorder.started.timeIntervalSince1970) * 1_000 }
                let at = since.map { max(0, min($0, recorder.nowMs)) } ?? recorder.nowMs
                recorder.observe(History.RoleChange(atMs: at, cluster: run.name, node: node.port, role: definition?.state ?? "down",
                                                    term: definition?.term, leader: definition?.leader))
            }
            usleep(25_000)
        }
    }

    /// The machine's CPU use once a second, from /proc/stat.
    private func sampleCPU(_ recorder: HistoryRecorder, until end: Date) {
        var last = MachineFacts.cpuTimes()
        while Date() < end, !cancelled {
            usleep(1_000_000)
            let now = MachineFacts.cpuTimes()
            if let last, let now, now.total > last.total {
                recorder.record(cpu: History.CPUSample(atMs: recorder.nowMs, busyPercent: 100 * Double(now.busy - last.busy) / Double(now.total - last.total)))
            }
            last = now
        }
    }

    /// Every term's leader as each node remembers it (`leaders` in its stats).
    private func collectLeaders(_ run: Run) -> [String: Set<String>] {
        var leaders: [String: Set<String>] = [:]
        for node in run.cluster.nodes {
            guard let response = try? http.send("GET", host: "127.0.0.1", port: node.port, path: "/stats", timeoutSeconds: 2),
                  let stats = try? JSONBody.decode(NodeStats.self, from: response.body) else { continue }
            for (term, leader) in stats.leaders { leaders[term, default: []].insert(leader) }
        }
        return leaders
    }

    // MARK: - Faults

    private func applyFaults(_ runs: [Run], _ recorder: HistoryRecorder, until end: Date) {
        for fault in plan.schedule() {
            let due = recorder.started.addingTimeInterval(fault.at)
            while Date() < due, !cancelled { usleep(5_000) }
            guard Date() < end, !cancelled else { return }
            update { $0.currentFault = "\(fault.action) at \(fault.at) s" }
            say("  fault at \(fault.at) s: \(fault.action)")
            // The same fault to every cluster at the same moment.
            parallelMap(runs) { [self] run in apply(fault, to: run, recorder) }.forEach { _ in }
        }
    }

    private func leaderPort(_ run: Run) -> Int? { run.cluster.client.waitForLeader(timeoutSeconds: 1, askTimeoutSeconds: 0.1)?.port }

    private func apply(_ fault: ExperimentPlan.Fault, to run: Run, _ recorder: HistoryRecorder) {
        let nodes = run.cluster.nodes
        func record(_ detail: String) {
            recorder.record(fault: History.Fault(atMs: recorder.nowMs, cluster: run.name, action: fault.action, detail: detail))
        }
        let target: NodeProcess? = switch fault.action {
        case "kill-leader", "pause-leader", "partition-leader", "cut-leader-follower": leaderPort(run).flatMap { port in nodes.first { $0.port == port } }
        default: fault.node.map { nodes[$0] }
        }
        run.cluster.client.forgetLeader()
        switch fault.action {
        case "kill-leader", "kill":
            guard let target else { return record("no leader to kill") }
            target.killNow()
            run.lock.withLock { run.down[target.port] = "killed" }
            record("kill -9 \(target.port)")
        case "pause-leader", "pause":
            guard let target, target.send(SIGSTOP) else { return record("nothing to pause") }
            target.markStatus(.paused)
            run.lock.withLock { run.down[target.port] = "paused" }
            record("pause \(target.port)")
        case "resume", "restart":
            let wanted = fault.action == "resume" ? "paused" : "killed"
            let ports = run.lock.withLock { run.down.filter { $0.value == wanted }.map(\.key) }
            for port in ports { bringBack(port, run) }
            recorder.endFaults(of: run.name, matching: { $0.hasPrefix(wanted == "paused" ? "pause" : "kill") }, at: recorder.nowMs)
            record("\(fault.action) \(ports.sorted())")
        case "partition-leader":
            guard let target else { return record("no leader to partition") }
            let minority = Set([target.port] + nodes.map(\.port).filter { $0 != target.port }.prefix((nodes.count - 1) / 2))
            setLinks(run) { from, to in minority.contains(from) == minority.contains(to) ? nil : "0" }
            record("leader \(target.port) in minority \(minority.sorted())")
        case "cut-leader-follower":
            guard let target, let follower = nodes.first(where: { $0.port != target.port }) else { return record("no leader") }
            setLinks(run) { from, to in from == target.port && to == follower.port ? "0" : nil }
            record("one-way cut \(target.port) -> \(follower.port)")
        case "lossy", "slow":
            let loss = fault.action == "lossy" ? fault.loss ?? 0.3 : run.plan.linkLoss ?? 0
            let delay = fault.action == "slow" ? fault.delayMs ?? 100 : run.plan.linkDelayMs ?? 0
            setLinks(run) { _, _ in #"{"up": true, "delayMs": \#(delay), "loss": \#(loss)}"# }
            record("every link: loss \(loss), delay \(delay) ms")
        default:
            heal(run, recorder, detail: "heal")
        }
    }

    private func bringBack(_ port: Int, _ run: Run) {
        guard let node = run.cluster.nodes.first(where: { $0.port == port }), let state = run.lock.withLock({ run.down.removeValue(forKey: port) }) else { return }
        if state == "paused" {
            _ = node.send(SIGCONT)
            node.markStatus(.running)
        } else {
            node.terminate()
            try? supervisor.start(node, in: run.cluster)
            try? supervisor.waitUntilReady([node], seconds: 15)
        }
    }

    /// Every node back and every link to the cluster's default.
    private func heal(_ run: Run, _ recorder: HistoryRecorder, detail: String) {
        for port in run.lock.withLock({ Array(run.down.keys) }).sorted() { bringBack(port, run) }
        setDefaultLinks(run)
        recorder.endFaults(of: run.name, matching: { _ in true }, at: recorder.nowMs)
        recorder.record(fault: History.Fault(atMs: recorder.nowMs, cluster: run.name, action: "heal", detail: detail, endMs: recorder.nowMs))
    }

    private func setDefaultLinks(_ run: Run) {
        let value = #"{"up": true, "delayMs": \#(run.plan.linkDelayMs ?? 0), "loss": \#(run.plan.linkLoss ?? 0)}"#
        setLinks(run) { _, _ in value }
    }

    /// Sets the links `value` names (nil: leave it), node by node.
    private func setLinks(_ run: Run, _ value: (Int, Int) -> String?) {
        let ports = run.cluster.nodes.map(\.port)
        for from in ports {
            let entries = ports.filter { $0 != from }.compactMap { to in value(from, to).map { "\"\(to)\": \($0)" } }
            guard !entries.isEmpty else { continue }
            _ = try? http.send("POST", host: "127.0.0.1", port: from, path: "/connections", headers: HTTPHeaders([("Content-Type", "application/json")]),
                               body: Array(("{" + entries.joined(separator: ", ") + "}").utf8), timeoutSeconds: 2)
        }
    }

    // MARK: - Checks after healing

    /// Seconds since the start when every node answered with one term, one leader and the
    /// same applied commit index; nil if that did not happen in time.
    private func waitForConvergence(_ run: Run, seconds: Double) -> Double? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let stats = run.cluster.nodes.compactMap { node -> NodeStats? in
                guard let response = try? http.send("GET", host: "127.0.0.1", port: node.port, path: "/stats", timeoutSeconds: 0.5) else { return nil }
                return try? JSONBody.decode(NodeStats.self, from: response.body)
            }
            if stats.count == run.cluster.nodes.count, Set(stats.map(\.term)).count == 1, Set(stats.map(\.leader)).count == 1, stats[0].leader != nil,
               Set(stats.map(\.commitIndex)).count == 1, stats.allSatisfy({ $0.appliedIndex == $0.commitIndex })
            {
                return run.cluster.createdAt.distance(to: Date())
            }
            usleep(50_000)
        }
        return nil
    }

    /// Every acknowledged create is on every node after healing, unless a delete of it may have applied.
    private func acknowledgedWritesPresent(_ run: Run, _ operations: [History.Operation]) -> [String] {
        let mayBeDeleted = Set(operations.filter { $0.kind == "delete" && $0.outcome != .failed }.compactMap(\.service))
        let created = Set(operations.filter { $0.kind == "create" && $0.outcome == .ok }.compactMap(\.service)).subtracting(mayBeDeleted)
        var problems: [String] = []
        for node in run.cluster.nodes {
            guard let response = try? http.send("GET", host: "127.0.0.1", port: node.port, path: "/services?local=true", timeoutSeconds: 5),
                  let list = try? JSONBody.decode(ListEnvelope<ServiceView>.self, from: response.body)
            else {
                problems.append("node \(node.port): could not read its services")
                continue
            }
            let missing = created.subtracting(list.results.map(\.id))
            if !missing.isEmpty { problems.append("node \(node.port): \(missing.count) acknowledged service(s) missing: \(missing.sorted().prefix(10))") }
        }
        return problems
    }
}
