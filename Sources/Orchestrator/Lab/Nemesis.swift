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
    private var random: SplitMix64
    private var nodePorts: [Int] = []
    private var acknowledged: [String: (ids: [Int], replicas: Int)] = [:]
    private var outcomes: [String: Int] = [:]
    private var faults: [String: Int] = [:]
    private var observedLeaders: [UInt64: Set<String>] = [:]
    private var down: [Int: String] = [:]  // port -> "killed" / "paused"
    private var isRunning = true
    private var log: [String] = []

    init(options: Options) {
        self.options = options
        self.random = SplitMix64(seed: options.seed)
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

    private func node(_ port: Int, _ method: String, _ path: String, _ body: String = "", timeout: Double = 2) throws -> HTTPResponse {
        try client.send(method, host: "127.0.0.1", port: port, path: path, headers: HTTPHeaders([("Content-Type", "application/json")]),
                        body: Array(body.utf8), timeoutSeconds: timeout)
    }

    /// The cluster under test.
    private var clusterID = ""

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
        nodePorts = nodes.compactMap { $0["port"] as? Int }.sorted()
        say("nemesis seed \(options.seed): cluster \(clusterID) with nodes \(nodePorts.map(String.init).joined(separator: ", ")), \(Int(options.seconds)) s, \(options.clients) clients")
        let started = Date()
        let group = DispatchGroup()
        for number in 0..<options.clients { spawn(group) { self.clientLoop(number) } }
        spawn(group) { self.monitorLoop() }
        spawn(group) { self.faultLoop(until: started.addingTimeInterval(self.options.seconds)) }
        while Date().timeIntervalSince(started) < options.seconds {
            usleep(1_000_000)
            let elapsed = Int(Date().timeIntervalSince(started))
            if elapsed % 10 == 0 {
                let (acked, faultCount) = lock.withLock { (acknowledged.count, faults.values.reduce(0, +)) }
                say("  \(elapsed) s: \(acked) services acknowledged, \(faultCount) faults injected")
            }
        }
        lock.withLock { isRunning = false }
        group.wait()
        say("healing: resume, restart, reconnect")
        let healedAt = Date()
        heal()
        let convergence = waitForConvergence(since: healedAt)
        var problems: [String] = []
        if convergence == nil { problems.append("nodes did not converge within \(Int(options.convergenceSeconds)) s of healing") }
        let committed = check(&problems)
        let report = lock.withLock {
            Report(seed: options.seed, seconds: options.seconds, faults: faults, requests: outcomes, acknowledgedServices: acknowledged.count,
                   convergenceSeconds: convergence, committedIndex: committed, leaderTerms: observedLeaders.count, problems: problems)
        }
        return report
    }

    private func spawn(_ group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
        group.enter()
        Thread {
            body()
            group.leave()
        }.start()
    }

    private var running: Bool { lock.withLock { isRunning } }

    private func next(below bound: Int) -> Int { lock.withLock { random.next(below: bound) } }

    // MARK: - Clients

    private func clientLoop(_ number: Int) {
        var sequence = 0
        while running {
            sequence += 1
            let requestID = "nemesis-\(options.seed)-\(number)-\(sequence)"
            let replicas = 1 + next(below: 4)
            let body = #"{"container": {"id": \#(sequence), "name": "\#(requestID)", "replicas": \#(replicas)}, "requestId": "\#(requestID)"}"#
            let outcome: String
            do {
                let response = try orchestrator("POST", "/clusters/\(clusterID)/service", body, timeout: 10)
                outcome = String(response.status.rawValue)
                if response.status == .created, let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
                   let services = object["services"] as? [[String: Any]]
                {
                    let ids = services.compactMap { $0["id"] as? Int }
                    lock.withLock { acknowledged[requestID] = (ids, replicas) }
                }
            } catch {
                outcome = "no answer"
            }
            lock.withLock { outcomes[outcome, default: 0] += 1 }
            if outcome != "201" { usleep(100_000) }  // back off while the cluster is unavailable
        }
    }

    // MARK: - Monitor

    private func monitorLoop() {
        while running {
            for port in nodePorts { recordLeaders(from: port) }
            usleep(300_000)
        }
    }

    private func recordLeaders(from port: Int) {
        guard let response = try? node(port, "GET", "/stats", timeout: 0.5), response.status == .ok,
              let stats = try? JSONBody.decode(NodeStats.self, from: response.body)
        else { return }  // down, paused or cut off: nothing to record
        lock.withLock {
            for (term, leader) in stats.leaders { if let term = UInt64(term) { observedLeaders[term, default: []].insert(leader) } }
            if NodeRole(rawValue: stats.state) == .leader { observedLeaders[stats.term, default: []].insert(stats.address) }
        }
    }

    // MARK: - Faults

    private func currentLeader() -> Int? {
        let ports = nodePorts  // set once before the faults start
        return ClusterClient(http: client) { ports }.waitForLeader(timeoutSeconds: 0, askTimeoutSeconds: 0.5)?.port
    }

    private func record(_ fault: String, _ detail: String) {
        lock.withLock {
            faults[fault, default: 0] += 1
            log.append(detail)
        }
        say("  fault: \(detail)")
    }

    private func faultLoop(until end: Date) {
        let minority = (nodePorts.count - 1) / 2
        while Date() < end {
            usleep(UInt32(500_000 + next(below: 1_500_000)))
            guard Date() < end else { break }
            let downCount = lock.withLock { down.count }
            switch next(below: 8) {
            case 0 where downCount < minority, 1 where downCount < minority:
                guard let leader = currentLeader() else { continue }
                if (try? orchestrator("POST", "/clusters/\(clusterID)/nodes/\(leader)/kill"))?.status == .ok {
                    lock.withLock { down[leader] = "killed" }
                    record("kill leader", "kill -9 leader \(leader)")
                }
            case 2:
                guard let (port, state) = lock.withLock({ down.first }) else { continue }
                let action = state == "paused" ? "resume" : "restart"
                if (try? orchestrator("POST", "/clusters/\(clusterID)/nodes/\(port)/\(action)", timeout: 20))?.status == .ok {
                    _ = lock.withLock { down.removeValue(forKey: port) }
                    record(action, "\(action) \(port)")
                }
            case 3 where downCount < minority:
                let target = next(below: 2) == 0 ? (currentLeader() ?? nodePorts[0]) : nodePorts[next(below: nodePorts.count)]
                guard lock.withLock({ down[target] == nil }) else { continue }
                if (try? orchestrator("POST", "/clusters/\(clusterID)/nodes/\(target)/pause"))?.status == .ok {
                    lock.withLock { down[target] = "paused" }
                    record("pause", "pause \(target)")
                }
            case 4:
                let from = nodePorts[next(below: nodePorts.count)]
                let to = nodePorts.filter { $0 != from }[next(below: nodePorts.count - 1)]
                if (try? node(from, "POST", "/connections", #"{"\#(to)": 0}"#))?.status == .ok { record("one-way cut", "cut \(from) -> \(to)") }
            case 5:
                var shuffled = nodePorts
                for position in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(position, next(below: position + 1)) }
                let cut = 1 + next(below: shuffled.count - 1)
                let groups = "[[" + shuffled[..<cut].map(String.init).joined(separator: ",") + "], [" + shuffled[cut...].map(String.init).joined(separator: ",") + "]]"
                if (try? orchestrator("POST", "/clusters/\(clusterID)/partition", #"{"groups": \#(groups)}"#))?.status == .ok {
                    record("partition", "partition \(groups)")
                }
            case 6:
                let from = nodePorts[next(below: nodePorts.count)]
                let to = nodePorts.filter { $0 != from }[next(below: nodePorts.count - 1)]
                let loss = [0.1, 0.3, 0.5][next(below: 3)]
                let delay = [0, 20, 100][next(below: 3)]
                if (try? node(from, "POST", "/connections", #"{"\#(to)": {"loss": \#(loss), "delayMs": \#(delay)}}"#))?.status == .ok {
                    record("lossy link", "link \(from) -> \(to): loss \(loss), delay \(delay) ms")
                }
            default:
                if (try? orchestrator("POST", "/clusters/\(clusterID)/heal"))?.status == .ok { record("heal", "heal all links") }
            }
        }
    }

    private func heal() {
        let stillDown = lock.withLock { down }
        for (port, state) in stillDown.sorted(by: { $0.key < $1.key }) {
            _ = try? orchestrator("POST", "/clusters/\(clusterID)/nodes/\(port)/\(state == "paused" ? "resume" : "restart")", timeout: 20)
        }
        lock.withLock { down.removeAll() }
        _ = try? orchestrator("POST", "/clusters/\(clusterID)/heal")
    }

    // MARK: - Checks

    /// Seconds until every node answers, agrees on term and leader, and has applied the same commit index.
    private func waitForConvergence(since healedAt: Date) -> Double? {
        let deadline = healedAt.addingTimeInterval(options.convergenceSeconds)
        while Date() < deadline {
            let stats = nodePorts.compactMap { port -> NodeStats? in
                guard let response = try? node(port, "GET", "/stats", timeout: 0.5), response.status == .ok else { return nil }
                return try? JSONBody.decode(NodeStats.self, from: response.body)
            }
            if stats.count == nodePorts.count, Set(stats.map(\.term)).count == 1, Set(stats.map(\.leader)).count == 1, stats[0].leader != nil,
               Set(stats.map(\.commitIndex)).count == 1, stats.allSatisfy({ $0.appliedIndex == $0.commitIndex }), stats.allSatisfy({ $0.unhealthyNodes.isEmpty })
            {
                return Date().timeIntervalSince(healedAt)
            }
            let waited = Date().timeIntervalSince(healedAt)
            if waited - waited.rounded(.down) < 0.05, waited >= 1 {
                // Once a second: say what the nodes still disagree on.
                let views = stats.map { "\($0.id): \($0.state) t\($0.term) leader \($0.leader ?? "-") commit \($0.commitIndex) applied \($0.appliedIndex) unhealthy \($0.unhealthyNodes)" }
                say("  converging (\(Int(waited)) s, \(stats.count)/\(nodePorts.count) answer): " + views.joined(separator: "; "))
            }
            usleep(50_000)
        }
        return nil
    }

    private func check(_ problems: inout [String]) -> UInt64 {
        for port in nodePorts { recordLeaders(from: port) }
        let (acked, leaders) = lock.withLock { (acknowledged, observedLeaders) }
        for (term, names) in leaders where names.count > 1 {
            problems.append("term \(term) had more than one leader: \(names.sorted().joined(separator: ", "))")
        }
        // Every acknowledged service is on every node with its full replica count placed.
        for port in nodePorts {
            guard let response = try? node(port, "GET", "/services?local=true", timeout: 5),
                  let list = try? JSONBody.decode(ListEnvelope<ServiceView>.self, from: response.body)
            else {
                problems.append("node \(port): could not read its services")
                continue
            }
            let byRequest = Dictionary(grouping: list.results, by: \.requestId)
            var missing = 0
            var short = 0
            for (requestID, expected) in acked {
                guard let services = byRequest[requestID], Set(services.map(\.id)) == Set(expected.ids) else {
                    missing += 1
                    continue
                }
                if services.contains(where: { $0.replicas != expected.replicas || $0.placed + $0.pending != $0.replicas }) {
                    missing += 1  // the record itself is wrong
                } else if services.contains(where: { $0.placed != $0.replicas }) {
                    short += 1
                }
            }
            if missing > 0 { problems.append("node \(port): \(missing) acknowledged service request(s) missing") }
            if short > 0 {
                problems.append("node \(port): \(short) acknowledged service(s) without their full replica count placed (pending for lack of capacity: size the cluster for the run, or let nemesis create its own)")
            }
        }
        // Every node's log agrees on every committed index.
        let pages = nodePorts.map { port -> [LogEntryDigest]? in
            var entries: [LogEntryDigest] = []
            var from: UInt64 = 1
            while true {
                guard let response = try? node(port, "GET", "/log?from=\(from)", timeout: 5),
                      let page = try? JSONBody.decode(LogPage.self, from: response.body)
                else { return nil }
                entries += page.entries.filter { $0.index <= page.commitIndex }
                guard let last = page.entries.last, last.index < page.commitIndex else { return entries }
                from = last.index + 1
            }
        }
        let logs = pages.compactMap { $0 }
        if logs.count < nodePorts.count { problems.append("could not read every node's log") }
        // Each node holds its committed entries from its first after its latest snapshot:
        // compare every index all of them still hold.
        let first = logs.map { $0.first?.index ?? UInt64.max }.max() ?? 1
        let last = logs.map { $0.last?.index ?? 0 }.min() ?? 0
        guard first <= last else { return 0 }
        for index in first...last {
            let entries = Set(logs.map { log in log[Int(index - log[0].index)] })
            if entries.count > 1 {
                problems.append("logs disagree at committed index \(index)")
                break
            }
        }
        return last
    }
}
