import Transport

/// How starting, growing and removing clusters fails, in the supervisor's words; the API
/// renders each as a status and `{"error": ...}` (`httpError`), the command line prints it.
enum SupervisorError: Error, CustomStringConvertible, HTTPResponseError {
    case clusterExists(String)
    case portTaken(port: Int, cluster: String)
    case noFreePorts(String)
    /// `lastLine`: the last line the node wrote to its log (most often why it stopped).
    case exitedDuringStart(port: Int, exitStatus: Int32?, log: String, lastLine: String?)
    case didNotAnswer(ports: [Int], seconds: Double, log: String)
    case directoryInUse(directory: String, pid: Int32)
    case cannotDelete(path: String, reason: String)
    /// A cluster setting outside its bounds, or two that disagree, named as the API spells it.
    case invalidSettings(String)
    /// The cluster's leader took the request and then did not answer: it may have applied.
    case leaderDidNotAnswer(String)
    /// No node of the cluster leads now (an election, or a majority down).
    case noLeader(String)
    /// Starting these nodes would take the orchestrator over its limit of node processes.
    case tooManyNodes(running: Int, asked: Int, limit: Int)

    var description: String {
        switch self {
        case .clusterExists(let id): "cluster \(id) already exists"
        case .portTaken(let port, let cluster): "port \(port) is taken; cannot start node \(port) of cluster \(cluster)"
        case .noFreePorts(let what): "no free \(what)"
        case .exitedDuringStart(let port, let status, let log, let lastLine):
            "node \(port) exited during start (exit status \(status.map(String.init) ?? "?"))\(lastLine.map { ": \($0)" } ?? ""); see \(log)"
        case .didNotAnswer(let ports, let seconds, let log):
            "nodes \(ports.map(String.init).joined(separator: ", ")) did not answer within \(Int(seconds)) s; see their logs in \(log)"
        case .directoryInUse(let directory, let pid): "data directory \(directory) is in use by process \(pid); not deleting it"
        case .cannotDelete(let path, let reason): "cannot delete \(path): \(reason)"
        case .invalidSettings(let problem), .leaderDidNotAnswer(let problem), .noLeader(let problem): problem
        case .tooManyNodes(let running, let asked, let limit):
            "\(asked) more node process\(asked == 1 ? "" : "es") would make \(running + asked); the limit is \(limit) (orchestrator --max-nodes); delete or shrink a cluster first"
        }
    }

    var httpError: HTTPError {
        switch self {
        case .clusterExists, .portTaken, .directoryInUse, .tooManyNodes: HTTPError(.conflict, description)
        case .noFreePorts: HTTPError(.serviceUnavailable, description)
        case .exitedDuringStart, .cannotDelete: HTTPError(.internalServerError, description)
        case .didNotAnswer, .leaderDidNotAnswer: HTTPError(.gatewayTimeout, description)
        case .invalidSettings: HTTPError(.badRequest, description)
        case .noLeader: HTTPError(.serviceUnavailable, description, headers: HTTPHeaders([("Retry-After", "1")]))
        }
    }
}
