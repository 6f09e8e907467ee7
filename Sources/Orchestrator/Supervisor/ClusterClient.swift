import ClusterNode
import Foundation
import Transport

/// How the orchestrator's own code talks to one cluster, as any client would: which node
/// leads (each node is asked; the highest term wins), the leader it last found, and
/// requests sent there with redirects remembered and retries while leadership moves. The
/// one copy of leader discovery for the API, `serve`, the nemesis and the benchmarks.
final class ClusterClient: @unchecked Sendable {
    let http: HTTPClient
    /// The cluster's node ports now (they change as it grows and shrinks).
    private let ports: @Sendable () -> [Int]
    /// Why no leader can come, where the caller knows (the orchestrator runs the nodes and
    /// sees fewer than a majority running): a request then fails at once instead of waiting
    /// out its patience. Nil: not known.
    private let whyNoLeaderCanCome: (@Sendable () -> String?)?
    private let lock = NSLock()
    private var cachedLeader: Int?

    init(http: HTTPClient, whyNoLeaderCanCome: (@Sendable () -> String?)? = nil, ports: @escaping @Sendable () -> [Int]) {
        self.http = http
        self.whyNoLeaderCanCome = whyNoLeaderCanCome
        self.ports = ports
    }

    /// The leader found last, if it is still one of the cluster's nodes.
    var rememberedLeader: Int? {
        let current = ports()
        return lock.withLock { cachedLeader.flatMap { current.contains($0) ? $0 : nil } }
    }

    func remember(leader port: Int) { lock.withLock { cachedLeader = port } }
    func forgetLeader() { lock.withLock { cachedLeader = nil } }

    /// What the node on `port` says of itself (`GET /`).
    func definition(of port: Int, timeoutSeconds: Double) throws -> NodeDefinition {
        let response = try http.get(host: "127.0.0.1", port: port, path: "/", timeoutSeconds: timeoutSeconds)
        return try JSONBody.decode(NodeDefinition.self, from: response.body)
    }

    /// Each node's definition, asked concurrently; nil (and why) where it did not answer.
    func definitions(timeoutSeconds: Double) -> [(port: Int, definition: NodeDefinition?, error: String?)] {
        parallelMap(ports()) { [self] port -> (Int, NodeDefinition?, String?) in
            do {
                return (port, try definition(of: port, timeoutSeconds: timeoutSeconds), nil)
            } catch {
                return (port, nil, "\(error)")
            }
        }
    }

    /// The node reporting itself leader in the highest term among `definitions`.
    static func leader(among definitions: [(port: Int, definition: NodeDefinition?, error: String?)]) -> (port: Int, term: UInt64)? {
        definitions.compactMap { entry -> (port: Int, term: UInt64)? in
            guard let definition = entry.definition, definition.role == .leader else { return nil }
            return (entry.port, definition.term)
        }.max { $0.term < $1.term }
    }

    /// Polls every node until one (other than `excluded`) reports itself leader in a term
    /// above `term`; nil after `timeoutSeconds`. Remembers what it found.
    func waitForLeader(excluding excluded: Int? = nil, newerThan term: UInt64 = 0, timeoutSeconds: Double,
                       askTimeoutSeconds: Double = 0.2, pollSeconds: Double = 0.005) -> (port: Int, term: UInt64)? {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        repeat {
            // One node after another: polled every few milliseconds, a thread per node per
            // round (as `definitions` uses) would cost more than it saves.
            var answers: [(port: Int, definition: NodeDefinition?, error: String?)] = []
            for port in ports() where port != excluded {
                answers.append((port, try? definition(of: port, timeoutSeconds: askTimeoutSeconds), nil))
            }
            let found = Self.leader(among: answers)
            if let found, found.term > term {
                remember(leader: found.port)
                return found
            }
            usleep(UInt32(pollSeconds * 1_000_000))
        } while Date() < deadline
        return nil
    }

    /// Sends one request to the leader, finding it again while leadership moves (a 503 or a
    /// refused connection), for up to `patienceSeconds`. A request sent and unanswered is
    /// not resent (it may have been applied): that is a 504. 503 with Retry-After when no
    /// leader answers in time.
    func sendToLeader(method: String, path: String, headers: HTTPHeaders = HTTPHeaders([("Content-Type", "application/json")]),
                      body: [UInt8] = [], timeoutSeconds: Double = 7, patienceSeconds: Double = 6, clusterID: String) throws -> HTTPResponse {
        let deadline = Date().addingTimeInterval(patienceSeconds)
        var lastProblem = "no leader elected yet"
        while Date() < deadline {
            // A leader's request needs a majority (a commit, or ReadIndex): a leader that has not
            // yet noticed it lost its majority would only hold the request until it times out.
            if let problem = whyNoLeaderCanCome?() { throw SupervisorError.noLeader(problem) }
            guard let port = rememberedLeader ?? Self.leader(among: definitions(timeoutSeconds: 0.5))?.port else {
                usleep(50_000)
                continue
            }
            remember(leader: port)
            let leader = NodeAddress(port: port)
            do {
                var response = try http.send(method, host: "127.0.0.1", port: port, path: path, headers: headers,
                                             body: body, timeoutSeconds: timeoutSeconds)
                guard response.status != .serviceUnavailable else {
                    // Leadership moved under us: look again.
                    lastProblem = response.bodyText
                    forgetLeader()
                    usleep(50_000)
                    continue
                }
                if let servedBy = response.headers["x-served-by"].flatMap(NodeAddress.init(parsing:)) {
                    remember(leader: servedBy.port)  // a follower forwarded it: remember the real leader
                }
                response.headers.set("X-Served-By", response.headers["x-served-by"] ?? leader.description)
                return response
            } catch where error.kind == .connect {
                lastProblem = "leader \(leader) unreachable: \(error)"
                forgetLeader()
                usleep(50_000)
            } catch {
                forgetLeader()
                throw SupervisorError.leaderDidNotAnswer("no answer from leader \(leader): \(error)")
            }
        }
        throw SupervisorError.noLeader("cluster \(clusterID) has no leader that answers (\(lastProblem)); retry shortly")
    }
}
