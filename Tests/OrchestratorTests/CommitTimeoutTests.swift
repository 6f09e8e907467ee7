#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
@testable import Orchestrator
import Testing
import Transport

/// A write the leader cannot commit: answered 504 at the node's commit timeout (the waiter's
/// deadline), saying it may still apply, and a retry under the same requestId applies it
/// once. Three node processes of its own, so the commit timeout (300 ms) can sit well below
/// the election timeout (3 s): the leader keeps leading while its followers are paused, and
/// what ends the wait is the timeout, not a step-down.
@Suite struct CommitTimeoutTests {
    private static let client = HTTPClient()

    private static func post(_ port: Int, _ path: String, _ body: String) throws -> (status: Int, text: String) {
        let response = try client.send("POST", host: "127.0.0.1", port: port, path: path,
                                       headers: HTTPHeaders([("Content-Type", "application/json")]), body: Array(body.utf8), timeoutSeconds: 10)
        return (response.status.rawValue, response.bodyText)
    }

    private static func get(_ port: Int, _ path: String) -> String? {
        try? client.send("GET", host: "127.0.0.1", port: port, path: path, timeoutSeconds: 2).bodyText
    }

    @Test func aWriteTheLeaderCannotCommitAnswers504AtItsCommitTimeoutAndARetryAppliesItOnce() throws {
        let root = NSTemporaryDirectory() + "commit-timeout-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let base = OrchestratorHarness.freePortRun(3)
        let ports = [base, base + 1, base + 2]
        var nodes: [Int: NodeProcess] = [:]
        defer {
            for node in nodes.values {
                _ = node.send(SIGCONT)
                node.killNow()
            }
            try? FileManager.default.removeItem(atPath: root)
        }
        for port in ports {
            let node = NodeProcess(port: port, dataDirectory: "\(root)/node-\(port)", logPath: "\(root)/node-\(port).log")
            try node.start(executable: OrchestratorHarness.executable, arguments: [
                "node", "--port", "\(port)", "--members", ports.map(String.init).joined(separator: ","), "--data-dir", "\(root)/node-\(port)",
                "--heartbeat-ms", "50", "--election-timeout-ms", "3000", "--commit-timeout-ms", "300",
            ])
            nodes[port] = node
        }
        var leader: Int?
        let deadline = monotonicSeconds() + 30
        while leader == nil, monotonicSeconds() < deadline {
            leader = ports.first { Self.get($0, "/")?.contains(#""state":"leader""#) == true }
            if leader == nil { usleep(20_000) }
        }
        guard let leader else {
            Issue.record("no leader within 30 s")
            return
        }
        // The leader answers writes once its wait after the election is over.
        let warmDeadline = monotonicSeconds() + 10
        var warm = 0
        while warm != 201, monotonicSeconds() < warmDeadline {
            warm = try Self.post(leader, "/service", #"{"container": {"name": "warm", "replicas": 1}}"#).status
        }
        #expect(warm == 201)

        let followers = ports.filter { $0 != leader }
        for follower in followers { #expect(nodes[follower]!.send(SIGSTOP)) }
        let body = #"{"requestId": "slow-1", "container": {"name": "slow", "replicas": 1}}"#
        let started = monotonicSeconds()
        let timedOut = try Self.post(leader, "/service", body)
        let took = monotonicSeconds() - started
        #expect(timedOut.status == 504, "\(timedOut.text)")
        #expect(timedOut.text.contains("not committed within 0.3 s (request slow-1)") && timedOut.text.contains("it may still commit"), "\(timedOut.text)")
        #expect(took >= 0.3 && took < 2.5, "answered after \(took) s")
        for follower in followers { #expect(nodes[follower]!.send(SIGCONT)) }

        // The retry applies it once, whether the first attempt's entry committed after all
        // or not.
        let retryDeadline = monotonicSeconds() + 20
        var retried = (status: 0, text: "")
        while retried.status != 201, monotonicSeconds() < retryDeadline {
            let target = ports.first { Self.get($0, "/")?.contains(#""state":"leader""#) == true } ?? leader
            retried = try Self.post(target, "/service", body)
            if retried.status != 201 { usleep(50_000) }
        }
        #expect(retried.status == 201, "\(retried.text)")
        let services = Self.get(leader, "/services") ?? ""
        #expect(services.components(separatedBy: #""name":"slow""#).count - 1 == 1, "\(services)")
    }
}
