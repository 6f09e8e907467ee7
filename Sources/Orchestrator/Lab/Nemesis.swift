import ClusterNode
import Foundation
import Raft
import Transport

/// `orchestrator nemesis`: injects random faults into a running cluster while clients
/// submit services, then heals everything and checks that nothing acknowledged was lost.
final class Nemesis: @unchecked Sendable {
    struct Options {
        var host = "127.0.0.1"
        var port = 8000
        /// nil: create a cluster for the run (sized so every replica fits) and delete it after.
        var cluster: String?
        var nodes = 5
        var keepCluster = false
        var seconds = 60.0
        var seed: UInt64 = UInt64.random(in: 1...999_999)
        var clients = 4
        var convergenceSeconds = 30.0
    }

    let options: Options
    let client: HTTPClient
    private let lock = NSLock()
    private var outcomes: [String: Int] = [:]
    private var isRunning = true

    init(options: Options) {
        self.options = options
        var configuration = HTTPClient.Configuration()
        configuration.requestTimeoutSeconds = 10
        configuration.maxConnectionsPerHost = 64
        self.client = HTTPClient(configuration: configuration)
    }

    /// What the run found.
    struct Report: Codable {
        var seed: UInt64
        var seconds: Double
        var faults: [String: Int]
        var requests: [String: Int]
        var acknowledgedServices: Int
        var convergenceSeconds: Double?
        var committedIndex: UInt64
        var leaderTerms: Int
        var problems: [String]
        var passed: Bool { problems.isEmpty }
    }

    private func say(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    private func orchestrator(_ method: String, _ path: String, _ body: String = "", timeout: Double = 10) throws -> HTTPResponse {
        try client.send(method, host: options.host, port: options.port, path: path, headers: HTTPHeaders([("Content-Type", "application/json")]),
                        body: Array(body.utf8), timeoutSeconds: timeout)
    }

    /// The cluster under test.
    private var clusterID = ""

    /// Runs the nemesis: the experiments' fault driver (through the orchestrator's API), its
    /// recorder and its checks, with random faults drawn from the seed.
    func run() throws -> Report {
        if let existing = options.cluster {
            clusterID = existing
        } else {
            clusterID = "nemesis-\(options.seed)"
            let created = try orchestrator("POST", "/clusters", #"{"id": "\#(clusterID)", "nodes": \#(options.nodes), "capacity": 1000000, "unhealthyAfterMs": 1500}"#, timeout: 30)
            guard created.status == .created else { throw LabError("could not create cluster \(clusterID): \(created.bodyText)") }
        }
        defer {
            if options.cluster == nil && !options.keepCluster { _ = try? orchestrator("DELETE", "/clusters/\(clusterID)", timeout: 30) }
        }
        let summary = try orchestrator("GET", "/clusters/\(clusterID)")
        guard summary.status == .ok, let object = try? JSONSerialization.jsonObject(with: Data(summary.body)) as? [String: Any],
              let nodes = object["nodes"] as? [[String: Any]]
        else { throw LabError("cluster \(clusterID) not found at \(options.host):\(options.port): \(summary.bodyText)") }
        let ports = nodes.compactMap { $0["port"] as? Int }.sorted()
        say("nemesis seed \(options.seed): cluster \(clusterID) with nodes \(ports.map(String.init).joined(separator: ", ")), \(Int(options.seconds)) s, \(options.clients) clients")
        let recorder = HistoryRecorder()
        let driver = FaultDriver(name: clusterID, nodes: RemoteNodes(host: options.host, port: options.port, clusterID: clusterID, ports: ports, http: client),
                                 http: client, recorder: recorder, keepsMajority: true)
        let schedule = ExperimentPlan(name: "nemesis", seconds: options.seconds, clusters: [], randomFaults: .init(seed: options.seed, every: 1.25)).schedule()
        let end = recorder.started.addingTimeInterval(options.seconds)
        let group = DispatchGroup()
        for number in 0..<options.clients { startThread(in: group) { self.clientLoop(number, recorder) } }
        startThread(in: group) { self.monitorLoop(ports, recorder) }
        startThread(in: group) {
            for fault in schedule {
                while Date() < recorder.started.addingTimeInterval(fault.at) { usleep(5_000) }
                guard Date() < end else { break }
                driver.apply(fault)
                if let last = recorder.snapshot.faults.last { self.say("  fault: \(last.action): \(last.detail)") }
            }
        }
        while Date() < end {
            usleep(1_000_000)
            let elapsed = Int(Date().timeIntervalSince(recorder.started))
            if elapsed % 10 == 0 {
                let history = recorder.snapshot
                say("  \(elapsed) s: \(history.operations.filter { $0.outcome == .ok }.count) services acknowledged, \(history.faults.count) faults injected")
            }
        }
        lock.withLock { isRunning = false }
        group.wait()
        say("healing: resume, restart, reconnect")
        driver.heal(detail: "heal at the end")
        let convergence = ClusterChecks.waitForConvergence(ports, client, seconds: options.convergenceSeconds, say: say)
        recorder.record(leaders: ClusterChecks.leadersByTerm(ports, client), of: clusterID)
        let history = recorder.snapshot
        let leaders = history.leadersByTerm[clusterID] ?? [:]
        var problems = HistoryChecker.check(history.operations, leadersByTerm: leaders).problems
        if convergence == nil { problems.append("nodes did not converge within \(Int(options.convergenceSeconds)) s of healing") }
        problems += ClusterChecks.acknowledgedWritesPresent(ports, client, history.operations, fullyPlaced: true)
        let logs = ClusterChecks.logsAgree(ports, client)
        problems += logs.problems
        let faults = Dictionary(grouping: history.faults.filter { !$0.detail.hasPrefix("skipped") && !$0.detail.hasPrefix("no leader") }, by: \.action).mapValues(\.count)
        return Report(seed: options.seed, seconds: options.seconds, faults: faults, requests: lock.withLock { outcomes },
                      acknowledgedServices: history.operations.filter { $0.outcome == .ok }.count, convergenceSeconds: convergence,
                      committedIndex: logs.through, leaderTerms: leaders.count, problems: problems)
    }

    private var running: Bool { lock.withLock { isRunning } }

    // MARK: - Clients

    /// Submits services one after another, each recorded as an operation of the history.
    private func clientLoop(_ number: Int, _ recorder: HistoryRecorder) {
        var random = SplitMix64(seed: options.seed &+ UInt64(number))
        var sequence = 0
        while running {
            sequence += 1
            let requestID = "nemesis-\(options.seed)-\(number)-\(sequence)"
            let replicas = 1 + random.next(below: 4)
            let body = #"{"container": {"id": \#(sequence), "name": "\#(requestID)", "replicas": \#(replicas)}, "requestId": "\#(requestID)"}"#
            var operation = History.Operation(cluster: clusterID, client: number, kind: "create", service: nil, value: replicas,
                                              invokeMs: recorder.nowMs, outcome: .unknown)
            let outcome: String
            do {
                let response = try orchestrator("POST", "/clusters/\(clusterID)/service", body, timeout: 10)
                outcome = String(response.status.rawValue)
                operation.status = response.status.rawValue
                if response.status == .created, let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] {
                    operation.outcome = .ok
                    operation.service = ((object["services"] as? [[String: Any]])?.first?["id"] as? Int)
                } else if (400..<500).contains(response.status.rawValue) {
                    operation.outcome = .failed
                }
            } catch {
                outcome = "no answer"
            }
            operation.completeMs = recorder.nowMs
            recorder.record(operation)
            lock.withLock { outcomes[outcome, default: 0] += 1 }
            if outcome != "201" { usleep(100_000) }  // back off while the cluster is unavailable
        }
    }

    // MARK: - Monitor

    /// Every node's record of the leader of each term, gathered while faults come and go.
    private func monitorLoop(_ ports: [Int], _ recorder: HistoryRecorder) {
        while running {
            recorder.record(leaders: ClusterChecks.leadersByTerm(ports, client, timeout: 0.5), of: clusterID)
            usleep(300_000)
        }
    }
}
