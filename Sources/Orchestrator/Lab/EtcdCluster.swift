#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Transport

/// A local etcd cluster (Debian's `etcd-server`) for the benchmarks that compare against it:
/// members on free ports, data in a temporary directory, driven over etcd's JSON gateway
/// (`/v3/maintenance/status`, `/v3/kv/put`) by the same HTTP client and the same polling
/// as our clusters, so both sides are measured alike.
final class EtcdCluster: ClusterBenchmarks.FailoverSubject, @unchecked Sendable {
    struct Member {
        var name: String
        var clientPort: Int
        var peerPort: Int
        var process: Process?
    }

    static let executable = "etcd"
    var name: String { "etcd" }
    let heartbeatMs: Int
    let electionTimeoutMs: Int
    let dataRoot: String
    private(set) var members: [Member]
    private let client: HTTPClient
    private let key = Array("bench".utf8).base64
    private let value = Array(repeating: UInt8(ascii: "x"), count: 100).base64

    /// The path of `etcd` on PATH, or nil.
    static func installedPath() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(executable)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Spawns `nodes` members (a new cluster, fresh data) and returns once every member answers.
    init(nodes: Int, heartbeatMs: Int, electionTimeoutMs: Int, client: HTTPClient, searchFrom: Int) throws {
        guard Self.installedPath() != nil else { throw LabError("etcd is not installed (apt-get install etcd-server)") }
        self.heartbeatMs = heartbeatMs
        self.electionTimeoutMs = electionTimeoutMs
        self.client = client
        dataRoot = NSTemporaryDirectory() + "orchestrator-etcd-" + UUID().uuidString
        var ports: [Int] = []
        var candidate = searchFrom
        while ports.count < 2 * nodes {
            if HTTPServer.isPortFree(port: candidate) { ports.append(candidate) }
            candidate += 1
            guard candidate < 65_000 else { throw LabError("no free ports for etcd") }
        }
        members = (0..<nodes).map { Member(name: "e\($0 + 1)", clientPort: ports[2 * $0], peerPort: ports[2 * $0 + 1], process: nil) }
        try FileManager.default.createDirectory(atPath: dataRoot, withIntermediateDirectories: true)
        do {
            for index in members.indices { try start(index) }
            try waitUntilAnswering(members.indices, timeout: 20)
        } catch {
            finish()
            throw error
        }
    }

    deinit { finish() }

    var lastPort: Int { members.map { max($0.clientPort, $0.peerPort) }.max() ?? 0 }

    /// Starts member `index` (again): a restarted member finds its data directory and rejoins.
    func start(_ index: Int) throws {
        let member = members[index]
        let cluster = members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.installedPath() ?? Self.executable)
        process.arguments = [
            "--name", member.name, "--data-dir", "\(dataRoot)/\(member.name)",
            "--listen-client-urls", "http://127.0.0.1:\(member.clientPort)", "--advertise-client-urls", "http://127.0.0.1:\(member.clientPort)",
            "--listen-peer-urls", "http://127.0.0.1:\(member.peerPort)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(member.peerPort)",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--heartbeat-interval", String(heartbeatMs), "--election-timeout", String(electionTimeoutMs),
        ]
        let log = "\(dataRoot)/\(member.name).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        handle?.seekToEndOfFile()
        process.standardOutput = handle ?? FileHandle.nullDevice
        process.standardError = handle ?? FileHandle.nullDevice
        try process.run()
        members[index].process = process
    }

    func waitUntilAnswering(_ indexes: some Sequence<Int>, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        for index in indexes {
            while (try? client.get(host: "127.0.0.1", port: members[index].clientPort, path: "/version", timeoutSeconds: 0.5))?.status != .ok {
                guard Date() < deadline, members[index].process?.isRunning == true else {
                    throw LabError("etcd member \(members[index].name) did not answer (log: \(dataRoot)/\(members[index].name).log)")
                }
                usleep(5_000)
            }
        }
    }

    /// kill -9 (`kill`) or SIGSTOP (`pause`) of member `index`.
    func fault(_ index: Int, kind: String) {
        guard let process = members[index].process else { return }
        if kind == "pause" {
            kill(process.processIdentifier, SIGSTOP)
        } else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            members[index].process = nil
        }
    }

    /// Restarts a killed member or resumes a paused one, and waits until it answers.
    func recover(_ index: Int, kind: String) throws {
        if kind == "pause" {
            if let process = members[index].process { kill(process.processIdentifier, SIGCONT) }
        } else {
            try start(index)
        }
        try waitUntilAnswering([index], timeout: 20)
    }

    /// The member that reports itself leader in a term above `term` (every member asked
    /// once a round, one after another, like our clusters), polled until `timeout`.
    func leader(excluding excluded: Int?, newerThan term: UInt64, timeout: Double) -> (member: Int, term: UInt64)? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            var best: (member: Int, term: UInt64)?
            for index in members.indices where index != excluded && members[index].process != nil {
                guard let status = self.status(of: index), status.isLeader, status.term > term else { continue }
                if best == nil || status.term > best!.term { best = (index, status.term) }
            }
            if let best { return best }
            usleep(1_000)
        } while Date() < deadline
        return nil
    }

    /// One put of a 100-byte value to member `index`; true once etcd acknowledged it (etcd
    /// answers a put only after it committed: fsync on a majority).
    func write(to index: Int, timeout: Double) -> Bool {
        let body = #"{"key": "\#(key)", "value": "\#(value)"}"#
        guard let response = try? client.postJSON(host: "127.0.0.1", port: members[index].clientPort, path: "/v3/kv/put",
                                                   body: Array(body.utf8), timeoutSeconds: timeout) else { return false }
        return response.status == .ok && !response.bodyText.contains("\"error\"")
    }

    private func status(of index: Int) -> (isLeader: Bool, term: UInt64)? {
        guard let response = try? client.postJSON(host: "127.0.0.1", port: members[index].clientPort, path: "/v3/maintenance/status",
                                                   body: Array("{}".utf8), timeoutSeconds: 0.05),
              response.status == .ok,
              let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
              let header = object["header"] as? [String: Any],
              let member = header["member_id"] as? String, let leader = object["leader"] as? String,
              let term = (object["raftTerm"] as? String).flatMap(UInt64.init) else { return nil }
        return (member == leader, term)
    }

    /// Stops every member (SIGCONT first, for a paused one) and removes the data.
    func finish() {
        for index in members.indices {
            guard let process = members[index].process else { continue }
            kill(process.processIdentifier, SIGCONT)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            members[index].process = nil
        }
        try? FileManager.default.removeItem(atPath: dataRoot)  // best effort: a temporary directory
    }
}

extension Array where Element == UInt8 {
    var base64: String { Data(self).base64EncodedString() }
}
