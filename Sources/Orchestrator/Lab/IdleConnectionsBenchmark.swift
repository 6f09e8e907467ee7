#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Transport

/// `orchestrator bench idle`: the benchmark server (`bench http --serve`) in a process of its
/// own holds N idle keep-alive connections from this process; fresh connections are then
/// timed from connect to answer, a sample of the idle ones is asked again (still held?), and
/// the server's threads, descriptors and resident memory are read from /proc.
enum IdleConnectionsBenchmark {
    struct Result {
        var connections: Int
        var held: Int
        var sampled: Int
        var answeredOnIdle: Int
        var probes: [Double]
        var server: (before: ProcessFacts, after: ProcessFacts)
    }

    struct ProcessFacts {
        var threads: Int
        var descriptors: Int
        var residentMB: Double

        static func of(_ pid: Int32) -> ProcessFacts {
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            func field(_ name: String) -> Double {
                status.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                    .flatMap { Double($0.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") } ?? 0
            }
            let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
            return ProcessFacts(threads: Int(field("Threads")), descriptors: descriptors, residentMB: field("VmRSS") / 1_024)
        }
    }

    /// `external`: a server already running (another program serving GET /hello, for a
    /// comparison) instead of ours in a process of its own.
    static func run(connections: Int, probes: Int, external: (port: Int, pid: Int32)? = nil) throws -> Result {
        // This process holds one descriptor per connection too.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        guard Int(limit.rlim_cur) > connections + 64 else {
            throw LabError("this process may open \(limit.rlim_cur) descriptors, too few for \(connections) connections (raise ulimit -n)")
        }
        let port = try external?.port ?? freePort()
        let server = Process()
        if external == nil {
            server.executableURL = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
            server.arguments = ["bench", "http", "--serve", String(port)]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            try server.run()
        }
        defer {
            if external == nil {
                server.terminate()
                server.waitUntilExit()
            }
        }
        let pid = external?.pid ?? server.processIdentifier
        let client = HTTPClient()
        let ready = monotonicSeconds() + 10
        while (try? client.get(host: "127.0.0.1", port: port, path: "/hello", timeoutSeconds: 0.5)) == nil {
            guard monotonicSeconds() < ready, external != nil || server.isRunning else { throw LabError("the benchmark server did not answer on port \(port)") }
            usleep(10_000)
        }
        client.closeIdleConnections()
        let before = ProcessFacts.of(pid)
        FileHandle.standardError.write(Data("  opening \(connections) idle connections...\n".utf8))
        var idle: [Int32] = []
        idle.reserveCapacity(connections)
        defer { for descriptor in idle { close(descriptor) } }
        // Each asks once and then sits idle (keep-alive): a connection that never sent a request
        // is closed by the server's first-request timeout, like a slow head.
        let request = Array("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        var answer = [UInt8](repeating: 0, count: 512)
        for _ in 0..<connections {
            let descriptor = try Socket.connect(host: "127.0.0.1", port: port, timeoutSeconds: 5)
            idle.append(descriptor)
            Socket.setTimeout(descriptor, option: SO_RCVTIMEO, seconds: 5)
            try Socket.sendAll(descriptor, request)
            guard try Socket.receive(descriptor, into: &answer) > 0 else { throw LabError("connection \(idle.count) closed before its first answer") }
        }
        // Accepted: the server's descriptors show it.
        let accepted = monotonicSeconds() + 30
        while ProcessFacts.of(pid).descriptors < before.descriptors + connections, monotonicSeconds() < accepted { usleep(20_000) }
        FileHandle.standardError.write(Data("  timing \(probes) fresh connections...\n".utf8))
        var latencies: [Double] = []
        for _ in 0..<probes {
            let started = monotonicSeconds()
            let response = try client.send("GET", host: "127.0.0.1", port: port, path: "/hello", headers: HTTPHeaders([("Connection", "close")]), body: [], timeoutSeconds: 5)
            guard response.status == .ok else { throw LabError("a fresh GET was answered \(response.status.rawValue)") }
            latencies.append((monotonicSeconds() - started) * 1_000)
        }
        let after = ProcessFacts.of(pid)
        // Still held: a request on a sample of the idle connections is answered.
        let sample = Array(idle.enumerated().filter { $0.offset % max(1, connections / 100) == 0 }.map(\.element))
        var answered = 0
        for descriptor in sample {
            Socket.setTimeout(descriptor, option: SO_RCVTIMEO, seconds: 2)
            guard (try? Socket.sendAll(descriptor, request)) != nil else { continue }
            var buffer = [UInt8](repeating: 0, count: 512)
            if let count = try? Socket.receive(descriptor, into: &buffer), count > 0,
               String(decoding: buffer[0..<count], as: UTF8.self).hasPrefix("HTTP/1.1 200") { answered += 1 }
        }
        return Result(connections: connections, held: max(0, after.descriptors - before.descriptors), sampled: sample.count,
                      answeredOnIdle: answered, probes: latencies.sorted(), server: (before, after))
    }

    private static func freePort() throws -> Int {
        for _ in 0..<50 {
            let port = Int.random(in: HTTPServer.listeningPortRange)
            if HTTPServer.isPortFree(port: port) { return port }
        }
        throw LabError("no free port found")
    }
}
