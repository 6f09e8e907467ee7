import Foundation
import Raft

/// Seed 001's containers through the log: the leader places a new one like any replica
/// (the least allocated healthy node that acknowledges it), and starts and stops are entries.
extension ClusterService {
    /// Creates one container, on `pinnedTo` or where the leader places it (a node with room
    /// and, when it publishes a fixed port, that port free); returns it once committed.
    /// Pinned to a node without room or with its port taken, it is refused (409).
    func createContainer(_ spec: ContainerSpec, pinnedTo: UInt64? = nil, requestID: String) async throws(NodeError) -> ContainerRecord {
        _ = try await propose(requestID: requestID, summary: (0, 1)) { usage, state throws(NodeError) -> ClusterCommand? in
            if let pinnedTo {
                // Decided again when it applies; refused here already when it cannot fit now.
                if let reason = state.containerRefusal(spec, port: state.freePort(for: spec.publish, on: pinnedTo), on: pinnedTo, id: state.nextContainerID) {
                    throw .rejected("cannot create the container on \(address(pinnedTo)): \(reason)")
                }
                usage[pinnedTo] = (usage[pinnedTo] ?? .zero) + spec.demand
                return .createContainer(requestID: requestID, spec: spec, node: pinnedTo, pinned: true, atMs: LoadView.nowMs())
            }
            var healthy = placeableNodes(in: state)
            if case .fixed(let port) = spec.publish { healthy = healthy.filter { state.isPortFree(port, on: $0, for: nil) } }
            let placed = Placement.place(count: 1, demand: spec.demand, capacity: state.capacity, usage: &usage, healthy: healthy,
                                         cpuInUse: state.cpuInUse(atMs: LoadView.nowMs()))
            return .createContainer(requestID: requestID, spec: spec, node: placed.replicas.keys.first, pinned: false, atMs: LoadView.nowMs())
        }
        return try committedContainer(of: requestID)
    }

    /// Starts or stops a container (idempotent); returns it as it is once committed.
    func setContainerRunning(_ containerID: Int, isRunning: Bool, requestID: String) async throws(NodeError) -> ContainerRecord {
        _ = try await propose(requestID: requestID, summary: (0, 0)) { _, state throws(NodeError) -> ClusterCommand? in
            guard state.containers[containerID] != nil else { throw .notFound("container \(containerID) does not exist") }
            return .setContainerRunning(requestID: requestID, containerID: containerID, isRunning: isRunning, atMs: LoadView.nowMs())
        }
        return try committedContainer(of: requestID)
    }

    /// Removes a container (its reservation and port are freed); with `onNode`, only if it
    /// is placed there (seed 004's delete on a node).
    func deleteContainer(_ containerID: Int, onNode: UInt64? = nil, requestID: String) async throws(NodeError) {
        _ = try await propose(requestID: requestID, summary: (0, 0)) { _, state throws(NodeError) -> ClusterCommand? in
            guard let record = state.containers[containerID] else { throw .notFound("container \(containerID) does not exist") }
            if let onNode, record.node != onNode { throw .notFound("container c\(containerID) is not on \(address(onNode))") }
            return .deleteContainer(requestID: requestID, containerID: containerID)
        }
        try requireApplied(requestID, to: containerID, "container \(containerID)")
    }

    /// The container a committed request created or changed, as it is now.
    private func committedContainer(of requestID: String) throws(NodeError) -> ContainerRecord {
        let (record, found) = lock.withLock { () -> (ClusterState.RequestRecord?, ContainerRecord?) in
            let record = state.record(ofRequest: requestID)
            return (record, record?.services.first.flatMap { state.containers[$0] })
        }
        if let rejection = record?.rejection { throw .rejected(rejection) }
        guard let found else { throw .notFound("the container was deleted before this change applied") }
        return found
    }
}
