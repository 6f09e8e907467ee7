@testable import ClusterNode
import Raft
import Testing

/// Published ports (seed 000's `publish`, seed 004's `port`), containers pinned to a node,
/// and the desired-state file, as applied state.
@Suite struct PortTests {
    static func entry(_ index: UInt64, _ command: ClusterCommand) -> Entry {
        Entry(term: 1, index: LogIndex(index), data: ClusterCommandCodec.encode(command))
    }

    static func create(_ requestID: String, _ spec: ServiceSpec, on nodes: [UInt64: Int]) -> ClusterCommand {
        .createServices(requestID: requestID, services: [PlannedService(spec: spec, decision: .init(replicas: nodes, pending: 0, pendingReason: nil))])
    }

    static func assertIndexMatchesRecords(_ state: ClusterState) {
        let rebuilt = state.portIndexFromRecords()
        #expect(rebuilt.conflicts == 0)
        #expect(rebuilt.ports == state.ports)
    }

    @Test func aPublishedServiceHoldsItsPortOnEachOfItsNodesOneReplicaPerNode() throws {
        var state = ClusterState(members: [8001, 8002, 8003], nodeResources: .standard(slots: 4))
        let web = ServiceSpec(name: "web", replicas: 3, publish: .fixed(8080))
        // A stale or careless decision: two replicas on 8001. Only one may publish 8080 there.
        #expect(state.apply(Self.entry(1, Self.create("a", web, on: [8001: 2, 8002: 1]))) == .services([1]))
        let first = try #require(state.services[1])
        #expect(first.publishedPort == 8080 && first.placement == [8001: 1, 8002: 1] && first.pending == 1)
        #expect(state.ports[8001]?[8080] == .service(1) && state.ports[8002]?[8080] == .service(1) && state.ports[8003] == nil)
        // Another service on the same port gets only the node where it is free.
        _ = state.apply(Self.entry(2, Self.create("b", ServiceSpec(name: "api", replicas: 2, publish: .fixed(8080)), on: [8002: 1, 8003: 1])))
        let second = try #require(state.services[2])
        #expect(second.placement == [8003: 1] && second.pending == 1)
        #expect(second.pendingReason?.contains("port 8080 is taken on localhost:8002") == true)
        Self.assertIndexMatchesRecords(state)
        // "Any port" picks the lowest free in the automatic range on every node, then the next.
        _ = state.apply(Self.entry(3, Self.create("c", ServiceSpec(replicas: 1, publish: .any), on: [8001: 1])))
        _ = state.apply(Self.entry(4, Self.create("d", ServiceSpec(replicas: 1, publish: .any), on: [8003: 1])))
        #expect(state.services[3]?.publishedPort == 30_000 && state.services[4]?.publishedPort == 30_001)
        // Snapshots keep the ports; the index is rebuilt from the records.
        let restored = try ClusterState(snapshotData: state.snapshotData())
        #expect(restored.ports == state.ports && restored.services == state.services && restored.snapshotData() == state.snapshotData())
        // Deleting releases the port: the second service now fits on 8001 and 8002.
        _ = state.apply(Self.entry(5, .deleteService(requestID: "e", serviceID: 1)))
        #expect(state.ports[8001]?[8080] == nil && state.ports[8002]?[8080] == nil)
        _ = state.apply(Self.entry(6, .scaleService(requestID: "f", serviceID: 2, replicas: 3, decision: .init(replicas: [8001: 1, 8002: 1, 8003: 1], pending: 0, pendingReason: nil))))
        #expect(state.services[2]?.placement == [8001: 1, 8002: 1, 8003: 1] && state.services[2]?.pending == 0)
        Self.assertIndexMatchesRecords(state)
    }

    @Test func theLeaderPlacesAPublishedServiceOnlyWhereItsPortIsFree() {
        var state = ClusterState(members: [8001, 8002, 8003], nodeResources: .standard(slots: 4))
        _ = state.apply(Self.entry(1, Self.create("a", ServiceSpec(replicas: 1, publish: .fixed(80)), on: [8002: 1])))
        let spec = ServiceSpec(replicas: 3, publish: .fixed(80))
        let healthy = state.eligibleNodes([8001, 8002, 8003], for: spec, service: nil)
        #expect(healthy == [8001, 8003])
        var usage = state.usage()
        let decision = Placement.place(count: 3, demand: spec.demand, capacity: state.capacity, usage: &usage, healthy: healthy, onePerNode: true)
        #expect(decision.replicas == [8001: 1, 8003: 1] && decision.pending == 1)
        // For the service itself: its own nodes are not eligible again (one replica each).
        let own = state.services[1]!
        #expect(state.eligibleNodes([8001, 8002, 8003], for: own.spec, service: own) == [8001, 8003])
    }

    @Test func aPinnedContainerGoesOnItsNodeOrIsRefusedWithTheReason() throws {
        var state = ClusterState(members: [8001, 8002], nodeResources: .standard(slots: 2))
        let spec = ContainerSpec(image: "nginx", service: "web", publish: .fixed(9000))
        #expect(state.apply(Self.entry(1, .createContainer(requestID: "1", spec: spec, node: 8001, pinned: true, atMs: 5))) == .container(1))
        #expect(state.containers[1]?.publicPort == 9000 && state.ports[8001]?[9000] == .container(1))
        // The same port on the same node: refused, nothing created, the reason remembered.
        let clash = state.apply(Self.entry(2, .createContainer(requestID: "2", spec: spec, node: 8001, pinned: true, atMs: 6)))
        #expect(clash == .rejected("port 9000 on localhost:8001 is taken by container 1"))
        #expect(state.containers.count == 1 && state.nextContainerID == 2)
        #expect(state.record(ofRequest: "2")?.rejection == "port 9000 on localhost:8001 is taken by container 1")
        // A retry answers the same refusal (and still creates nothing).
        #expect(state.apply(Self.entry(3, .createContainer(requestID: "2", spec: spec, node: 8001, pinned: true, atMs: 7))) == clash)
        // Any port: the lowest free on that node.
        let any = ContainerSpec(image: "nginx", publish: .any)
        _ = state.apply(Self.entry(4, .createContainer(requestID: "4", spec: any, node: 8001, pinned: true, atMs: 8)))
        #expect(state.containers[2]?.publicPort == 30_000)
        // The node is full now (2 slots): refused for room, not for the port.
        guard case .rejected(let reason) = state.apply(Self.entry(5, .createContainer(requestID: "5", spec: any, node: 8001, pinned: true, atMs: 9))) else {
            Issue.record("a full node took a pinned container")
            return
        }
        #expect(reason.contains("has no room"))
        let restored = try ClusterState(snapshotData: state.snapshotData())
        #expect(restored.containers == state.containers && restored.ports == state.ports)
        #expect(restored.record(ofRequest: "2")?.rejection == state.record(ofRequest: "2")?.rejection)
        // Deleting frees the port; a node leaving frees its containers' ports.
        _ = state.apply(Self.entry(6, .deleteContainer(requestID: "6", containerID: 1)))
        #expect(state.ports[8001]?[9000] == nil)
        _ = state.apply(Entry(term: 1, index: 7, kind: .membership, data: Membership(voters: [8002]).encoded))
        #expect(state.ports[8001] == nil && state.containers[2]?.state == .exited)
        Self.assertIndexMatchesRecords(state)
    }

    @Test func theDesiredStateIsCommittedAndKeptInSnapshots() throws {
        var state = ClusterState(members: [8001, 8002], nodeResources: .standard(slots: 4))
        let (specs, _) = try DesiredState.specs(from: Array(#"{"services": [{"name": "web", "image": "nginx", "replicas": 2, "publish": 8080}, {"name": "db", "image": "postgres"}]}"#.utf8))
        #expect(specs.map(\.name) == ["web", "db"] && specs.allSatisfy(\.vital) && specs[1].replicas == 1 && specs[0].publish == .fixed(8080))
        _ = state.apply(Self.entry(1, .setDesiredState(requestID: "d", services: specs)))
        #expect(state.vitalServices.keys.sorted() == ["db", "web"])
        let restored = try ClusterState(snapshotData: state.snapshotData())
        #expect(restored.vitalServices == state.vitalServices)
        // The view says what the reconcile loop has to do.
        var fewer = specs[0]
        fewer.replicas = 1  // scaled down by a client: the loop scales it back
        _ = state.apply(Self.entry(2, Self.create("vital-web", fewer, on: [8001: 1])))
        let view = DesiredState.View(state, term: 1)
        #expect(view.services.map(\.status) == ["missing", "scaling"])
        for bad in [#"{"services": [{"image": "x"}]}"#, #"{"services": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}"#,
                    #"{"services": [{"name": "a"}]}"#, #"{"servics": []}"#] {
            #expect(throws: NodeError.self) { try DesiredState.check(Array(bad.utf8)) }
        }
    }

    @Test func commandsOfTheFirstFormatStillDecode() throws {
        // A create as format 1 wrote it (before ports): no publish, private port or vital flag.
        var writer = ByteWriter()
        writer.write(UInt8(1))  // format
        writer.write(UInt8(1))  // create services
        writer.write(string: "old")
        writer.write(UInt32(1))
        writer.write(UInt8(0))
        writer.write(UInt64(0))
        for _ in 0..<3 { writer.write(optional: String?.none) }
        writer.write(optional: "nginx")
        for value in [2, 100, 64] { writer.write(UInt64(value)) }
        writer.write(Placement.Decision(replicas: [8001: 2], pending: 0, pendingReason: nil))
        let command = try ClusterCommandCodec.decode(writer.bytes)
        #expect(command == Self.create("old", ServiceSpec(image: "nginx", replicas: 2), on: [8001: 2]))
        // Format 2 round-trips every new field.
        let new = ClusterCommand.createContainer(requestID: "n", spec: ContainerSpec(image: "a", service: "s", publish: .any, privatePort: 3000),
                                                 node: 8001, pinned: true, atMs: 1)
        #expect(try ClusterCommandCodec.decode(ClusterCommandCodec.encode(new)) == new)
        let desired = ClusterCommand.setDesiredState(requestID: "d", services: [ServiceSpec(name: "a", replicas: 1, publish: .fixed(1), vital: true)])
        #expect(try ClusterCommandCodec.decode(ClusterCommandCodec.encode(desired)) == desired)
    }
}
