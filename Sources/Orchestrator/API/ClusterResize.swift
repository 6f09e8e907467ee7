import ClusterNode
import Foundation
import Transport

/// `PUT /clusters/:id {"nodes": N}`: grows or shrinks a running cluster one server at a
/// time through Raft membership changes. A new node is started empty, added as a learner,
/// promoted once it has caught up; a removed node (the leader too, after handing over) is
/// taken out of the membership, then stopped, and the leader re-places its replicas.
extension OrchestratorAPI {
    struct ResizeResult: Codable {
        var cluster: ClusterSummary
        var steps: [String]
        var milliseconds: Double
    }

    func resize(_ cluster: ManagedCluster, _ request: HTTPRequest) throws -> HTTPResponse {
        struct Resize: Decodable { var nodes: Int }
        let target = try JSONBody.decode(Resize.self, from: request).nodes
        guard ClusterLimits.nodes.contains(target) else {
            throw HTTPError(.badRequest, "nodes must be from \(ClusterLimits.nodes.lowerBound) to \(ClusterLimits.nodes.upperBound), got \(target)")
        }
        guard cluster.resizeLock.try() else { throw HTTPError(.conflict, "cluster \(cluster.id) is being resized already; retry when that finishes") }
        defer { cluster.resizeLock.unlock() }
        let started = monotonicSeconds()
        var steps: [String] = []
        // Only a leader can add or remove members: without one within a few seconds (an
        // election, or nodes slow to answer under load), answer 503 before starting a node
        // that would wait for a leader that may not come (a partitioned cluster).
        if target != cluster.nodes.count, let problem = cluster.whyNoLeaderCanCome {
            throw SupervisorError.noLeader(problem + ", and only a leader can add or remove members")
        }
        if target != cluster.nodes.count, summary(cluster).leader == nil,
           cluster.client.waitForLeader(timeoutSeconds: 3, askTimeoutSeconds: 0.5, pollSeconds: 0.05) == nil {
            throw SupervisorError.noLeader("cluster \(cluster.id) has no leader now, and only a leader can add or remove members; retry shortly")
        }
        while cluster.nodes.count < target {
            let node = try supervisor.addNode(to: cluster)
            let began = monotonicSeconds()
            let answer: HTTPResponse
            do {
                answer = try sendToLeader(cluster, method: "POST", path: "/members", body: Array(#"{"node": \#(node.port)}"#.utf8), timeoutSeconds: 30)
            } catch {
                withdraw(node, from: cluster)
                throw error
            }
            guard answer.status == .ok else {
                withdraw(node, from: cluster)
                throw HTTPError(answer.status, "node localhost:\(node.port) could not be added (it was stopped again): \(answer.bodyText)")
            }
            steps.append("added localhost:\(node.port): learner, caught up, promoted in \(Self.milliseconds(since: began)) ms")
        }
        while cluster.nodes.count > target {
            // The newest node goes first; the leader hands over before it is removed.
            guard let node = cluster.nodes.max(by: { $0.port < $1.port }) else { break }
            let began = monotonicSeconds()
            if let leader = summary(cluster).leader, leader == "localhost:\(node.port)",
               let successor = cluster.nodes.filter({ $0.port != node.port && $0.status == .running }).min(by: { $0.port < $1.port })
            {
                let moved = try sendToLeader(cluster, method: "POST", path: "/leader", body: Array(#"{"node": \#(successor.port)}"#.utf8))
                guard moved.status == .ok else {
                    throw HTTPError(moved.status, "leader localhost:\(node.port) could not hand over to localhost:\(successor.port) before its removal: \(moved.bodyText)")
                }
                cluster.client.forgetLeader()
                steps.append("leader localhost:\(node.port) handed over to localhost:\(successor.port)")
            }
            let answer = try sendToLeader(cluster, method: "DELETE", path: "/members/\(node.port)", timeoutSeconds: 30)
            guard answer.status == .ok else {
                throw HTTPError(answer.status, "node localhost:\(node.port) could not be removed: \(answer.bodyText)")
            }
            supervisor.retire(node, from: cluster)
            steps.append("removed localhost:\(node.port) in \(Self.milliseconds(since: began)) ms")
        }
        let result = ResizeResult(cluster: summary(cluster), steps: steps, milliseconds: Self.milliseconds(since: started))
        return JSONBody.response(result, for: request)
    }

    /// Undoes a node that failed to join: out of the membership if it got in (as a learner),
    /// then stopped. Best effort: if the removal cannot commit either, the node stays a learner
    /// in the log (it counts for nothing) and its process is stopped all the same.
    private func withdraw(_ node: NodeProcess, from cluster: ManagedCluster) {
        _ = try? sendToLeader(cluster, method: "DELETE", path: "/members/\(node.port)", timeoutSeconds: 10)
        supervisor.retire(node, from: cluster)
    }

    private static func milliseconds(since start: Double) -> Double {
        ((monotonicSeconds() - start) * 10_000).rounded() / 10
    }
}
