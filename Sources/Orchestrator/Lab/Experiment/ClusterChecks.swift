import ClusterNode
import Foundation
import Transport

/// The checks after healing that experiments and the nemesis share, asked of the nodes
/// themselves over HTTP.
enum ClusterChecks {
    static func nodeStats(of port: Int, _ http: HTTPClient, timeout: Double = 0.5) -> NodeStats? {
        guard let response = try? http.send("GET", host: "127.0.0.1", port: port, path: "/stats", timeoutSeconds: timeout) else { return nil }
        return try? JSONBody.decode(NodeStats.self, from: response.body)
    }

    /// Waits until every node answers with one term, one leader and the same commit index,
    /// all applied, none marked unhealthy; the seconds it took, or nil after `seconds`.
    static func waitForConvergence(_ ports: [Int], _ http: HTTPClient, seconds: Double, say: ((String) -> Void)? = nil) -> Double? {
        let started = Date()
        var lastSaid = 0
        while Date().timeIntervalSince(started) < seconds {
            let stats = ports.compactMap { nodeStats(of: $0, http) }
            if stats.count == ports.count, Set(stats.map(\.term)).count == 1, Set(stats.map(\.leader)).count == 1, stats[0].leader != nil,
               Set(stats.map(\.commitIndex)).count == 1, stats.allSatisfy({ $0.appliedIndex == $0.commitIndex }), stats.allSatisfy({ $0.unhealthyNodes.isEmpty })
            {
                return Date().timeIntervalSince(started)
            }
            let waited = Int(Date().timeIntervalSince(started))
            if let say, waited > lastSaid {
                lastSaid = waited
                let views = stats.map { "\($0.id): \($0.state) t\($0.term) leader \($0.leader ?? "-") commit \($0.commitIndex) applied \($0.appliedIndex) unhealthy \($0.unhealthyNodes)" }
                say("  converging (\(waited) s, \(stats.count)/\(ports.count) answer): " + views.joined(separator: "; "))
            }
            usleep(50_000)
        }
        return nil
    }

    /// Every term's leader as each node remembers it (`leaders` in its stats).
    static func leadersByTerm(_ ports: [Int], _ http: HTTPClient, timeout: Double = 2) -> [String: Set<String>] {
        var leaders: [String: Set<String>] = [:]
        for port in ports {
            guard let stats = nodeStats(of: port, http, timeout: timeout) else { continue }
            for (term, leader) in stats.leaders { leaders[term, default: []].insert(leader) }
            if NodeRole(rawValue: stats.state) == .leader { leaders[String(stats.term), default: []].insert(stats.address) }
        }
        return leaders
    }

    /// Every acknowledged create is on every node, unless a delete of it may have applied;
    /// with `fullyPlaced`, each with its whole replica count placed. The problems found.
    static func acknowledgedWritesPresent(_ ports: [Int], _ http: HTTPClient, _ operations: [History.Operation], fullyPlaced: Bool = false) -> [String] {
        let mayBeDeleted = Set(operations.filter { $0.kind == "delete" && $0.outcome != .failed }.compactMap(\.service))
        let created = operations.filter { $0.kind == "create" && $0.outcome == .ok && !mayBeDeleted.contains($0.service ?? 0) }
        var problems: [String] = []
        for port in ports {
            guard let response = try? http.send("GET", host: "127.0.0.1", port: port, path: "/services?local=true", timeoutSeconds: 5),
                  let list = try? JSONBody.decode(ListEnvelope<ServiceView>.self, from: response.body)
            else {
                problems.append("node \(port): could not read its services")
                continue
            }
            let byID = Dictionary(list.results.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            let missing = created.filter { byID[$0.service ?? 0] == nil }
            if !missing.isEmpty { problems.append("node \(port): \(missing.count) acknowledged service(s) missing: \(missing.compactMap(\.service).sorted().prefix(10))") }
            if fullyPlaced {
                let short = created.compactMap { byID[$0.service ?? 0] }.filter { $0.placed != $0.replicas }
                if !short.isEmpty {
                    problems.append("node \(port): \(short.count) acknowledged service(s) without their full replica count placed (pending for lack of capacity: size the cluster for the run)")
                }
            }
        }
        return problems
    }

    /// Every node's log agrees on every committed index they all still hold; the highest
    /// index compared, and a problem when they disagree or a log cannot be read.
    static func logsAgree(_ ports: [Int], _ http: HTTPClient) -> (through: UInt64, problems: [String]) {
        let pages = ports.map { port -> [LogEntryDigest]? in
            var entries: [LogEntryDigest] = []
            var from: UInt64 = 1
            while true {
                guard let response = try? http.send("GET", host: "127.0.0.1", port: port, path: "/log?from=\(from)", timeoutSeconds: 5),
                      let page = try? JSONBody.decode(LogPage.self, from: response.body)
                else { return nil }
                entries += page.entries.filter { $0.index <= page.commitIndex }
                guard let last = page.entries.last, last.index < page.commitIndex else { return entries }
                from = last.index + 1
            }
        }
        let logs = pages.compactMap { $0 }.filter { !$0.isEmpty }
        var problems: [String] = []
        if pages.contains(where: { $0 == nil }) { problems.append("could not read every node's log") }
        // Each node holds its committed entries from the first after its latest snapshot.
        let first = logs.map { $0.first?.index ?? UInt64.max }.max() ?? 1
        let last = logs.map { $0.last?.index ?? 0 }.min() ?? 0
        guard first <= last else { return (0, problems) }
        for index in first...last where Set(logs.map { $0[Int(index - $0[0].index)] }).count > 1 {
            problems.append("logs disagree at committed index \(index)")
            break
        }
        return (last, problems)
    }
}
