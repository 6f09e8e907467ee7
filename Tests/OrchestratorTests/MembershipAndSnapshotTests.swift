#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Testing

/// Membership changes and snapshots with real processes: a cluster grown and shrunk under
/// load, and nodes that catch up, or restart, from snapshots.
@Suite(.serialized) struct MembershipAndSnapshotTests {
    /// Submits services one after another until stopped, retrying each (with its request
    /// ID) until it is acknowledged; remembers the names acknowledged.
    final class Writer: @unchecked Sendable {
        private let lock = NSLock()
        private var stopped = false
        private(set) var acknowledged: [String] = []
        private var failures: [String] = []
        private let done = DispatchSemaphore(value: 0)

        func start(_ orchestrator: OrchestratorHarness, cluster: String) {
            Thread { [self] in
                var number = 0
                while !lock.withLock({ stopped }) {
                    number += 1
                    let name = "w\(number)"
                    let body = #"{"requestId": "req-\#(name)", "container": {"name": "\#(name)", "replicas": 1}}"#
                    var isAcknowledged = false
                    for _ in 0..<40 where !isAcknowledged {
                        let status = (try? orchestrator.json("POST", "/clusters/\(cluster)/service", body).status) ?? 0
                        isAcknowledged = status == 201
                        if !isAcknowledged { usleep(50_000) }
                    }
                    lock.withLock {
                        if isAcknowledged { acknowledged.append(name) } else { failures.append(name) }
                    }
                }
                done.signal()
            }.start()
        }

        /// Stops and returns (acknowledged, never acknowledged).
        func stop() -> ([String], [String]) {
            lock.withLock { stopped = true }
            done.wait()
            return lock.withLock { (acknowledged, failures) }
        }

        var count: Int { lock.withLock { acknowledged.count } }
    }

    static func ports(_ summary: Any?) -> [Int] {
        ((summary as? [String: Any])?["nodes"] as? [[String: Any]] ?? []).compactMap { $0["port"] as? Int }.sorted()
    }

    static func services(_ orchestrator: OrchestratorHarness, cluster: String) throws -> [[String: Any]] {
        let answer = try orchestrator.json("GET", "/clusters/\(cluster)/services")
        return (answer.body as? [String: Any])?["results"] as? [[String: Any]] ?? []
    }

    /// T = 2 s instead of 0.5: in the full suite seven debug-build nodes and a writer run
    /// beside the other suites on two cores (40-60 s there, 2.5 s alone), and once the
    /// hand-over missed its bound of two election timeouts and then no node led steadily for
    /// seconds, as when election timeouts expire on live but starved leaders (not reproduced
    /// since, in five full runs). What is checked does not depend on T.
    @Test func clusterGrownFrom3To7AndShrunkTo3UnderLoadLosesNothing() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3, extraArguments: ["--election-timeout-ms", "2000"])
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let writer = Writer()
        writer.start(orchestrator, cluster: "0")
        while writer.count < 20 { usleep(10_000) }

        #expect(try orchestrator.json("PUT", "/clusters/0", #"{"nodes": 0}"#).status == 400)
        #expect(try orchestrator.json("PUT", "/clusters/0", #"{"nodes": "seven"}"#).status == 400)
        #expect(try orchestrator.json("PUT", "/clusters/nope", #"{"nodes": 3}"#).status == 404)
        let grown = try orchestrator.json("PUT", "/clusters/0", #"{"nodes": 7}"#)
        #expect(grown.status == 200, "\(grown.text)")
        let grownPorts = Self.ports((grown.body as? [String: Any])?["cluster"])
        #expect(grownPorts.count == 7)
        _ = try orchestrator.nodes()  // track the new processes' PIDs
        let members = try orchestrator.json("GET", "/members", port: grownPorts[0]).body as? [String: Any]
        #expect((members?["voters"] as? [String])?.count == 7 && (members?["learners"] as? [String])?.isEmpty == true)

        // The newest node will be removed first: make it the leader, so the leader's own
        // removal (after it hands over) is part of the shrink.
        let moved = try orchestrator.json("POST", "/clusters/0/leader", #"{"node": \#(grownPorts.last!)}"#)
        #expect(moved.status == 200, "\(moved.text)")
        let before = writer.count
        while writer.count < before + 20 { usleep(10_000) }

        let shrunk = try orchestrator.json("PUT", "/clusters/0", #"{"nodes": 3}"#)
        #expect(shrunk.status == 200, "\(shrunk.text)")
        let steps = (shrunk.body as? [String: Any])?["steps"] as? [String] ?? []
        #expect(steps.contains { $0.contains("handed over") }, "\(steps)")
        let finalPorts = Self.ports((shrunk.body as? [String: Any])?["cluster"])
        #expect(finalPorts == Array(grownPorts.prefix(3)))
        let afterShrink = writer.count
        while writer.count < afterShrink + 20 { usleep(10_000) }
        let (acknowledged, failed) = writer.stop()
        #expect(failed.isEmpty, "never acknowledged: \(failed)")

        // Every acknowledged service is there, and (once the leader has moved them) no
        // replica is left on a removed node.
        let deadline = Date().addingTimeInterval(15)
        var names = Set<String>()
        var stranded: [String] = []
        repeat {
            let services = try Self.services(orchestrator, cluster: "0")
            names = Set(services.compactMap { $0["name"] as? String })
            stranded = services.filter { service in
                let placement = service["placement"] as? [String: Int] ?? [:]
                return placement.keys.contains { key in !finalPorts.contains(Int(key.split(separator: ":").last!)!) }
            }.compactMap { $0["name"] as? String }
            if names.isSuperset(of: acknowledged) && stranded.isEmpty { break }
            usleep(100_000)
        } while Date() < deadline
        #expect(Set(acknowledged).subtracting(names).isEmpty, "lost: \(Set(acknowledged).subtracting(names).sorted())")
        #expect(stranded.isEmpty, "replicas left on removed nodes: \(stranded)")
        for port in finalPorts {
            let view = try orchestrator.json("GET", "/members", port: port).body as? [String: Any]
            #expect((view?["voters"] as? [String])?.count == 3, "\(port): \(String(describing: view))")
        }
        #expect(acknowledged.count >= 60)
    }

    @Test func restartedNodeCatchesUpBySnapshotAndRestartsFromItsOwn() throws {
        let orchestrator = try OrchestratorHarness(nodes: 1)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let created = try orchestrator.json("POST", "/clusters", #"{"id": "s", "nodes": 3, "snapshotEveryEntries": 20}"#)
        #expect(created.status == 201, "\(created.text)")
        let summary = try orchestrator.waitForLeader(cluster: "s")
        let leader = Int((summary["leader"] as! String).split(separator: ":").last!)!
        let victim = try orchestrator.nodes(cluster: "s").map(\.port).first { $0 != leader }!
        #expect(try orchestrator.json("POST", "/clusters/s/nodes/\(victim)/kill").status == 200)
        for number in 1...120 {
            let status = try orchestrator.json("POST", "/clusters/s/service", #"{"container": {"name": "s\#(number)", "replicas": 1}}"#).status
            #expect(status == 201)
        }
        #expect(try orchestrator.json("POST", "/clusters/s/nodes/\(victim)/restart").status == 200)
        _ = try orchestrator.nodes(cluster: "s")

        // It is behind the leader's compacted log, so it catches up by a snapshot.
        let deadline = Date().addingTimeInterval(15)
        var stats: [String: Any] = [:]
        repeat {
            stats = (try? orchestrator.json("GET", "/stats", port: victim).body as? [String: Any]) ?? [:]
            if stats["services"] as? Int == 120 { break }
            usleep(50_000)
        } while Date() < deadline
        #expect(stats["services"] as? Int == 120, "\(stats)")
        #expect(((stats["counters"] as? [String: Int])?["snapshotsInstalled"] ?? 0) >= 1, "\(stats)")
        // Every 20 entries while the state is small, then as the log grows as large as the
        // last snapshot (about 120 bytes a service here): a snapshot past 40 either way.
        #expect((stats["snapshotIndex"] as? Int ?? 0) >= 40)
        let leaderStats = try orchestrator.json("GET", "/stats", port: leader).body as? [String: Any]
        #expect((leaderStats?["firstLogIndex"] as? Int ?? 0) > 1, "the leader compacted its log")

        // Restarted again, it starts from its own snapshot (and the entries after it).
        #expect(try orchestrator.json("POST", "/clusters/s/nodes/\(victim)/restart").status == 200)
        _ = try orchestrator.nodes(cluster: "s")
        var restarted: [String: Any] = [:]
        let again = Date().addingTimeInterval(10)
        repeat {
            restarted = (try? orchestrator.json("GET", "/stats", port: victim).body as? [String: Any]) ?? [:]
            if restarted["services"] as? Int == 120 { break }
            usleep(20_000)
        } while Date() < again
        #expect(restarted["services"] as? Int == 120, "\(restarted)")
        #expect((restarted["snapshotIndex"] as? Int ?? 0) >= 40)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: orchestrator.dataDirectory + "/cluster-s/node-\(victim)/raft")) ?? []
        #expect(files.filter { $0.hasPrefix("snapshot-") && $0.hasSuffix(".snap") }.count == 1, "\(files)")
    }
}
