import Foundation
import Raft

/// Seed 001's containers through the log: the leader places a new one like any replica
/// (the least allocated healthy node that acknowledges it), and starts and stops are entries.
extension ClusterService {
    /// Creates one container; returns it once committed.
    func createContainer(_ spec: ContainerSpec, requestID: String) throws(NodeError) -> ContainerRecord {
        _ = try propose(requestID: requestID, summary: (0, 1)) { usage, state throws(NodeError) -> ClusterCommand? in
            let placed = Placement.place(count: 1, demand: spec.demand, capacity: state.capacity, usage: &usage, healthy: placeableNodes(in: state),
                                         cpuInUse: state.cpuInUse(atMs: LoadView.nowMs()))
            return .createContainer(requestID: requestID, spec: spec, node: placed.replicas.keys.first, atMs: LoadView.nowMs())
        }
        return try committedContainer(of: requestID)
    }

    /// Starts or stops a container (idempotent); returns it as it is once committed.
    func setContainerRunning(_ containerID: Int, isRunning: Bool, requestID: String) throws(NodeError) -> ContainerRecord {
        _ = try propose(requestID: requestID, summary: (0, 0)) { _, state throws(NodeError) -> ClusterCommand? in
            guard state.containers[containerID] != nil else { throw .notFound("container \(containerID) does not exist") }
            return .setContainerRunning(requestID: requestID, containerID: containerID, isRunning: isRunning, atMs: LoadView.nowMs())
        }
        return try committedContainer(of: requestID)
    }

    /// Removes a container (its reservation is freed).
    func deleteContainer(_ containerID: Int, requestID: String) throws(NodeError) {
        _ = try propose(requestID: requestID, summary: (0, 0)) { _, state throws(NodeError) -> ClusterCommand? in
            guard state.containers[containerID] != nil else { throw .notFound("container \(containerID) does not exist") }
            return .deleteContainer(requestID: requestID, containerID: containerID)
        }
    }

    /// The container a committed request created or changed, as it is now.
    private func committedContainer(of requestID: String) throws(NodeError) -> ContainerRecord {
        let found = lock.withLock { state.record(ofRequest: requestID)?.services.first.flatMap { state.containers[$0] } }
        guard let found else { throw .notFound("the container was deleted before this change applied") }
        return found
    }
}
