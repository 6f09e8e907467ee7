import ClusterNode
import Foundation
import Transport

/// How faults reach a cluster's node processes: directly (the experiment's own supervisor)
/// or through a running orchestrator's API (the nemesis). Links are set on the nodes
/// themselves either way.
protocol NodeControl: Sendable {
    var ports: [Int] { get }
    var client: ClusterClient { get }
    /// kill (SIGKILL), pause (SIGSTOP), resume (SIGCONT) or restart (a killed node); true when done.
    func act(_ action: String, on port: Int) -> Bool
}

/// The nodes of a cluster this process supervises.
struct LocalNodes: NodeControl {
    let cluster: ManagedCluster
    let supervisor: ClusterSupervisor

    var ports: [Int] { cluster.ports }
    var client: ClusterClient { cluster.client }

    func act(_ action: String, on port: Int) -> Bool {
        guard let node = cluster.nodes.first(where: { $0.port == port }) else { return false }
        switch action {
        case "kill":
            node.killNow()
        case "pause":
            guard node.send(SIGSTOP) else { return false }
            node.markStatus(.paused)
        case "resume":
            guard node.send(SIGCONT) else { return false }
            node.markStatus(.running)
        default:
            node.terminate()
            do {
                try supervisor.start(node, in: cluster)
                try supervisor.waitUntilReady([node], seconds: 15)
            } catch {
                return false
            }
        }
        return true
    }
}

/// The nodes of a cluster on a running orchestrator, faulted through its API.
struct RemoteNodes: NodeControl {
    let host: String
    let port: Int
    let clusterID: String
    let ports: [Int]
    let http: HTTPClient
    let client: ClusterClient

    init(host: String, port: Int, clusterID: String, ports: [Int], http: HTTPClient) {
        self.host = host
        self.port = port
        self.clusterID = clusterID
        self.ports = ports
        self.http = http
        client = ClusterClient(http: http) { ports }
    }

    func act(_ action: String, on node: Int) -> Bool {
        (try? http.send("POST", host: host, port: port, path: "/clusters/\(clusterID)/nodes/\(node)/\(action)", timeoutSeconds: 20))?.status == .ok
    }
}

/// Applies faults to one cluster and records them: the one fault driver of experiments and
/// the nemesis. It remembers which nodes it took down, so `restart`, `resume` and `heal`
/// bring back exactly those.
final class FaultDriver: @unchecked Sendable {
    let name: String
    let nodes: any NodeControl
    let http: HTTPClient
    let recorder: HistoryRecorder
    /// Every link's delay and loss when healthy.
    let linkDelayMs: Int
    let linkLoss: Double
    /// Never take down (kill or pause) a majority: for random faults, so the cluster can recover.
    let keepsMajority: Bool
    private let lock = NSLock()
    private var down: [Int: String] = [:]  // port → "killed" / "paused"

    init(name: String, nodes: any NodeControl, http: HTTPClient, recorder: HistoryRecorder, linkDelayMs: Int = 0, linkLoss: Double = 0, keepsMajority: Bool = false) {
        self.name = name
        self.nodes = nodes
        self.http = http
        self.recorder = recorder
        self.linkDelayMs = linkDelayMs
        self.linkLoss = linkLoss
        self.keepsMajority = keepsMajority
    }

    var downCount: Int { lock.withLock { down.count } }

    private func record(_ action: String, _ detail: String) {
        recorder.record(fault: History.Fault(atMs: recorder.nowMs, cluster: name, action: action, detail: detail))
    }

    private func leader() -> Int? { nodes.client.waitForLeader(timeoutSeconds: 1, askTimeoutSeconds: 0.1)?.port }

    /// Applies one fault (see `ExperimentPlan.Fault`).
    func apply(_ fault: ExperimentPlan.Fault) {
        let ports = nodes.ports
        let target: Int? = switch fault.action {
        case "kill-leader", "pause-leader", "partition-leader", "cut-leader-follower": leader()
        default: fault.node.flatMap { $0 < ports.count ? ports[$0] : nil }
        }
        nodes.client.forgetLeader()
        switch fault.action {
        case "kill-leader", "kill", "pause-leader", "pause":
            let action = fault.action.hasPrefix("kill") ? "kill" : "pause"
            guard let target else { return record(fault.action, "no leader to \(action)") }
            let refused = lock.withLock { down[target] != nil || (keepsMajority && down.count >= (ports.count - 1) / 2) }
            guard !refused, nodes.act(action, on: target) else { return record(fault.action, "skipped: \(target) is down already, or a majority would be") }
            lock.withLock { down[target] = action == "kill" ? "killed" : "paused" }
            record(fault.action, "\(action == "kill" ? "kill -9" : "pause") \(target)")
        case "resume", "restart":
            let wanted = fault.action == "resume" ? "paused" : "killed"
            let back = lock.withLock { down.filter { $0.value == wanted }.map(\.key) }.sorted()
            for port in back { bringBack(port) }
            recorder.endFaults(of: name, matching: { $0.hasPrefix(wanted == "paused" ? "pause" : "kill") }, at: recorder.nowMs)
            record(fault.action, "\(fault.action) \(back)")
        case "partition-leader":
            guard let target else { return record(fault.action, "no leader to partition") }
            // A minority: the leader and fewer than half of the others (alone in 3 nodes, with one other in 5).
            let minority = Set([target] + ports.filter { $0 != target }.prefix(max(0, (ports.count - 1) / 2 - 1)))
            setLinks { from, to in minority.contains(from) == minority.contains(to) ? nil : "0" }
            record(fault.action, "leader \(target) in minority \(minority.sorted())")
        case "cut-leader-follower":
            guard let target, let follower = ports.first(where: { $0 != target }) else { return record(fault.action, "no leader") }
            setLinks { from, to in from == target && to == follower ? "0" : nil }
            record(fault.action, "one-way cut \(target) -> \(follower)")
        case "lossy", "slow":
            let loss = fault.action == "lossy" ? fault.loss ?? 0.3 : linkLoss
            let delay = fault.action == "slow" ? fault.delayMs ?? 100 : linkDelayMs
            setLinks { _, _ in #"{"up": true, "delayMs": \#(delay), "loss": \#(loss)}"# }
            record(fault.action, "every link: loss \(loss), delay \(delay) ms")
        default:
            heal(detail: "heal")
        }
    }

    private func bringBack(_ port: Int) {
        guard let state = lock.withLock({ down.removeValue(forKey: port) }) else { return }
        _ = nodes.act(state == "paused" ? "resume" : "restart", on: port)
    }

    /// Every node back and every link to its healthy default.
    func heal(detail: String) {
        for port in lock.withLock({ Array(down.keys) }).sorted() { bringBack(port) }
        setDefaultLinks()
        recorder.endFaults(of: name, matching: { _ in true }, at: recorder.nowMs)
        recorder.record(fault: History.Fault(atMs: recorder.nowMs, cluster: name, action: "heal", detail: detail, endMs: recorder.nowMs))
    }

    func setDefaultLinks() { Self.setDefaultLinks(nodes.ports, http, delayMs: linkDelayMs, loss: linkLoss) }

    static func setDefaultLinks(_ ports: [Int], _ http: HTTPClient, delayMs: Int, loss: Double) {
        let value = #"{"up": true, "delayMs": \#(delayMs), "loss": \#(loss)}"#
        setLinks(ports, http) { _, _ in value }
    }

    private func setLinks(_ value: (Int, Int) -> String?) { Self.setLinks(nodes.ports, http, value) }

    /// Sets the links `value` names (nil: leave it), node by node.
    static func setLinks(_ ports: [Int], _ http: HTTPClient, _ value: (Int, Int) -> String?) {
        for from in ports {
            let entries = ports.filter { $0 != from }.compactMap { to in value(from, to).map { "\"\(to)\": \($0)" } }
            guard !entries.isEmpty else { continue }
            _ = try? http.send("POST", host: "127.0.0.1", port: from, path: "/connections", headers: HTTPHeaders([("Content-Type", "application/json")]),
                               body: Array(("{" + entries.joined(separator: ", ") + "}").utf8), timeoutSeconds: 2)
        }
    }
}
