import Foundation
import Raft
import Transport

/// A node named as users see it: `localhost:8001`.
func address(_ node: UInt64) -> String { NodeAddress(id: node).description }

/// A service as the API shows it.
public struct ServiceView: Codable, Sendable {
    public var id: Int
    public var name: String?
    public var description: String?
    public var label: String?
    public var image: String?
    public var containerId: Int?
    public var replicas: Int
    public var cpu: Int
    public var memory: Int
    /// `localhost:PORT` → replicas placed there.
    public var placement: [String: Int]
    public var placed: Int
    public var pending: Int
    public var pendingReason: String?
    /// `placed` (all replicas run), `partially placed` or `pending`.
    public var status: String
    public var index: UInt64
    public var term: UInt64
    public var updatedIndex: UInt64
    public var requestId: String
    /// The offered load and what it gives now; nil until one is set.
    public var load: LoadView?
    /// The autoscaler and its latest steps, while one is set.
    public var autoscaler: AutoscalerView?
    /// The port each replica publishes on its node (nil: none, or none was free), and the
    /// port inside the replica it maps to.
    public var publishedPort: Int?
    public var privatePort: Int
    /// A service of the desired-state file, which the reconcile loop keeps.
    public var vital: Bool

    public init(_ record: ServiceRecord) { self.init(record, nowMs: LoadView.nowMs()) }

    public init(_ record: ServiceRecord, nowMs: Int64) {
        id = record.id
        name = record.spec.name
        description = record.spec.description
        label = record.spec.label
        image = record.spec.image
        containerId = record.spec.containerID
        replicas = record.spec.replicas
        cpu = record.spec.cpu
        memory = record.spec.memory
        placement = Dictionary(uniqueKeysWithValues: record.placement.map { (address($0.key), $0.value) })
        placed = record.placedCount
        pending = record.pending
        pendingReason = record.pendingReason
        status = record.pending == 0 ? "placed" : (record.placedCount > 0 ? "partially placed" : "pending")
        index = record.index
        term = record.term
        updatedIndex = record.updatedIndex
        requestId = record.requestID
        load = record.load.map { LoadView($0, of: record, nowMs: nowMs) }
        autoscaler = record.autoscaler.map { AutoscalerView(service: record, autoscaler: $0, nowMs: nowMs) }
        publishedPort = record.publishedPort
        privatePort = record.spec.privatePort
        vital = record.spec.vital
    }
}

/// A service's load as the API shows it: the pattern's fields as they were set, when, the
/// offered load now, and what each running replica uses now (`ContainerLoad`).
public struct LoadView: Codable, Sendable {
    public var pattern: String
    public var millicores: Int?
    public var from: Int?
    public var to: Int?
    public var atMs: Int?
    public var mean: Int?
    public var amplitude: Int?
    public var base: Int?
    public var peak: Int?
    public var periodMs: Int?
    public var durationMs: Int?
    /// When the pattern was set (milliseconds since 1970, the leader's clock).
    public var sinceMs: Int64
    public var offeredMillicores: Int
    public var perReplica: ContainerLoad

    public init(_ load: ServiceLoad, of record: ServiceRecord, nowMs: Int64) {
        switch load.pattern {
        case .constant(let value): (pattern, millicores) = ("constant", value)
        case .step(let from, let to, let atMs): (pattern, self.from, self.to, self.atMs) = ("step", from, to, atMs)
        case .ramp(let from, let to, let periodMs): (pattern, self.from, self.to, self.periodMs) = ("ramp", from, to, periodMs)
        case .sine(let mean, let amplitude, let periodMs): (pattern, self.mean, self.amplitude, self.periodMs) = ("sine", mean, amplitude, periodMs)
        case .spike(let base, let peak, let periodMs, let durationMs):
            (pattern, self.base, self.peak, self.periodMs, self.durationMs) = ("spike", base, peak, periodMs, durationMs)
        }
        sinceMs = load.sinceMs
        offeredMillicores = load.millicores(atMs: nowMs)
        perReplica = record.replicaLoad(atMs: nowMs)
    }

    /// The wall clock in milliseconds since 1970 (every node of a cluster runs on one machine).
    public static func nowMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1_000).rounded()) }
}

/// Seed 000's list envelope: `{"metadata": {"count": N}, "results": [...]}`.
public struct ListEnvelope<Item: Codable & Sendable>: Codable, Sendable {
    public struct Metadata: Codable, Sendable { public var count: Int }
    public var metadata: Metadata
    public var results: [Item]

    public init(_ items: [Item]) {
        metadata = Metadata(count: items.count)
        results = items
    }
}

/// One log entry as `/stats` shows it.
public struct EntryView: Codable, Sendable {
    public var index: UInt64
    public var term: UInt64
    public var kind: String
    public var summary: String

    init(_ entry: Entry) {
        index = entry.index.rawValue
        term = entry.term.rawValue
        kind = entry.kind.name
        switch entry.kind {
        case .noop:
            summary = "no-op appended by the new leader of term \(entry.term)"
        case .membership:
            summary = "membership change"
        case .command:
            summary = (try? ClusterCommandCodec.decode(entry.data)).map(Self.describe) ?? "undecodable command (\(entry.data.count) bytes)"
        }
    }

    static func describe(_ command: ClusterCommand) -> String {
        func placement(_ decision: Placement.Decision) -> String {
            let parts = decision.replicas.sorted { $0.key < $1.key }.map { "\($0.key)x\($0.value)" }.joined(separator: " ")
            return parts + (decision.pending > 0 ? " pending \(decision.pending)" : "")
        }
        switch command {
        case .createServices(_, let planned):
            return "create " + planned.map { "\($0.spec.name ?? "service") (\($0.spec.replicas) replicas: \(placement($0.decision)))" }.joined(separator: ", ")
        case .scaleService(_, let id, let replicas, let decision):
            return "scale service \(id) to \(replicas) replicas: \(placement(decision))"
        case .deleteService(_, let id):
            return "delete service \(id)"
        case .setNodeHealth(let node, let isHealthy, let moves):
            return "mark \(address(node)) \(isHealthy ? "healthy" : "unhealthy"), move \(moves.count) service(s)"
        case .placePending(let moves):
            return "place pending replicas of \(moves.count) service(s)"
        case .setServiceLoad(_, let id, let load):
            return "set service \(id)'s load to \(load.pattern)"
        case .setAutoscaler(_, let id, let spec?):
            return "autoscale service \(id) to \(spec.cpuTarget)% CPU, \(spec.minReplicas) to \(spec.maxReplicas) replicas"
        case .setAutoscaler(_, let id, nil):
            return "stop autoscaling service \(id)"
        case .autoscale(let id, let decision, _):
            return "autoscaler of service \(id): \(decision.reason)"
        case .createContainer(_, let spec, let node, let pinned, _):
            return "create container \(spec.name ?? spec.image) on \(node.map(address) ?? "no node (none fits)")\(pinned ? " (asked there)" : "")"
        case .setDesiredState(_, let services):
            return "desired state: \(services.count) vital service(s) (\(services.compactMap(\.name).joined(separator: ", ")))"
        case .setContainerRunning(_, let id, let isRunning, _):
            return "\(isRunning ? "start" : "stop") container \(id)"
        case .deleteContainer(_, let id):
            return "delete container \(id)"
        }
    }
}

/// `GET /` on a node.
public struct NodeDefinition: Codable, Sendable {
    public var id: UInt64
    public var address: String
    public var cluster: String
    public var peers: [String]
    public var state: String
    public var term: UInt64
    public var leader: String?
    /// When its role or term last changed, in Unix seconds (as the node applied it).
    public var roleSince: Double? = nil
    /// How many times this process became leader since it started.
    public var leaderships: Int? = nil
    /// The leaders this process knew in its latest terms (term → address, at most 16 terms):
    /// a leadership is known to the nodes that followed it, after its leader is gone.
    public var recentLeaders: [String: String]? = nil
}

/// What the leader knows of one follower.
public struct FollowerView: Codable, Sendable {
    public var matchIndex: UInt64
    public var nextIndex: UInt64
    public var state: String
    public var recentlyActive: Bool
    /// Milliseconds since it last answered one of the leader's messages (nil: never this term).
    public var acknowledgedMsAgo: Int?
    /// Whether new replicas may go to it now: it acknowledges the leader and keeps up.
    public var placeable: Bool
}

/// `GET /stats` on a node.
public struct NodeStats: Codable, Sendable {
    public var id: UInt64
    public var address: String
    public var cluster: String
    public var state: String
    public var term: UInt64
    public var votedFor: String?
    public var leader: String?
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var logLength: UInt64
    public var lastEntries: [EntryView]
    public var capacity: NodeResources
    public var load: NodeResources
    public var cpuUsage: Double
    /// What the replicas placed on this node use under their services' offered loads now.
    public var offeredLoad: ContainerLoad
    public var replicas: Int
    public var services: Int
    public var unhealthyNodes: [String]
    public var connections: [String: LinkState]
    public var followers: [String: FollowerView]?
    public var counters: [String: Int]
    /// The membership in this node's log (the latest, committed or not).
    public var voters: [String]
    public var learners: [String]
    /// The index the latest snapshot covers, and the first index still in the log.
    public var snapshotIndex: UInt64
    public var firstLogIndex: UInt64
    /// The leader this node knew in each term ("term": "localhost:PORT"), for checking that
    /// no two leaders ever shared a term.
    public var leaders: [String: String]
    public var pid: Int32
    public var dataDirectory: String
    /// Seconds from proposal to commit of the client requests this node led, as a
    /// histogram since it started (subtract an earlier one for an interval).
    public var commitLatency: HistogramSnapshot?
}

extension RaftNode.Role {
    /// The API's name for a role: pre-candidates report as candidates.
    var apiName: String {
        switch self {
        case .leader: "leader"
        case .follower: "follower"
        case .candidate, .preCandidate: "candidate"
        }
    }
}

/// A log entry reduced to what comparing logs across nodes needs.
public struct LogEntryDigest: Codable, Sendable, Hashable {
    public var index: UInt64
    public var term: UInt64
    public var kind: String
    /// CRC32C of the entry's bytes.
    public var digest: UInt32

    init(_ entry: Entry) {
        index = entry.index.rawValue
        term = entry.term.rawValue
        kind = entry.kind.name
        digest = CRC32C.checksum(entry.data)
    }
}

/// `GET /log`: a page of the log with the commit index it is read against.
public struct LogPage: Codable, Sendable {
    public var commitIndex: UInt64
    public var term: UInt64
    public var entries: [LogEntryDigest]
}

/// A service's JSON written directly (a created service is the answer of every
/// `POST /service`): the fields in sorted key order, as `CompactJSONEncoder` writes them from
/// the `Encodable` conformance. `ServiceViewJSONTests` compares the two, so a field added
/// above and not here fails that test.
extension ServiceView: JSONWritable {
    public func writeJSON(to writer: inout JSONObjectWriter) throws {
        try writer.field("autoscaler", encoding: autoscaler)
        writer.field("containerId", containerId)
        writer.field("cpu", cpu)
        writer.field("description", description)
        writer.field("id", id)
        writer.field("image", image)
        writer.field("index", index)
        writer.field("label", label)
        try writer.field("load", encoding: load)
        writer.field("memory", memory)
        writer.field("name", name)
        writer.field("pending", pending)
        writer.field("pendingReason", pendingReason)
        writer.field("placed", placed)
        writer.field("placement", placement)
        writer.field("privatePort", privatePort)
        writer.field("publishedPort", publishedPort)
        writer.field("replicas", replicas)
        writer.field("requestId", requestId)
        writer.field("status", status)
        writer.field("term", term)
        writer.field("updatedIndex", updatedIndex)
        writer.field("vital", vital)
    }
}
