#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import ClusterNode
import Foundation
import Testing
import Transport

/// A real `orchestrator` process on free ports with a temporary data directory, for
/// end-to-end tests. `stop()` ends it and checks that no node process it spawned lives on.
final class OrchestratorHarness: @unchecked Sendable {
    let port: Int
    let dataDirectory: String
    let process = Process()
    private let stdinPipe = Pipe()
    let client: HTTPClient
    private(set) var nodePIDs: Set<Int32> = []

    /// The `orchestrator` built beside this test bundle.
    static var executable: String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("orchestrator").path
    }

    /// Port ranges handed out in this test process: tests run in parallel, and a range free
    /// when checked may not be bound yet when another test checks, so none is given twice.
    private static let reservedLock = NSLock()
    nonisolated(unsafe) private static var reserved: [Range<Int>] = []

    /// A base port with `count` free ports after it, overlapping no range given before.
    static func freePortRun(_ count: Int) -> Int {
        while true {
            let base = Int.random(in: HTTPServer.listeningPortRange.lowerBound..<(HTTPServer.listeningPortRange.upperBound - count))
            let range = base..<(base + count)
            let isNew = reservedLock.withLock { () -> Bool in
                guard !reserved.contains(where: { $0.overlaps(range) }) else { return false }
                reserved.append(range)
                return true
            }
            guard isNew else { continue }
            let isFree = range.allSatisfy { port in
                let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                defer { close(descriptor) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                return withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                } == 0
            }
            if isFree { return base }
        }
    }

    init(nodes: Int = 5, extraArguments: [String] = []) throws {
        port = Self.freePortRun(40)
        dataDirectory = NSTemporaryDirectory() + "orchestrator-e2e-" + UUID().uuidString
        var configuration = HTTPClient.Configuration()
        configuration.requestTimeoutSeconds = 10
        client = HTTPClient(configuration: configuration)
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["--port", String(port), "--nodes", String(nodes), "--data-dir", dataDirectory, "--watch-parent"] + extraArguments
        process.standardInput = stdinPipe
        let log = FileManager.default.createFile(atPath: dataDirectory + ".log", contents: nil)
        _ = log
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: dataDirectory + ".log"))
        process.standardError = process.standardOutput
        try process.run()
    }

    /// Waits until cluster `id` has a leader (polling); returns its summary.
    @discardableResult
    func waitForLeader(cluster id: String = "0", seconds: Double = 20) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let summary = try? json("GET", "/clusters/\(id)").body as? [String: Any], summary["leader"] is String {
                for node in summary["nodes"] as? [[String: Any]] ?? [] {
                    if let pid = node["pid"] as? Int { nodePIDs.insert(Int32(pid)) }
                }
                return summary
            }
            guard process.isRunning else { throw HarnessError("orchestrator exited: \(log)") }
            usleep(20_000)
        }
        throw HarnessError("no leader in cluster \(id) within \(seconds) s: \(log)")
    }

    /// Sends a request to the orchestrator (or to `port` when given) and parses the JSON answer.
    func json(_ method: String, _ path: String, _ body: String? = nil, port: Int? = nil) throws -> (status: Int, body: Any?, text: String) {
        let response = try client.send(method, host: "127.0.0.1", port: port ?? self.port, path: path,
                                       headers: HTTPHeaders([("Content-Type", "application/json")]), body: Array((body ?? "").utf8))
        let parsed = response.body.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(response.body))
        return (response.status.rawValue, parsed, response.bodyText)
    }

    /// Polls `condition` until it holds (true) or `seconds` pass (false).
    func waitUntil(_ what: String, seconds: Double, _ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            guard process.isRunning else { throw HarnessError("orchestrator exited waiting until \(what): \(log)") }
            usleep(20_000)
        }
        return false
    }

    /// The node ports of cluster `id`, with each node's reported state and term.
    func nodes(cluster id: String = "0") throws -> [(port: Int, state: String?, term: Int?)] {
        let summary = try json("GET", "/clusters/\(id)").body as? [String: Any]
        return (summary?["nodes"] as? [[String: Any]] ?? []).map { node in
            if let pid = node["pid"] as? Int { nodePIDs.insert(Int32(pid)) }
            return (node["port"] as? Int ?? 0, node["state"] as? String, node["term"] as? Int)
        }
    }

    /// A node of cluster `id` other than `leader` that answers as a follower, waiting for one:
    /// a leader needs only a majority, so on a busy machine another node may still be starting
    /// (not yet listening) when the leader is known.
    func follower(besides leader: Int, cluster id: String = "0", seconds: Double = 20) throws -> Int {
        var found: Int?
        _ = try waitUntil("a follower besides \(leader)", seconds: seconds) {
            found = try nodes(cluster: id).first { $0.port != leader && $0.state == "follower" }?.port
            return found != nil
        }
        guard let found else { throw HarnessError("no node besides \(leader) answered as a follower within \(seconds) s: \(log)") }
        return found
    }

    var log: String { (try? String(contentsOfFile: dataDirectory + ".log", encoding: .utf8)) ?? "" }

    /// Stops the orchestrator (SIGTERM) and checks every node it spawned has exited.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning, Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? stdinPipe.fileHandleForWriting.close()  // already closed if the process ended
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !livingNodes().isEmpty { usleep(10_000) }
        #expect(livingNodes().isEmpty, "node processes outlived the orchestrator: \(livingNodes())")
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try? FileManager.default.removeItem(atPath: dataDirectory + ".log")
    }

    /// Spawned node PIDs still running (a zombie awaiting its reaper has exited).
    func livingNodes() -> [Int32] {
        nodePIDs.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
            guard let close = stat.lastIndex(of: ")") else { return false }
            let state = stat[stat.index(close, offsetBy: 2)]
            return state != "Z" && state != "X"
        }.sorted()
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
