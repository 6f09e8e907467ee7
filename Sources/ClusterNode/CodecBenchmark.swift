import Foundation
import Raft
import Transport

/// The per-request work a leader does off the network and the disk, timed alone: reading a
/// client's `POST /service` (head and body), encoding its answer, and the Raft messages of
/// one replication round; the per-service cost of a snapshot of the state machine (every
/// node encodes one as its log grows, which a large state pays for in every request's CPU);
/// and applying a committed create to the state machine, which every node does.
/// `orchestrator bench codec` prints it; a change to the parser or the coders shows here
/// before it shows in a cluster's throughput.
public enum CodecBenchmark {
    public struct Result: Codable, Sendable {
        public var operation: String
        public var nanoseconds: Double
    }

    /// Each operation `iterations` times; the fastest of three passes, in nanoseconds per operation.
    public static func run(iterations: Int) throws -> [Result] {
        let body = Array(#"{"container": {"name": "bench", "replicas": 1}}"#.utf8)
        let request = Array(("POST /service HTTP/1.1\r\nHost: 127.0.0.1:8001\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.count)\r\n\r\n").utf8) + body
        var record = ServiceRecord(id: 4_711, spec: ServiceSpec(name: "bench", replicas: 1), placement: [8_002: 1], pending: 0,
                                   index: 9_000, term: 3, updatedIndex: 9_000, requestID: UUID().uuidString)
        record.publishedPort = nil
        let answer = NodeAPI.CreatedServices(index: 9_000, term: 3, requestId: record.requestID, leader: "localhost:8001",
                                             services: [ServiceView(record, nowMs: 0)])
        let command = ClusterCommand.createServices(requestID: record.requestID, services: [
            PlannedService(spec: record.spec, decision: Placement.Decision(replicas: [8_002: 1], pending: 0, pendingReason: nil)),
        ])
        let entry = Entry(term: 3, index: 9_000, data: ClusterCommandCodec.encode(command))
        let appends = [Envelope(from: 8_001, to: 8_002, message: .appendEntries(AppendEntries(
            term: 3, prevLogIndex: 8_999, prevLogTerm: 3, entries: Array(repeating: entry, count: 8), leaderCommit: 8_998)))]
        let wire = RaftWireCodec.encode(appends)

        var results: [Result] = []
        /// The best of three runs of `repetitions` calls, per call or per one of the `units`
        /// each call handles.
        func time(_ operation: String, repetitions: Int = iterations, units: Int = 1, _ body: () throws -> Void) rethrows {
            var best = Double.infinity
            for _ in 0..<3 {
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<repetitions { try body() }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / Double(repetitions * units))
            }
            results.append(Result(operation: operation, nanoseconds: best))
        }
        let limits = ServerLimits()
        try time("parse POST /service head and body") { _ = try HTTPRequest.parse(request, limits: limits) }
        try time("decode its body (ServiceRequest)") { _ = try ServiceRequest.specs(from: body) }
        time("encode its answer (CreatedServices)") { _ = JSONBody.response(answer, status: .created) }
        time("encode the command (ClusterCommandCodec)") { _ = ClusterCommandCodec.encode(command) }
        try time("decode the command") { _ = try ClusterCommandCodec.decode(entry.data) }
        time("encode AppendEntries of 8 entries") { _ = RaftWireCodec.encode(appends) }
        try time("decode AppendEntries of 8 entries") { _ = try RaftWireCodec.decode(wire) }

        // A state of 10,000 services made as a cluster makes them (one request each), timed
        // per service: the snapshot's encoding and its restore on a node that installs it.
        var state = ClusterState(members: [8_001, 8_002, 8_003], nodeResources: NodeResources(slots: 1_000_000, cpuMillicores: 1 << 40, memoryMB: 1 << 40))
        /// The log entry of the `number`th request: one service of one replica, on one of the three nodes.
        func creation(_ number: Int) -> Entry {
            let create = ClusterCommand.createServices(requestID: RandomID.uuidString(), services: [
                PlannedService(spec: ServiceSpec(name: "bench", replicas: 1),
                               decision: Placement.Decision(replicas: [UInt64(8_001 + number % 3): 1], pending: 0, pendingReason: nil)),
            ])
            return Entry(term: 3, index: LogIndex(UInt64(number)), data: ClusterCommandCodec.encode(create))
        }
        let services = 10_000
        for number in 1...services { _ = state.apply(creation(number)) }
        let snapshot = state.snapshotData()
        let rounds = max(1, iterations / (services * 10))
        time("encode a snapshot, per service (of 10,000)", repetitions: rounds, units: services) { _ = state.snapshotData() }
        try time("restore a snapshot, per service", repetitions: rounds, units: services) { _ = try ClusterState(snapshotData: snapshot) }

        // What every node does with each committed request: apply it (decoded, as the
        // leader and the followers have it from the entry they wrote).
        let applies = max(1, iterations / 10)
        let entries = (0..<3 * applies).map { creation(services + 1 + $0) }
        let commands = try entries.map { entry throws(ClusterCommandCodec.Malformed) in try ClusterCommandCodec.decode(entry.data) }
        var next = 0
        time("apply a created service (on every node)", repetitions: applies) {
            _ = state.apply(entries[next], decoded: commands[next])
            next += 1
        }
        return results
    }
}
