import Foundation
import Transport

/// `orchestrator bench http`: our server loaded by our client on loopback, both in this
/// process and sharing the machine's cores, like wrk would.
enum HTTPBenchmark {
    /// The 200-byte JSON document the POST benchmark echoes (decoded and encoded again).
    struct Document: Codable {
        var id: Int
        var name: String
        var image: String
        var replicas: Int
        var cpu: Int
        var memory: Int
        var labels: [String]
        var description: String
    }

    static let document: [UInt8] = {
        let value = Document(id: 42, name: "web-frontend", image: "nginx:1.27", replicas: 25, cpu: 250, memory: 128,
                             labels: ["tier=front", "team=core"], description: "a service of the orchestrator benchmark, sized to 200 bytes")
        return (try? JSONBody.encode(value)) ?? []
    }()

    static func router() -> Router {
        var router = Router()
        router.addImmediate("GET", "/hello") { _ in HTTPResponse(headers: HTTPHeaders([("Content-Type", "text/plain")]), body: Array("Hello, world!".utf8)) }
        router.addImmediate("POST", "/echo") { request in
            JSONBody.response(try JSONBody.decode(Document.self, from: request))
        }
        return router
    }

    struct Row {
        var kind: String
        var connections: Int
        var requests: Int
        var errors: Int
        var seconds: Double
        var p50: Double
        var p99: Double
        var requestsPerSecond: Double { Double(requests) / seconds }
    }

    static func serve(port: Int) throws -> Never {
        let server = HTTPServer(host: "127.0.0.1", port: port, router: router())
        try server.start()
        print("benchmark server on 127.0.0.1:\(server.port): GET /hello, POST /echo (200-byte JSON); Ctrl-C to stop")
        fflush(nil)
        while true { sleep(3_600) }
    }

    static func run(seconds: Double, connectionCounts: [Int]) throws -> [Row] {
        let server = HTTPServer(port: 0, router: router())
        try server.start()
        defer { server.stop() }
        var rows: [Row] = []
        for kind in ["GET", "POST"] {
            for connections in connectionCounts {
                FileHandle.standardError.write(Data("  \(kind) with \(connections) connections for \(seconds) s...\n".utf8))
                rows.append(measure(kind: kind, connections: connections, port: server.port, seconds: seconds))
            }
        }
        return rows
    }

    private final class Results: @unchecked Sendable {
        let lock = NSLock()
        var latencies: [Double] = []
        var errors = 0
    }

    private static func measure(kind: String, connections: Int, port: Int, seconds: Double) -> Row {
        var configuration = HTTPClient.Configuration()
        configuration.maxConnectionsPerHost = connections
        let client = HTTPClient(configuration: configuration)
        let results = Results()
        let start = monotonicSeconds()
        let deadline = start + seconds
        let group = DispatchGroup()
        for _ in 0..<connections {
            group.enter()
            let thread = Thread {
                var latencies: [Double] = []
                latencies.reserveCapacity(100_000)
                var errors = 0
                while true {
                    let before = monotonicSeconds()
                    if before >= deadline { break }
                    do {
                        let response = kind == "GET"
                            ? try client.get(host: "127.0.0.1", port: port, path: "/hello")
                            : try client.postJSON(host: "127.0.0.1", port: port, path: "/echo", body: document)
                        if response.status != .ok { errors += 1 }
                    } catch {
                        errors += 1
                    }
                    latencies.append(monotonicSeconds() - before)
                }
                results.lock.withLock {
                    results.latencies.append(contentsOf: latencies)
                    results.errors += errors
                }
                group.leave()
            }
            thread.stackSize = 512 * 1024
            thread.start()
        }
        group.wait()
        let elapsed = monotonicSeconds() - start
        let sorted = results.latencies.sorted()
        return Row(kind: kind, connections: connections, requests: sorted.count, errors: results.errors, seconds: elapsed,
                   p50: percentile(sorted, 0.50) * 1_000, p99: percentile(sorted, 0.99) * 1_000)
    }

}
