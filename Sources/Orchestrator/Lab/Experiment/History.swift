import Foundation

/// What an experiment recorded: every client operation, every fault, and every role, term
/// and leader change the nodes reported. Times are milliseconds from the experiment's start.
struct History: Codable, Sendable {
    /// One client operation on one service of one cluster.
    struct Operation: Codable, Sendable, Equatable {
        enum Outcome: String, Codable, Sendable {
            /// Answered, with the result in `value` (or `absent`).
            case ok
            /// Answered with an error that means it did not happen (a 400, a 503 before sending).
            case failed
            /// No answer, or one that cannot say (a 504, a dropped connection): it may have happened.
            case unknown
        }

        var cluster: String
        var client: Int
        /// create, scale, read, delete.
        var kind: String
        /// The service's ID (nil for a create whose answer did not arrive).
        var service: Int?
        /// A create's or scale's replica count, or what a read returned.
        var value: Int?
        /// The service was not there (a 404 from a scale, read or delete).
        var absent: Bool = false
        var invokeMs: Double
        var completeMs: Double?
        var outcome: Outcome
        var status: Int?
        var error: String?

        var latencyMs: Double? { completeMs.map { $0 - invokeMs } }
    }

    struct Fault: Codable, Sendable {
        var atMs: Double
        var cluster: String
        var action: String
        var detail: String
        /// When the fault was healed (a kill by its restart, a partition by heal); nil: to the end.
        var endMs: Double?
    }

    /// One node's view at one moment, kept when its role, term or leader changed.
    struct RoleChange: Codable, Sendable {
        var atMs: Double
        var cluster: String
        var node: Int
        /// leader, follower, candidate, learner, or down (it did not answer).
        var role: String
        var term: UInt64?
        var leader: String?
    }

    /// The machine's CPU use over one second of the run (0 to 100, all cores).
    struct CPUSample: Codable, Sendable {
        var atMs: Double
        var busyPercent: Double
    }

    var operations: [Operation] = []
    var faults: [Fault] = []
    var roles: [RoleChange] = []
    var cpu: [CPUSample] = []
    /// Per cluster: term → leaders each node remembers for it (read from the nodes at the end).
    var leadersByTerm: [String: [String: Set<String>]] = [:]
}

/// A thread-safe recorder for one run.
final class HistoryRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var history = History()
    private var lastRole: [String: History.RoleChange] = [:]
    let started: Date

    init(started: Date = Date()) { self.started = started }

    var nowMs: Double { Date().timeIntervalSince(started) * 1_000 }

    func record(_ operation: History.Operation) { lock.withLock { history.operations.append(operation) } }

    func record(fault: History.Fault) { lock.withLock { history.faults.append(fault) } }

    /// Ends the open faults of `cluster` that `heal` ends (nil: every one).
    func endFaults(of cluster: String, matching ends: (String) -> Bool, at ms: Double) {
        lock.withLock {
            for index in history.faults.indices where history.faults[index].cluster == cluster && history.faults[index].endMs == nil
                && ends(history.faults[index].action)
            {
                history.faults[index].endMs = ms
            }
        }
    }

    /// Records a node's view if it changed since its last one.
    func observe(_ change: History.RoleChange) {
        lock.withLock {
            let key = "\(change.cluster)/\(change.node)"
            if let last = lastRole[key], last.role == change.role, last.term == change.term, last.leader == change.leader { return }
            lastRole[key] = change
            history.roles.append(change)
        }
    }

    func record(cpu sample: History.CPUSample) { lock.withLock { history.cpu.append(sample) } }

    func record(leaders: [String: Set<String>], of cluster: String) {
        lock.withLock {
            for (term, names) in leaders { history.leadersByTerm[cluster, default: [:]][term, default: []].formUnion(names) }
        }
    }

    var snapshot: History { lock.withLock { history } }

    var operationCount: Int { lock.withLock { history.operations.count } }
}
