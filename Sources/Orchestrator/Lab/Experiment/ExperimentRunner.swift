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
        /// Applies the faults (set once the run's recorder exists).
        var driver: FaultDriver!
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
            FaultDriver.setDefaultLinks(run.cluster.ports, http, delayMs: run.plan.linkDelayMs ?? 0, loss: run.plan.linkLoss ?? 0)
            guard run.cluster.client.waitForLeader(timeoutSeconds: 15) != nil else { throw LabError("cluster \(run.name) elected no leader within 15 s") }
        }
        let recorder = HistoryRecorder()
        for run in runs {
            run.driver = FaultDriver(name: run.name, nodes: LocalNodes(cluster: run.cluster, supervisor: supervisor), http: http, recorder: recorder,
                                     linkDelayMs: run.plan.linkDelayMs ?? 0, linkLoss: run.plan.linkLoss ?? 0, keepsMajority: plan.randomFaults != nil)
        }
        update { $0.state = "running" }
        // Each node's CPU time from here to the end of the run.
        let cpuAtStart = Dictionary(uniqueKeysWithValues: runs.flatMap(\.cluster.nodes).compactMap { node in
            node.pid.flatMap { pid in ClusterBenchmarks.cpuSeconds(pid).map { (node.port, (pid, $0)) } }
        })
        let end = Date().addingTimeInterval(plan.seconds)
        let group = DispatchGroup()
        func spawn(_ body: @escaping @Sendable () -> Void) { startThread(in: group, body) }
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
            guard let pid = node.pid, let (startPID, since) = cpuAtStart[node.port], startPID == pid, let now = ClusterBenchmarks.cpuSeconds(pid) else { return nil }
            return (node.port, 100 * (now - since) / max(0.1, recorder.nowMs / 1_000))
        })
        update { $0.state = "healing" }
        parallelMap(runs) { run in run.driver.heal(detail: "heal at the end") }.forEach { _ in }
        let convergence = parallelMap(runs) { [self] run in ClusterChecks.waitForConvergence(run.cluster.ports, http, seconds: plan.settleSeconds ?? 10) }
        update { $0.state = "checking" }
        for run in runs { recorder.record(leaders: ClusterChecks.leadersByTerm(run.cluster.ports, http), of: run.name) }
        let history = recorder.snapshot
        var clusters: [ExperimentReport.ClusterResult] = []
        for (run, converged) in zip(runs, convergence) {
            let operations = history.operations.filter { $0.cluster == run.name }
            var verdict = HistoryChecker.check(operations, leadersByTerm: history.leadersByTerm[run.name] ?? [:])
            if converged == nil {
                verdict.problems.append("nodes did not agree within \(Int(plan.settleSeconds ?? 10)) s of healing")
            }
            verdict.problems += ClusterChecks.acknowledgedWritesPresent(run.cluster.ports, http, operations)
            verdict.problems += ClusterChecks.logsAgree(run.cluster.ports, http).problems
            verdict.passed = verdict.problems.isEmpty
            var result = ExperimentReport.ClusterResult(name: run.name, id: run.cluster.id, settings: run.cluster.settings,
                                                        convergenceSeconds: converged, verdict: verdict)
            for node in run.cluster.nodes { result.cpuPerNodePercent[String(node.port)] = cpuPerNode[node.port].map { ($0 * 100).rounded() / 100 } }
            clusters.append(result)
        }
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

    // MARK: - Faults

    private func applyFaults(_ runs: [Run], _ recorder: HistoryRecorder, until end: Date) {
        for fault in plan.schedule() {
            let due = recorder.started.addingTimeInterval(fault.at)
            while Date() < due, !cancelled { usleep(5_000) }
            guard Date() < end, !cancelled else { return }
            update { $0.currentFault = "\(fault.action) at \(fault.at) s" }
            say("  fault at \(fault.at) s: \(fault.action)")
            // The same fault to every cluster at the same moment.
            parallelMap(runs) { run in run.driver.apply(fault) }.forEach { _ in }
        }
    }
}
