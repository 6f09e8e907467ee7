@testable import ClusterNode
import Foundation
import Raft
import Testing
import Transport

@Suite struct PlacementTests {
    private let five: [UInt64: NodeResources] = Dictionary(uniqueKeysWithValues: (8001...8005).map { (UInt64($0), NodeResources.standard(slots: 100)) })
    private let demand = ServiceSpec(replicas: 1).demand

    @Test func replicasAlwaysSumToWhatWasAskedAndSpreadEvenly() {
        var usage: [UInt64: NodeResources] = [:]
        let decision = Placement.place(count: 99, demand: demand, capacity: five, usage: &usage, healthy: Set(five.keys))
        #expect(decision.placedCount == 99 && decision.pending == 0)
        #expect(decision.replicas == [8001: 20, 8002: 20, 8003: 20, 8004: 20, 8005: 19])
    }

    @Test func tiesBreakDeterministicallyTowardLowestNode() {
        var usage: [UInt64: NodeResources] = [:]
        let first = Placement.place(count: 3, demand: demand, capacity: five, usage: &usage, healthy: Set(five.keys))
        #expect(first.replicas == [8001: 1, 8002: 1, 8003: 1])
    }

    @Test func capacityIsNeverExceededAndTheRestIsPendingWithReason() {
        var usage: [UInt64: NodeResources] = [:]
        let decision = Placement.place(count: 520, demand: demand, capacity: five, usage: &usage, healthy: Set(five.keys))
        #expect(decision.placedCount == 500 && decision.pending == 20)
        #expect(decision.pendingReason?.contains("insufficient capacity") == true)
        #expect(usage.values.allSatisfy { $0.slots <= 100 })
        // CPU binds before slots when replicas are large: 10,000m per node holds ten 1,000m replicas.
        var fresh: [UInt64: NodeResources] = [:]
        let big = Placement.place(count: 60, demand: NodeResources(slots: 1, cpuMillicores: 1_000, memoryMB: 64), capacity: five, usage: &fresh, healthy: Set(five.keys))
        #expect(big.placedCount == 50 && big.pending == 10)
    }

    @Test func loadedNodesGetLessAndUsageCarriesAcrossRequests() {
        var usage: [UInt64: NodeResources] = [8001: NodeResources(slots: 50, cpuMillicores: 5_000, memoryMB: 3_200)]
        let decision = Placement.place(count: 8, demand: demand, capacity: five, usage: &usage, healthy: Set(five.keys))
        #expect(decision.replicas[8001] == nil)
        // The second request sees what the first placed (no double booking).
        let second = Placement.place(count: 4, demand: demand, capacity: five, usage: &usage, healthy: Set(five.keys))
        #expect(second.replicas == [8002: 1, 8003: 1, 8004: 1, 8005: 1])
    }

    @Test func unhealthyNodesGetNothing() {
        var usage: [UInt64: NodeResources] = [:]
        let decision = Placement.place(count: 4, demand: demand, capacity: five, usage: &usage, healthy: [8001, 8002])
        #expect(decision.replicas == [8001: 2, 8002: 2])
        var none: [UInt64: NodeResources] = [:]
        #expect(Placement.place(count: 2, demand: demand, capacity: five, usage: &none, healthy: []).pendingReason == "no healthy node to place on")
    }
}

@Suite struct ClusterStateTests {
    private func entry(_ index: UInt64, _ command: ClusterCommand) throws -> Entry {
        Entry(term: 1, index: LogIndex(index), data: ClusterCommandCodec.encode(command))
    }

    private let capacity: [UInt64: NodeResources] = [1: .standard(slots: 10), 2: .standard(slots: 10)]

    @Test func retriedRequestAppliesOnce() throws {
        var state = ClusterState(members: [1, 2], nodeResources: .standard(slots: 10))
        let plan = PlannedService(spec: ServiceSpec(replicas: 4), decision: Placement.Decision(replicas: [1: 2, 2: 2], pending: 0, pendingReason: nil))
        let command = ClusterCommand.createServices(requestID: "r1", services: [plan])
        #expect(state.apply(try entry(1, command)) == .services([1]))
        #expect(state.apply(try entry(2, command)) == .services([1]))
        #expect(state.services.count == 1 && state.usage()[1]?.slots == 2)
    }

    @Test func decisionBeyondCapacityIsTrimmedToPendingWhenApplied() throws {
        var state = ClusterState(members: [1, 2], nodeResources: .standard(slots: 10))
        let plan = PlannedService(spec: ServiceSpec(replicas: 15), decision: Placement.Decision(replicas: [1: 15], pending: 0, pendingReason: nil))
        _ = state.apply(try entry(1, .createServices(requestID: "r", services: [plan])))
        let service = try #require(state.services[1])
        #expect(service.placement == [1: 10] && service.pending == 5)
    }

    @Test func scaleAndDeleteChangeTheStateAndUnknownServicesAreRejected() throws {
        var state = ClusterState(members: [1, 2], nodeResources: .standard(slots: 10))
        let plan = PlannedService(spec: ServiceSpec(replicas: 2), decision: Placement.Decision(replicas: [1: 2], pending: 0, pendingReason: nil))
        _ = state.apply(try entry(1, .createServices(requestID: "a", services: [plan])))
        _ = state.apply(try entry(2, .scaleService(requestID: "b", serviceID: 1, replicas: 6, decision: Placement.Decision(replicas: [1: 3, 2: 3], pending: 0, pendingReason: nil))))
        #expect(state.services[1]?.placedCount == 6 && state.services[1]?.spec.replicas == 6)
        #expect(state.apply(try entry(3, .deleteService(requestID: "c", serviceID: 7))) == .rejected("service 7 does not exist"))
        _ = state.apply(try entry(4, .deleteService(requestID: "d", serviceID: 1)))
        #expect(state.services.isEmpty && state.usage().isEmpty)
    }

    @Test func keptUsageEqualsAFullRecountAfterEveryKindOfChange() throws {
        var state = ClusterState(members: [1, 2], nodeResources: .standard(slots: 10))
        func recount() -> [UInt64: NodeResources] {
            var usage: [UInt64: NodeResources] = [:]
            for service in state.services.values {
                for (node, count) in service.placement {
                    let add = NodeResources(slots: count, cpuMillicores: service.spec.cpu * count, memoryMB: service.spec.memory * count)
                    let now = usage[node] ?? NodeResources(slots: 0, cpuMillicores: 0, memoryMB: 0)
                    usage[node] = NodeResources(slots: now.slots + add.slots, cpuMillicores: now.cpuMillicores + add.cpuMillicores, memoryMB: now.memoryMB + add.memoryMB)
                }
            }
            return usage
        }
        let commands: [ClusterCommand] = [
            .createServices(requestID: "a", services: [PlannedService(spec: ServiceSpec(replicas: 3, cpu: 50), decision: .init(replicas: [1: 2, 2: 1], pending: 0, pendingReason: nil))]),
            .createServices(requestID: "b", services: [PlannedService(spec: ServiceSpec(replicas: 2), decision: .init(replicas: [2: 2], pending: 0, pendingReason: nil))]),
            .scaleService(requestID: "c", serviceID: 1, replicas: 5, decision: .init(replicas: [1: 3, 2: 2], pending: 0, pendingReason: nil)),
            .setNodeHealth(node: 2, isHealthy: false, moves: [ServiceMove(serviceID: 2, decision: .init(replicas: [1: 2], pending: 0, pendingReason: nil))]),
            .deleteService(requestID: "d", serviceID: 1),
        ]
        for (position, command) in commands.enumerated() {
            _ = state.apply(try entry(UInt64(position + 1), command))
            #expect(state.usage() == recount(), "after command \(position + 1)")
        }
    }

    @Test func undecodableCommandIsRejectedTheSameEverywhere() {
        var state = ClusterState(members: [1, 2], nodeResources: .standard(slots: 10))
        guard case .rejected = state.apply(Entry(term: 1, index: 1, data: Array("garbage".utf8))) else {
            Issue.record("expected rejection")
            return
        }
        #expect(state.appliedIndex == 1)
    }
}

@Suite struct LinkTableTests {
    private func table() -> LinkTable { LinkTable(selfID: 8004, peers: [8001, 8002, 8003, 8004, 8005]) }

    @Test(arguments: [#"{"localhost:8002": 0}"#, #"{"127.0.0.1:8002": 0}"#, #"{"8002": false}"#, #"{"http://localhost:8002": 0}"#])
    func everyPeerAliasCutsTheSameLink(body: String) throws {
        let links = table()
        try links.update(from: Array(body.utf8))
        #expect(links.state(to: 8002).isUp == false)
        #expect(links.state(to: 8001).isUp && links.state(to: 8003).isUp)
    }

    @Test func oneRestoresAndObjectsSetDelayAndLoss() throws {
        let links = table()
        try links.update(from: Array(#"{"localhost:8002": 0}"#.utf8))
        try links.update(from: Array(#"{"localhost:8002": 1, "8003": {"delayMs": 100, "loss": 0.2}}"#.utf8))
        #expect(links.state(to: 8002) == .healthy)
        #expect(links.state(to: 8003) == LinkState(isUp: true, delayMilliseconds: 100, loss: 0.2))
        let shown = String(decoding: links.renderJSON(pretty: false), as: UTF8.self)
        #expect(shown.contains(#""localhost:8002":1"#) && shown.contains(#""delayMs":100"#))
    }

    @Test(arguments: [
        #"{"localhost:8009": 0}"#, #"{"localhost:8004": 0}"#, #"{"remote:8002": 0}"#, #"{"localhost:8002": 2}"#,
        #"{"localhost:8002": "0"}"#, #"{"localhost:8002": null}"#, #"{"localhost:8002": {"delayMs": -1}}"#,
        #"{"localhost:8002": {"loss": 1.5}}"#, #"{"localhost:8002": {"speed": 1}}"#, "[]", "{}", "",
    ])
    func anythingElseIsA400AndChangesNothing(body: String) {
        let links = table()
        #expect { try links.update(from: Array(body.utf8)) } throws: { if case .invalid? = $0 as? NodeError { true } else { false } }
        #expect(links.snapshot.values.allSatisfy { $0 == .healthy })
    }

    /// A body in another shape ({"to": ..., "state": ...}) is refused naming the key that is
    /// not a peer and the shape that is meant.
    @Test func aKeyThatIsNotAPeerIsNamedWithTheExpectedShape() {
        let links = table()
        #expect { try links.update(from: Array(#"{"to": "localhost:8002", "state": "down"}"#.utf8)) } throws: { error in
            guard case .invalid(let message)? = error as? NodeError else { return false }
            return message.hasPrefix(#"unknown peer "state": each key names a peer"#) && message.contains(#"{"localhost:8002": 0}"#)
        }
    }

    @Test func aBadKeyRejectsTheWholeUpdate() {
        let links = table()
        #expect(throws: NodeError.self) { try links.update(from: Array(#"{"localhost:8002": 0, "localhost:8009": 0}"#.utf8)) }
        #expect(links.state(to: 8002).isUp)
    }
}

@Suite struct ServiceRequestTests {
    @Test(arguments: [
        (#"{"container": {"id": 5, "replicas": 25}}"#, [25]),
        (#"{"containers": [{"description": "container 0", "replicas": 10}, {"description": "container 1", "replicas": 10}]}"#, [10, 10]),
        (#"{"container": {"id": 5, "label": "web"}, "replicas": 25}"#, [25]),
    ])
    func everySeedShapeParses(body: String, replicas: [Int]) throws {
        #expect(try ServiceRequest.specs(from: Array(body.utf8)).specs.map(\.replicas) == replicas)
    }

    @Test(arguments: [
        (#"{}"#, "missing field container"),
        (#"{"container": {"id": 5}}"#, "missing field replicas in container"),
        (#"{"container": {"id": 5, "replicas": 0}}"#, "container.replicas must be a whole number from 1"),
        (#"{"container": {"id": 5, "replicas": 2}, "replicas": 3}"#, "container.replicas (2) and replicas (3) disagree"),
        (#"{"containers": []}"#, "containers is empty"),
        (#"{"containers": [{"replicas": 1}, {"replicas": "two"}]}"#, "field containers[1].replicas"),
        (#"{"containers": [{"replicas": 1}, {"replicas": 1.5}]}"#, "field containers[1].replicas: expected a whole number, got 1.5"),
        (#"{"container": {"replicas": 1, "cpu": 0}}"#, "container.cpu must be millicores"),
        (#"{"container": {"id": 5, "replicas": 2.5}}"#, "field container.replicas: expected a whole number, got 2.5"),
        (#"{"container": {"id": 5, "replicas": 99999999999999999999999}}"#, "field container.replicas: expected a whole number from"),
        (#"{"container": {"id": 5, "replicas": 1}, "cmd": "sh", "detached": true, "pad": "x"}"#, "unknown fields cmd, detached, pad"),
        (#"{"container": {"id": 5, "replicas": 1, "publish": 80, "cpu_target": 50, "ports": 1}}"#, "unknown fields container.cpu_target, container.ports"),
        (#"{"container": {"id": -1, "replicas": 1}}"#, "container.id must be a whole number of at least 0"),
        (#"{"container": {"id": 1, "name": "", "replicas": 1}}"#, "container.name is empty"),
        (#"{"container": {"id": 1, "replicas": 1}, "container": {"id": 2}}"#, "invalid JSON body: duplicate field"),
        (#"{"container": {"id": 1, "replicas": 1}} x"#, "invalid JSON body: unexpected text after the JSON value"),
    ])
    func invalidRequestsNameTheField(body: String, message: String) {
        #expect { _ = try ServiceRequest.specs(from: Array(body.utf8)) } throws: { error in
            guard case .invalid(let text)? = error as? NodeError else { return false }
            return text.hasPrefix(message)
        }
    }

    /// The fast path (`ServiceRequest.plain`) reads what the strict decoder reads, field for
    /// field, and stands aside (nil) for anything else, which the strict decoder then reads or
    /// refuses naming the problem.
    @Test func thePlainPathReadsWhatTheStrictDecoderReads() throws {
        let plainBodies = [
            #"{"container": {"id": 5, "replicas": 25}}"#,
            #"{"containers": [{"description": "container 0", "replicas": 10}, {"description": "c\u00e9 \"1\"", "replicas": 10}]}"#,
            #"{"container": {"id": 5, "label": "web"}, "replicas": 25, "requestId": "k-1"}"#,
            #"{"container": {"name": "a", "image": "nginx", "cpu": 250, "memory": 64, "publish": true, "privatePort": 80, "replicas": 2}}"#,
            #"{"container": {"name": "b", "publish": 8080, "replicas": 1}}"#,
            #"{"container": {"name": "c", "publish": "8081", "replicas": 1}}"#,
            #"{"container": {"name": "d", "publish": false, "replicas": -3}}"#,
            #"{"containers": []}"#,
            #"{"container": {"replicas": 1}, "containers": [{"replicas": 1}]}"#,
            #" { "container" : { "id" : 0 , "replicas" : 1 } } "#,
        ]
        for body in plainBodies {
            let bytes = Array(body.utf8)
            let plain = try #require(ServiceRequest.plain(bytes), "the plain path stood aside for \(body)")
            let strict = try JSONBody.decodeStrictly(ServiceRequest.self, from: bytes)
            #expect(plain.requestId == strict.requestId, "\(body)")
            let plainSpecs = Result { () throws(NodeError) in try plain.validated() }
            let strictSpecs = Result { () throws(NodeError) in try strict.validated() }
            switch (plainSpecs, strictSpecs) {
            case (.success(let a), .success(let b)): #expect(a == b, "\(body)")
            case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)", "\(body)")
            default: Issue.record("one path accepted \(body), the other refused it")
            }
        }
        let otherBodies = [
            #"{"container": {"id": 5, "replicas": 2.5}}"#, #"{"container": {"id": 5, "replicas": 1e2}}"#,
            #"{"container": {"replicas": "two"}}"#, #"{"container": {"replicas": 1, "name": null}}"#,
            #"{"container": {"replicas": 1, "publish": null}}"#, #"{"container": {"replicas": 1, "publish": {"port": 1}}}"#,
            #"{"container": {"replicas": 1, "extra": 1}}"#, #"{"container": {"replicas": 1}, "extra": 1}"#,
            #"{"container": [1]}"#, #"{"containers": {"replicas": 1}}"#, #"{"containers": [1]}"#,
            #"{"replicas": 99999999999999999999, "container": {}}"#, #"{"requestId": 5, "container": {"replicas": 1}}"#,
            #"[{"container": {"replicas": 1}}]"#, #"{"container": {"replicas": 1}"#, "", #"{"container": {"replicas": 1, "replicas": 2}}"#,
        ]
        for body in otherBodies {
            #expect(ServiceRequest.plain(Array(body.utf8)) == nil, "the plain path read \(body)")
        }
    }
}

@Suite struct RaftWireCodecTests {
    @Test func everyMessageKindRoundTrips() throws {
        let entries = [Entry(term: 2, index: 5, kind: .noop), Entry(term: 2, index: 6, data: Array("x".utf8))]
        let envelopes: [Envelope] = [
            Envelope(from: 1, to: 2, message: .requestVote(RequestVote(term: 3, lastLogIndex: 9, lastLogTerm: 2, isPreVote: true, isLeaderTransfer: true))),
            Envelope(from: 2, to: 1, message: .requestVoteResponse(RequestVoteResponse(term: 3, isGranted: true, isPreVote: false))),
            Envelope(from: 1, to: 3, message: .appendEntries(AppendEntries(term: 3, prevLogIndex: 4, prevLogTerm: 2, entries: entries, leaderCommit: 4))),
            Envelope(from: 3, to: 1, message: .appendEntriesResponse(AppendEntriesResponse(term: 3, isSuccess: false, matchIndex: 0, rejectedIndex: 4, hintIndex: 3, hintTerm: 1))),
            Envelope(from: 1, to: 2, message: .heartbeat(Heartbeat(term: 3, leaderCommit: 6, readContext: 77, isAnswerRequested: false))),
            Envelope(from: 1, to: 3, message: .heartbeat(Heartbeat(term: 3, leaderCommit: 6, readContext: 78, isAnswerRequested: true))),
            Envelope(from: 2, to: 1, message: .heartbeatResponse(HeartbeatResponse(term: 3, readContext: 77))),
            Envelope(from: 1, to: 3, message: .timeoutNow(TimeoutNow(term: 3))),
            Envelope(from: 1, to: 4, message: .installSnapshot(InstallSnapshot(
                term: 3, metadata: SnapshotMetadata(index: 40, term: 2, membership: Membership(voters: [1, 2, 3], learners: [4])),
                offset: 512, totalBytes: 2_000, checksum: 0xDEAD_BEEF, data: [1, 2, 3], isLast: false))),
            Envelope(from: 4, to: 1, message: .installSnapshotResponse(InstallSnapshotResponse(term: 3, snapshotIndex: 40, nextOffset: 515))),
        ]
        #expect(try RaftWireCodec.decode(RaftWireCodec.encode(envelopes)) == envelopes)
        // The room reserved for a body holds it, one message or all of them.
        for envelope in envelopes { #expect(RaftWireCodec.encode([envelope]).count <= RaftWireCodec.encodedBytes([envelope]), "\(envelope)") }
        #expect(RaftWireCodec.encode(envelopes).count <= RaftWireCodec.encodedBytes(envelopes))
    }

    @Test func truncatedOrPaddedBatchesAreRefused() {
        let bytes = RaftWireCodec.encode([Envelope(from: 1, to: 2, message: .heartbeat(Heartbeat(term: 1, leaderCommit: 0, readContext: 0)))])
        for cut in 0..<bytes.count {
            #expect(throws: RaftWireCodec.Malformed.self) { try RaftWireCodec.decode(Array(bytes[..<cut])) }
        }
        #expect(throws: RaftWireCodec.Malformed.self) { try RaftWireCodec.decode(bytes + [0]) }
        #expect(throws: RaftWireCodec.Malformed.self) { try RaftWireCodec.decode([0xFF, 0xFF, 0xFF, 0xFF]) }
    }
}

@Suite struct ClusterCommandCodecTests {
    @Test func everyCommandRoundTripsAndTruncationIsRefused() throws {
        let decision = Placement.Decision(replicas: [8001: 3, 8002: 2], pending: 1, pendingReason: "insufficient capacity")
        let spec = ServiceSpec(containerID: -5, name: "web", description: "café ☕", label: nil, image: "nginx:1", replicas: 6, cpu: 250, memory: 128)
        let commands: [ClusterCommand] = [
            .createServices(requestID: "r-1", services: [PlannedService(spec: spec, decision: decision), PlannedService(spec: ServiceSpec(replicas: 1), decision: .init(replicas: [:], pending: 1, pendingReason: nil))]),
            .scaleService(requestID: "r-2", serviceID: 7, replicas: 9, decision: decision),
            .deleteService(requestID: "r-3", serviceID: 7),
            .setNodeHealth(node: 8003, isHealthy: false, moves: [ServiceMove(serviceID: 1, decision: decision)]),
            .placePending(moves: []),
        ]
        for command in commands {
            let bytes = ClusterCommandCodec.encode(command)
            #expect(try ClusterCommandCodec.decode(bytes) == command)
            for cut in 0..<bytes.count {
                #expect(throws: ClusterCommandCodec.Malformed.self) { try ClusterCommandCodec.decode(Array(bytes[..<cut])) }
            }
        }
    }
}

@Suite struct ClusterStateSnapshotTests {
    private func entry(_ index: UInt64, _ command: ClusterCommand) -> Entry {
        Entry(term: 2, index: LogIndex(index), data: ClusterCommandCodec.encode(command))
    }

    @Test func restoredStateAppliesLaterEntriesExactlyLikeTheOriginal() throws {
        var state = ClusterState(members: [1, 2, 3], nodeResources: .standard(slots: 4))
        let plan = PlannedService(spec: ServiceSpec(name: "web", replicas: 5), decision: Placement.Decision(replicas: [1: 2, 2: 2, 3: 1], pending: 0, pendingReason: nil))
        _ = state.apply(entry(1, .createServices(requestID: "a", services: [plan, plan])))
        _ = state.apply(entry(2, .setNodeHealth(node: 3, isHealthy: false, moves: [])))
        var restored = try ClusterState(snapshotData: state.snapshotData())
        #expect(restored.snapshotData() == state.snapshotData())
        #expect(restored.usage() == state.usage())
        #expect(restored.unhealthyNodes == [3] && restored.appliedIndex == 2)
        // A retried request is still recognised after the restore, and new IDs continue.
        #expect(restored.apply(entry(3, .createServices(requestID: "a", services: [plan, plan]))) == .services([1, 2]))
        _ = state.apply(entry(3, .createServices(requestID: "a", services: [plan, plan])))
        let next = PlannedService(spec: ServiceSpec(replicas: 1), decision: Placement.Decision(replicas: [1: 1], pending: 0, pendingReason: nil))
        #expect(restored.apply(entry(4, .createServices(requestID: "b", services: [next]))) == .services([3]))
        _ = state.apply(entry(4, .createServices(requestID: "b", services: [next])))
        #expect(restored.snapshotData() == state.snapshotData())
    }

    // A request ID reused for another request is a client bug: it changes nothing, and the
    // state remembers what the first request was, through a snapshot too.
    @Test func requestIDReusedWithAnotherRequestIsRejected() throws {
        var state = ClusterState(members: [1, 2], nodeResources: .standard(slots: 8))
        let plan = PlannedService(spec: ServiceSpec(name: "web", replicas: 2), decision: Placement.Decision(replicas: [1: 1, 2: 1], pending: 0, pendingReason: nil))
        let other = PlannedService(spec: ServiceSpec(name: "db", replicas: 2), decision: plan.decision)
        #expect(state.apply(entry(1, .createServices(requestID: "k", services: [plan]))) == .services([1]))
        let first = ClusterCommand.createServices(requestID: "k", services: [plan]).requestFingerprint
        #expect(!state.isReused("k", withOtherThan: first))
        #expect(state.isReused("k", withOtherThan: ClusterCommand.createServices(requestID: "k", services: [other]).requestFingerprint))
        // Another placement of the same request is the same request.
        let replaced = PlannedService(spec: plan.spec, decision: Placement.Decision(replicas: [1: 2], pending: 0, pendingReason: nil))
        #expect(ClusterCommand.createServices(requestID: "k", services: [replaced]).requestFingerprint == first)
        var restored = try ClusterState(snapshotData: state.snapshotData())
        for copy in [0, 1] {
            let outcome = copy == 0 ? state.apply(entry(2, .createServices(requestID: "k", services: [other])))
                                    : restored.apply(entry(2, .createServices(requestID: "k", services: [other])))
            #expect(outcome == .rejected("requestId k was already used for a different request"))
        }
        #expect(state.services.count == 1 && restored.services.count == 1)
        #expect(state.apply(entry(3, .scaleService(requestID: "k", serviceID: 1, replicas: 5, decision: plan.decision))) != .services([1]))
        #expect(state.services[1]?.spec.replicas == 2)
        #expect(state.record(ofRequest: "k")?.index == 1)
    }

    @Test func membershipEntriesSetTheNodesReplicasMayUse() {
        var state = ClusterState(members: [1, 2], nodeResources: .standard(slots: 2))
        let grown = Membership(voters: [1, 2], learners: [3])
        _ = state.apply(Entry(term: 1, index: 1, kind: .membership, data: grown.encoded))
        #expect(state.capacity.keys.sorted() == [1, 2, 3])
        let plan = PlannedService(spec: ServiceSpec(replicas: 3), decision: Placement.Decision(replicas: [1: 1, 2: 1, 3: 1], pending: 0, pendingReason: nil))
        _ = state.apply(entry(2, .createServices(requestID: "x", services: [plan])))
        _ = state.apply(Entry(term: 1, index: 3, kind: .membership, data: Membership(voters: [1, 2]).encoded))
        #expect(state.replicasOnRemovedNodes == [3])
    }

    @Test func damagedSnapshotDataIsRefused() {
        let state = ClusterState(members: [1], nodeResources: .standard(slots: 2))
        var bytes = state.snapshotData()
        bytes.removeLast()
        #expect(throws: ClusterCommandCodec.Malformed.self) { try ClusterState(snapshotData: bytes) }
        #expect(throws: ClusterCommandCodec.Malformed.self) { try ClusterState(snapshotData: [9] + state.snapshotData().dropFirst()) }
    }
}
