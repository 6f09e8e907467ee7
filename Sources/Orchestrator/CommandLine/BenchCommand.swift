import ClusterNode
import Foundation
import RaftSimulation
import Transport

/// `orchestrator bench ...`: release-mode benchmarks that print a table, or JSON with --json.
enum BenchCommand {
    static let usage = """
        usage: orchestrator bench raft [--entries N] [--json]
               orchestrator bench http [--seconds S] [--connections 1,16,64] [--json]
               orchestrator bench http --serve PORT
               orchestrator bench codec [--iterations N] [--json]
               orchestrator bench idle [--connections 10000] [--probes 200] [--port P --pid PID] [--json]
               orchestrator bench failover [--nodes 3,5] [--rounds 10] [--jitter-ms 500] [--fault kill|pause] [--etcd] [--json]
               orchestrator bench first-leader [--nodes 5] [--rounds 10] [--etcd] [--json]
               orchestrator bench commit [--nodes 3,5] [--clients 1,8,32,128] [--seconds 5] [--json]
               orchestrator bench scale [--clusters 20] [--nodes 5] [--seconds 60] [--heartbeat-ms 50] [--etcd] [--json]
               orchestrator bench compaction [--changes 100000] [--clients 16] [--snapshot-every 10000] [--json]
          raft   the Raft core alone: 3 in-process nodes committing 100-byte proposals,
                 at several batch sizes; then simulated fault-run events per second
          http   our HTTP server loaded by our HTTP client on loopback: GET and a 200-byte
                 JSON echo at 1, 16 and 64 keep-alive connections; --serve runs only the
                 server (for wrk)
          codec  a leader's per-request work off the network and disk: parsing a POST
                 /service, decoding its body, encoding its answer, the log entry's command,
                 a replication round's AppendEntries, a snapshot's encode and restore per
                 service, applying a created service (nanoseconds per operation)
          idle   the --serve server in its own process holding N idle keep-alive connections:
                 fresh requests timed connect to answer, idle ones asked again, and the
                 server's threads, descriptors and memory; --port and --pid measure another
                 server already running (GET /hello) instead
          failover  kill -9 (or SIGSTOP) the leader, time until a new leader and until a write commits again;
                    --etcd alternates each round with a local etcd of the same size, H and T
                    (Debian's etcd-server) and prints the ratios
          first-leader  fresh clusters: spawn to first leader and to first write; --etcd alternates
                    with fresh etcd clusters
          commit    service submissions through the leader, fsync on: latency and throughput
          scale     many clusters at once: idle CPU and memory per node, elections while idle,
                    (--etcd: then as many etcd clusters, idle CPU per member at the same H)
                    commit latency in one cluster as more run beside it
          compaction  service changes (create, scale, delete) and each node's data directory
                    size as they go: snapshots and compaction keep it bounded
        """

    static func run(_ words: [String]) throws -> Int32 {
        guard let subcommand = words.first else {
            print(usage)
            return 2
        }
        if words.dropFirst().contains(where: { $0 == "--help" || $0 == "-h" }) {
            print(usage)
            return 0
        }
        switch subcommand {
        case "raft": return try raft(Array(words.dropFirst()))
        case "http": return try http(Array(words.dropFirst()))
        case "idle": return try idle(Array(words.dropFirst()))
        case "codec": return try codec(Array(words.dropFirst()))
        case "failover", "first-leader", "commit", "scale", "compaction": return try cluster(subcommand, Array(words.dropFirst()))
        case "help", "--help", "-h": print(usage); return 0
        default:
            throw CommandLineArguments.Problem(description: "unknown benchmark \"\(subcommand)\"\n\(usage)")
        }
    }

    private static func codec(_ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(words, options: ["iterations"], flags: ["json"])
        let iterations = try arguments.integer("iterations", default: 100_000, in: 100...100_000_000)
        warnIfDebug()
        let results = try CodecBenchmark.run(iterations: iterations)
        if arguments.has("json") {
            print(String(decoding: try JSONBody.encode(results, pretty: true), as: UTF8.self))
        } else {
            print("per operation, fastest of 3 passes of \(iterations):")
            for result in results {
                print("  " + result.operation.padding(toLength: 44, withPad: " ", startingAt: 0) + String(format: "%8.0f ns", result.nanoseconds))
            }
        }
        return 0
    }

    private static func raft(_ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(words, options: ["entries", "seeds"], flags: ["json"])
        let entries = try arguments.integer("entries", default: 1_000_000, in: 1_000...100_000_000)
        let seeds = try arguments.integer("seeds", default: 200, in: 1...100_000)
        let json = arguments.has("json")
        warnIfDebug()
        let benchmark = CoreBenchmark()
        var rows: [CoreBenchmark.Result] = []
        for batchSize in [1, 16, 256] {
            let count = batchSize == 1 ? entries / 10 : entries
            if !json { FileHandle.standardError.write(Data("  committing \(count) entries in batches of \(batchSize)...\n".utf8)) }
            rows.append(benchmark.run(entries: count, batchSize: batchSize))
        }
        if !json { FileHandle.standardError.write(Data("  simulating \(seeds) fault-injection seeds...\n".utf8)) }
        let start = ContinuousClock.now
        var events = 0
        for seed in 1...UInt64(seeds) {
            events += try Simulation(options: SimulationOptions(seed: seed)).run().events
        }
        let simulationSeconds = (ContinuousClock.now - start).seconds
        let eventsPerSecond = Double(events) / simulationSeconds
        if json {
            let items = rows.map { #"{"batch": \#($0.batchSize), "entries": \#($0.committedEntries), "seconds": \#(String(format: "%.3f", $0.seconds)), "entriesPerSecond": \#(Int($0.entriesPerSecond)), "stepsPerSecond": \#(Int($0.stepsPerSecond))}"# }
            print(#"{"core": [\#(items.joined(separator: ", "))], "simulation": {"seeds": \#(seeds), "events": \#(events), "eventsPerSecond": \#(Int(eventsPerSecond))}}"#)
        } else {
            print("Raft core, 3 nodes in one process, 100-byte proposals, pipeline depth 4, invariants checked every step")
            print("batch   committed entries/s   core steps/s")
            for row in rows {
                print(pad(String(row.batchSize), 7) + pad(String(Int(row.entriesPerSecond)), 22) + pad(String(Int(row.stepsPerSecond)), 15))
            }
            print("simulation: \(seeds) seeds, \(events) events in \(String(format: "%.2f", simulationSeconds)) s = \(Int(eventsPerSecond)) events/s (one core, safety checked after every event)")
        }
        return 0
    }

    private static func http(_ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(words, options: ["seconds", "connections", "serve"], flags: ["json"])
        warnIfDebug()
        if arguments.options["serve"] != nil {
            try HTTPBenchmark.serve(port: try arguments.integer("serve", default: 8080, in: 0...65_535))
        }
        let seconds = Double(try arguments.integer("seconds", default: 3, in: 1...600))
        let counts = try (arguments.options["connections"] ?? "1,16,64").split(separator: ",").map { part -> Int in
            guard let count = Int(part), (1...1_024).contains(count) else {
                throw CommandLineArguments.Problem(description: "--connections takes numbers from 1 to 1024 separated by commas, got \"\(part)\"")
            }
            return count
        }
        let rows = try HTTPBenchmark.run(seconds: seconds, connectionCounts: counts)
        if arguments.has("json") {
            let items = rows.map { #"{"kind": "\#($0.kind)", "connections": \#($0.connections), "requestsPerSecond": \#(Int($0.requestsPerSecond)), "p50Milliseconds": \#(String(format: "%.3f", $0.p50)), "p99Milliseconds": \#(String(format: "%.3f", $0.p99)), "errors": \#($0.errors)}"# }
            print("[" + items.joined(separator: ", ") + "]")
        } else {
            print("HTTP on loopback, our client and server in one process sharing the cores (GET: 13-byte body; POST: 200-byte JSON decoded and encoded again)")
            print("request  connections      req/s   p50 ms   p99 ms  errors")
            for row in rows {
                print(pad(row.kind, 7) + pad(String(row.connections), 13) + pad(String(Int(row.requestsPerSecond)), 11)
                      + pad(String(format: "%.3f", row.p50), 9) + pad(String(format: "%.3f", row.p99), 9) + pad(String(row.errors), 8))
            }
        }
        return 0
    }

    private static func idle(_ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(words, options: ["connections", "probes", "port", "pid"], flags: ["json"])
        warnIfDebug()
        let connections = try arguments.integer("connections", default: 10_000, in: 1...60_000)
        let probes = try arguments.integer("probes", default: 200, in: 1...100_000)
        var external: (port: Int, pid: Int32)?
        if arguments.options["port"] != nil || arguments.options["pid"] != nil {
            guard arguments.options["port"] != nil, arguments.options["pid"] != nil else {
                throw CommandLineArguments.Problem(description: "--port and --pid go together: the server to measure and its process")
            }
            let pid = try arguments.integer("pid", default: 0, in: 1...Int(Int32.max))
            guard kill(Int32(pid), 0) == 0 else { throw CommandLineArguments.Problem(description: "no process \(pid)") }
            external = (try arguments.integer("port", default: 0, in: 1...65_535), Int32(pid))
        }
        let result = try IdleConnectionsBenchmark.run(connections: connections, probes: probes, external: external)
        let p50 = percentile(result.probes, 0.50), p99 = percentile(result.probes, 0.99), worst = result.probes.last ?? 0
        let (before, after) = result.server
        if arguments.has("json") {
            print(#"{"connections": \#(connections), "held": \#(result.held), "idleSampled": \#(result.sampled), "idleAnswered": \#(result.answeredOnIdle), "#
                  + #""freshP50Milliseconds": \#(String(format: "%.3f", p50)), "freshP99Milliseconds": \#(String(format: "%.3f", p99)), "freshMaxMilliseconds": \#(String(format: "%.3f", worst)), "#
                  + #""serverThreads": \#(after.threads), "serverResidentMB": \#(String(format: "%.1f", after.residentMB)), "serverResidentMBBefore": \#(String(format: "%.1f", before.residentMB))}"#)
        } else {
            let server = external.map { "the server on port \($0.port) (process \($0.pid))" } ?? "the benchmark server (a process of its own)"
            print("\(connections) idle keep-alive connections to \(server), then \(probes) fresh connections one after another")
            print("held by the server: \(result.held) descriptors beyond its own; idle ones asked again: \(result.answeredOnIdle) of \(result.sampled) answered")
            print("fresh connection, connect to answer: p50 \(String(format: "%.3f", p50)) ms, p99 \(String(format: "%.3f", p99)) ms, max \(String(format: "%.3f", worst)) ms")
            print("server: \(before.threads) -> \(after.threads) threads, \(String(format: "%.1f", before.residentMB)) -> \(String(format: "%.1f", after.residentMB)) MB resident")
        }
        return result.answeredOnIdle == result.sampled && result.held >= connections ? 0 : 1
    }

    private static func list(_ text: String?, default fallback: [Int], name: String, range: ClosedRange<Int>) throws -> [Int] {
        guard let text else { return fallback }
        return try text.split(separator: ",").map { part in
            guard let value = Int(part), range.contains(value) else {
                throw CommandLineArguments.Problem(description: "--\(name) takes numbers from \(range.lowerBound) to \(range.upperBound) separated by commas, got \"\(part)\"")
            }
            return value
        }
    }

    private static func cluster(_ kind: String, _ words: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments.parse(words, options: ["nodes", "rounds", "clients", "seconds", "clusters", "jitter-ms", "changes", "snapshot-every", "fault", "heartbeat-ms"], flags: ["json", "etcd"])
        warnIfDebug()
        let json = arguments.has("json")
        if arguments.has("etcd") {
            guard ["failover", "first-leader", "scale"].contains(kind) else { throw CommandLineArguments.Problem(description: "--etcd is for failover, first-leader and scale") }
            guard EtcdCluster.installedPath() != nil else { throw CommandLineArguments.Problem(description: "--etcd needs etcd on PATH (apt-get install etcd-server)") }
        }
        let benchmarks = try ClusterBenchmarks()
        defer { benchmarks.finish() }
        Signals.onTermination {
            benchmarks.finish()
            _exit(130)
        }
        func emit<T: Encodable>(_ value: T) throws { print(String(decoding: try JSONBody.encode(value, pretty: true), as: UTF8.self)) }
        func ms(_ value: Double) -> String { String(format: "%.0f", value) }
        switch kind {
        case "failover":
            let rounds = try arguments.integer("rounds", default: 10, in: 1...1_000)
            let fault = arguments.options["fault"] ?? "kill"
            guard ["kill", "pause"].contains(fault) else { throw CommandLineArguments.Problem(description: "--fault takes kill or pause, got \"\(fault)\"") }
            let sizes = try list(arguments.options["nodes"], default: [3, 5], name: "nodes", range: ClusterLimits.nodes)
            let faultName = fault == "kill" ? "kill -9" : "SIGSTOP"
            func cells(_ summary: ClusterBenchmarks.Summary) -> String {
                pad(ms(summary.median), 8) + pad(ms(summary.p90), 6) + pad(ms(summary.p99), 6) + pad(ms(summary.max), 6)
            }
            if arguments.has("etcd") {
                guard arguments.options["jitter-ms"] == nil else { throw CommandLineArguments.Problem(description: "--jitter-ms has no etcd counterpart; leave it out with --etcd") }
                var pairs: [(ours: ClusterBenchmarks.FailoverRow, etcd: ClusterBenchmarks.FailoverRow)] = []
                for nodes in sizes { pairs.append(try benchmarks.failoverAgainstEtcd(nodes: nodes, rounds: rounds, fault: fault)) }
                if json {
                    struct Pair: Encodable { var ours: ClusterBenchmarks.FailoverRow; var etcd: ClusterBenchmarks.FailoverRow }
                    try emit(pairs.map { Pair(ours: $0.ours, etcd: $0.etcd) })
                    return 0
                }
                print("\(faultName) of the leader, ours and etcd alternated round by round (H = 50 ms, T = 500 ms, \(rounds) rounds each), times in ms")
                print("nodes  system   elected: median   p90   p99   max   write committed: median   p90   p99   max")
                for pair in pairs {
                    for (system, row) in [("ours", pair.ours), ("etcd", pair.etcd)] {
                        print(pad(String(row.nodes), 5) + pad(system, 8) + pad("", 9) + cells(row.electionMilliseconds) + pad("", 17) + cells(row.writeMilliseconds))
                    }
                    func ratio(_ a: Double, _ b: Double) -> String { b > 0 ? String(format: "%.2f", a / b) : "-" }
                    let (o, e) = (pair.ours, pair.etcd)
                    print(pad(String(o.nodes), 5) + pad("ratio", 8) + pad("", 9)
                          + pad(ratio(o.electionMilliseconds.median, e.electionMilliseconds.median), 8) + pad(ratio(o.electionMilliseconds.p90, e.electionMilliseconds.p90), 6)
                          + pad(ratio(o.electionMilliseconds.p99, e.electionMilliseconds.p99), 6) + pad(ratio(o.electionMilliseconds.max, e.electionMilliseconds.max), 6)
                          + pad("", 17)
                          + pad(ratio(o.writeMilliseconds.median, e.writeMilliseconds.median), 8) + pad(ratio(o.writeMilliseconds.p90, e.writeMilliseconds.p90), 6)
                          + pad(ratio(o.writeMilliseconds.p99, e.writeMilliseconds.p99), 6) + pad(ratio(o.writeMilliseconds.max, e.writeMilliseconds.max), 6))
                }
                return 0
            }
            var rows: [ClusterBenchmarks.FailoverRow] = []
            for nodes in sizes {
                let jitter = arguments.options["jitter-ms"] == nil ? nil : try arguments.integer("jitter-ms", default: 500, in: 20...500)
                rows.append(try benchmarks.failover(nodes: nodes, rounds: rounds, jitterMs: jitter, fault: fault))
            }
            if json { try emit(rows); return 0 }
            print("\(faultName) of the leader (H = 50 ms, T = 500 ms, timeout in [T, T + \(arguments.options["jitter-ms"] ?? "500") ms), \(rounds) rounds per size), times in ms")
            print("nodes  start->leader   elected: median   p90   p99   max   write committed: median   p90   p99   max")
            for row in rows {
                print(pad(String(row.nodes), 5) + pad(String(format: "%.2f s", row.startToLeaderSeconds), 15) + pad("", 3) + cells(row.electionMilliseconds)
                      + pad("", 17) + cells(row.writeMilliseconds))
            }
        case "first-leader":
            let rounds = try arguments.integer("rounds", default: 10, in: 1...200)
            let nodes = try arguments.integer("nodes", default: 5, in: ClusterLimits.nodes)
            let rows = try benchmarks.firstLeader(nodes: nodes, rounds: rounds, etcd: arguments.has("etcd"))
            if json { try emit(rows); return 0 }
            func seconds(_ value: Double) -> String { String(format: "%.3f", value) }
            print("fresh clusters of \(nodes) nodes, spawned one after another (H = 50 ms, T = 500 ms, \(rounds) rounds), seconds from spawning")
            print("system   first leader: median   p90   max     first write: median   p90   max")
            for row in rows {
                print(pad(row.system, 6) + pad(seconds(row.leaderSeconds.median), 23) + pad(seconds(row.leaderSeconds.p90), 7) + pad(seconds(row.leaderSeconds.max), 7)
                      + pad(seconds(row.firstWriteSeconds.median), 22) + pad(seconds(row.firstWriteSeconds.p90), 7) + pad(seconds(row.firstWriteSeconds.max), 7))
            }
            if rows.count == 2 {
                print("ours / etcd: first leader median \(String(format: "%.2f", rows[0].leaderSeconds.median / rows[1].leaderSeconds.median)), "
                      + "first write median \(String(format: "%.2f", rows[0].firstWriteSeconds.median / rows[1].firstWriteSeconds.median))")
            }
        case "commit":
            let seconds = Double(try arguments.integer("seconds", default: 5, in: 1...600))
            var rows: [ClusterBenchmarks.CommitRow] = []
            for nodes in try list(arguments.options["nodes"], default: [3, 5], name: "nodes", range: ClusterLimits.nodes) {
                let (cluster, _) = try benchmarks.startCluster(nodes: nodes, id: "commit-\(nodes)")
                for clients in try list(arguments.options["clients"], default: [1, 8, 32, 128], name: "clients", range: 1...1_024) {
                    ClusterBenchmarks.progress("\(nodes) nodes, \(clients) clients, \(Int(seconds)) s...")
                    rows.append(try benchmarks.measureCommits(cluster: cluster, clients: clients, seconds: seconds))
                }
                benchmarks.supervisor.removeCluster(cluster.id, deleteData: true)
            }
            if json { try emit(rows); return 0 }
            print("service submissions to the leader (POST /service, 1 replica each), fsync on, until committed and applied")
            print("nodes  clients   commits/s   p50 ms   p99 ms   max ms  errors")
            for row in rows {
                print(pad(String(row.nodes), 5) + pad(String(row.clients), 9) + pad(String(Int(row.commitsPerSecond)), 12)
                      + pad(String(format: "%.2f", row.p50Milliseconds), 9) + pad(String(format: "%.2f", row.p99Milliseconds), 9)
                      + pad(String(format: "%.1f", row.maxMilliseconds), 9) + pad(String(row.errors), 8))
            }
        case "compaction":
            let changes = try arguments.integer("changes", default: 100_000, in: 1_000...10_000_000)
            let every = try arguments.integer("snapshot-every", default: 10_000, in: ClusterLimits.snapshotEveryEntries)
            let samples = try benchmarks.compaction(changes: changes, clients: try arguments.integer("clients", default: 16, in: 1...256),
                                                    snapshotEvery: every, sampleEvery: max(1, changes / 10))
            if json { try emit(samples); return 0 }
            print("service changes (create, scale, delete) through the leader of 3 nodes, snapshot every \(every) entries; data directory per node")
            print("changes   seconds   snapshot at   log from   commit     data directories (KiB)")
            for row in samples {
                print(pad(String(row.changes), 7) + pad(String(format: "%.1f", row.seconds), 10) + pad(String(row.leaderSnapshotIndex), 14)
                      + pad(String(row.leaderFirstLogIndex), 11) + pad(String(row.leaderCommitIndex), 9) + "     "
                      + row.dataBytesByNode.map { String($0 / 1024) }.joined(separator: ", "))
            }
        default:
            let clusters = try arguments.integer("clusters", default: 20, in: 1...100)
            let nodes = try arguments.integer("nodes", default: 5, in: ClusterLimits.nodes)
            let heartbeat = try arguments.integer("heartbeat-ms", default: 50, in: 10...1_000)
            let seconds = Double(try arguments.integer("seconds", default: 60, in: 1...3_600))
            let row = try benchmarks.scale(clusters: clusters, nodes: nodes, heartbeatMs: heartbeat, idleSeconds: seconds)
            var etcdPercent: Double?
            if arguments.has("etcd") {
                benchmarks.supervisor.stopAll()
                etcdPercent = try benchmarks.etcdIdleCPU(clusters: clusters, nodes: nodes, heartbeatMs: heartbeat, idleSeconds: seconds)
            }
            if json {
                struct WithEtcd: Encodable { var ours: ClusterBenchmarks.ScaleRow; var etcdCPUPercentPerMember: Double? }
                try emit(WithEtcd(ours: row, etcdCPUPercentPerMember: etcdPercent))
                return 0
            }
            print("\(row.clusters) clusters x \(row.nodesPerCluster) nodes = \(row.clusters * row.nodesPerCluster) node processes, H = \(heartbeat) ms, idle for \(Int(row.idleSeconds)) s")
            print(String(format: "  CPU: %.1f%% of one core in total, %.2f%% per node", row.totalCPUPercentOfOneCore, row.cpuPercentPerNode))
            if let etcdPercent {
                print(String(format: "  etcd, as many members, same H, idle as long: %.2f%% per member; ours / etcd: %.2f", etcdPercent, row.cpuPercentPerNode / max(etcdPercent, 0.0001)))
            }
            print(String(format: "  resident memory per node (RSS): median %.1f MB, p90 %.1f MB, max %.1f MB", row.residentMBPerNode.median, row.residentMBPerNode.p90, row.residentMBPerNode.max))
            print(String(format: "  proportional (PSS): median %.1f MB; the node's own (private dirty): median %.1f MB, max %.1f MB", row.proportionalMBPerNode.median, row.privateMBPerNode.median, row.privateMBPerNode.max))
            print("  elections (and pre-votes) while idle: \(row.electionsWhileIdle)")
            print("  commit p50 in cluster 0 with N clusters running: " + row.commitP50ByClusters.sorted { Int($0.key)! < Int($1.key)! }.map { "\($0.key): \(String(format: "%.2f", $0.value)) ms" }.joined(separator: ", "))
        }
        return 0
    }

    static func warnIfDebug() {
        #if DEBUG
        FileHandle.standardError.write(Data("warning: this is a debug build; benchmarks need `swift run -c release orchestrator bench ...`\n".utf8))
        #endif
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}
