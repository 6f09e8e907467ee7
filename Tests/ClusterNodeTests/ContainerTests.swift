import ClusterNode
import Raft
import Testing

@Suite struct ContainerTests {
    static func entry(_ index: UInt64, _ command: ClusterCommand) -> Entry {
        Entry(term: 1, index: LogIndex(index), data: ClusterCommandCodec.encode(command))
    }

    @Test func aContainerIsPlacedStartedStoppedAndDeletedThroughTheLog() throws {
        var state = ClusterState(members: [8001, 8002], nodeResources: .standard(slots: 4))
        let spec = ContainerSpec(name: "worker", image: "golang:alpine", cmd: ["sh", "-c", "sleep 1"])
        let create = ClusterCommand.createContainer(requestID: "c", spec: spec, node: 8002, pinned: false, atMs: 1_000)
        #expect(try ClusterCommandCodec.decode(ClusterCommandCodec.encode(create)) == create)
        #expect(state.apply(Self.entry(1, create)) == .container(1))
        let created = try #require(state.containers[1])
        #expect(created.node == 8002 && created.state == .running)
        #expect(created.history.map(\.state) == [.created, .running] && created.history.last?.atMs == 1_000)
        #expect(state.usage()[8002] == spec.demand)
        // A retry of the create is the same container, not a second one.
        #expect(state.apply(Self.entry(2, create)) == .container(1))
        #expect(state.containers.count == 1)
        // Stop keeps its place and its reservation; a second stop changes nothing.
        _ = state.apply(Self.entry(3, .setContainerRunning(requestID: "s", containerID: 1, isRunning: false, atMs: 2_000)))
        _ = state.apply(Self.entry(4, .setContainerRunning(requestID: "s2", containerID: 1, isRunning: false, atMs: 2_500)))
        #expect(state.containers[1]?.state == .stopped && state.containers[1]?.history.count == 3)
        #expect(state.usage()[8002] == spec.demand)
        _ = state.apply(Self.entry(5, .setContainerRunning(requestID: "r", containerID: 1, isRunning: true, atMs: 3_000)))
        #expect(state.containers[1]?.state == .running && state.containers[1]?.history.last?.atMs == 3_000)
        let restored = try ClusterState(snapshotData: state.snapshotData())
        #expect(restored.containers == state.containers && restored.usage() == state.usage())
        #expect(restored.snapshotData() == state.snapshotData())
        guard case .rejected = state.apply(Self.entry(6, .setContainerRunning(requestID: "x", containerID: 9, isRunning: true, atMs: 0))) else {
            Issue.record("an unknown container was started")
            return
        }
        _ = state.apply(Self.entry(7, .deleteContainer(requestID: "d", containerID: 1)))
        #expect(state.containers.isEmpty && (state.usage()[8002] ?? .zero) == .zero)
    }

    @Test func aContainerThatFitsNowhereStaysCreatedAndOneOnALeavingNodeExits() throws {
        var state = ClusterState(members: [8001, 8002], nodeResources: .standard(slots: 1))
        let spec = ContainerSpec(image: "a")
        _ = state.apply(Self.entry(1, .createContainer(requestID: "1", spec: spec, node: 8001, pinned: false, atMs: 1)))
        // The leader's view was stale: 8001 is full, so the second is not placed there.
        _ = state.apply(Self.entry(2, .createContainer(requestID: "2", spec: spec, node: 8001, pinned: false, atMs: 2)))
        #expect(state.containers[2]?.node == nil && state.containers[2]?.state == .created)
        _ = state.apply(Self.entry(3, .setContainerRunning(requestID: "3", containerID: 2, isRunning: true, atMs: 3)))
        #expect(state.containers[2]?.state == .created)
        _ = state.apply(Entry(term: 1, index: 4, kind: .membership, data: Membership(voters: [8002]).encoded))
        #expect(state.containers[1]?.state == .exited && (state.usage()[8001] ?? .zero) == .zero)
    }
}
