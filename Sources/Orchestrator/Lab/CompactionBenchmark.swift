import ClusterNode
import Foundation
import Transport

/// `orchestrator bench compaction`: many service changes (create, scale, delete) through
/// the leader of a 3-node cluster, sampling each node's data directory as they go, to
/// show that snapshots and log compaction keep it bounded.
extension ClusterBenchmarks {
    struct CompactionSample: Codable {
        var changes: Int
        var seconds: Double
        /// Bytes in each node's data directory (write-ahead log segments and snapshot), largest first.
        var dataBytesByNode: [Int]
        var leaderSnapshotIndex: UInt64
        var leaderFirstLogIndex: UInt64
        var leaderCommitIndex: UInt64
    }

    func compaction(changes: Int, clients: Int, snapshotEvery: Int, sampleEvery: Int) throws -> [CompactionSample] {
        var settings = ClusterSettings(nodes: 3, heartbeatMs: 50, electionTimeoutMs: 500, capacity: 1_000_000, unhealthyAfterMs: 3_600_000)
        settings.snapshotEveryEntries = snapshotEvery
        let cluster = try supervisor.createCluster(id: "compaction", settings: settings, basePort: nil, searchFrom: 20_000 + Int.random(in: 0..<20_000))
        guard let (leader, _) = try leader(of: cluster, timeout: 10) else { throw LabError("no leader") }
        let run = CompactionRun(sampleEvery: sampleEvery)
        let started = Date()
        let sample: @Sendable (Int) -> CompactionSample = { [self] count in
            let stats = try? JSONSerialization.jsonObject(with: Data(client.get(host: "127.0.0.1", port: leader, path: "/stats", timeoutSeconds: 2).body)) as? [String: Any]
            let row = CompactionSample(
                changes: count, seconds: Date().timeIntervalSince(started),
                dataBytesByNode: cluster.nodes.map { Self.directoryBytes($0.dataDirectory) }.sorted(by: >),
                leaderSnapshotIndex: (stats?["snapshotIndex"] as? UInt64) ?? 0, leaderFirstLogIndex: (stats?["firstLogIndex"] as? UInt64) ?? 0,
                leaderCommitIndex: (stats?["commitIndex"] as? UInt64) ?? 0)
            Self.progress("\(count) changes: data directories \(row.dataBytesByNode.map { "\($0 / 1024) KiB" }.joined(separator: ", "))")
            return row
        }
        let group = DispatchGroup()
        for worker in 0..<clients {
            group.enter()
            Thread { [self] in
                var cycle = 0
                while run.lock.withLock({ run.done < changes }) {
                    cycle += 1
                    // One service's life: created, scaled up, deleted (three committed changes).
                    let tag = "c\(worker)-\(cycle)-\(RandomID.uuidString().prefix(8))"
                    let created = try? client.postJSON(host: "127.0.0.1", port: leader, path: "/service",
                                                       body: Array(#"{"requestId": "\#(tag)", "container": {"name": "\#(tag)", "replicas": 1}}"#.utf8), timeoutSeconds: 10)
                    guard created?.status == .created, let body = created?.body,
                          let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                          let id = (object["services"] as? [[String: Any]])?.first?["id"] as? Int
                    else { continue }
                    let scaled = try? client.send("PATCH", host: "127.0.0.1", port: leader, path: "/services/\(id)",
                                                  headers: HTTPHeaders([("Content-Type", "application/json")]), body: Array(#"{"replicas": 2}"#.utf8), timeoutSeconds: 10)
                    let deleted = try? client.send("DELETE", host: "127.0.0.1", port: leader, path: "/services/\(id)", timeoutSeconds: 10)
                    let succeeded = 1 + (scaled?.status == .ok ? 1 : 0) + (deleted.map { $0.status.rawValue < 300 ? 1 : 0 } ?? 0)
                    run.lock.withLock {
                        run.done += succeeded
                        if run.done >= run.nextSample {
                            run.nextSample += sampleEvery
                            run.samples.append(sample(run.done))
                        }
                    }
                }
                group.leave()
            }.start()
        }
        group.wait()
        // Let the followers catch up and snapshot too, then a last look.
        usleep(1_000_000)
        run.samples.append(sample(run.done))
        supervisor.removeCluster(cluster.id, deleteData: true)
        return run.samples
    }

    /// The shared progress of the benchmark's client threads.
    final class CompactionRun: @unchecked Sendable {
        let lock = NSLock()
        var done = 0
        var nextSample: Int
        var samples: [CompactionSample] = []
        init(sampleEvery: Int) { nextSample = sampleEvery }
    }

    /// Bytes in the regular files under `path`.
    static func directoryBytes(_ path: String) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        for case let name as String in walker {
            total += ((try? FileManager.default.attributesOfItem(atPath: path + "/" + name))?[.size] as? Int) ?? 0
        }
        return total
    }
}
