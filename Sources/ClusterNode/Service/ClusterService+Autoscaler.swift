import Foundation
import Raft
import Transport

/// The autoscalers run on the leader: each service's controller steps every `intervalMs`,
/// and every step is proposed as an entry (with the placement of a new count), so the
/// decisions and the controller's memory are the same on every node and survive a change of
/// leader (the new leader continues from the last committed step: its integral, error and time).
extension ClusterService {
    /// Starts the loop; it acts only while this node leads.
    func startAutoscalers() {
        Task.detached { [self] in
            while !isStoppedNow {
                // A follower sleeps until it leads; the leader until the next step is due (at
                // most half a second, so a new autoscaler starts within it).
                await leadership.untilLeading { withCore { $0.isLeader } }
                let milliseconds = min(500, max(10, millisecondsUntilNextStep(nowMs: LoadView.nowMs())))
                try? await Task.sleep(nanoseconds: UInt64(milliseconds) * 1_000_000)
                for serviceID in dueAutoscalers(nowMs: LoadView.nowMs()) {
                    await stepAutoscaler(serviceID)
                }
            }
        }
    }

    /// Milliseconds until the next autoscaler step is due here (500 when none is, or on a follower).
    func millisecondsUntilNextStep(nowMs: Int64) -> Int64 {
        guard withCore({ $0.isLeader }) else { return 500 }
        return lock.withLock {
            state.autoscaledServiceIDs.compactMap { id in
                state.services[id]?.autoscaler.map { ($0.lastAtMs ?? nowMs) + Int64($0.spec.intervalMs) - nowMs }
            }.min() ?? 500
        }
    }

    /// The services whose autoscaler is due a step at `nowMs` (none on a follower).
    func dueAutoscalers(nowMs: Int64) -> [Int] {
        guard withCore({ $0.isLeader }) else { return [] }
        return lock.withLock {
            state.autoscaledServiceIDs.filter { id in
                guard let autoscaler = state.services[id]?.autoscaler else { return false }
                return nowMs - (autoscaler.lastAtMs ?? .min / 2) >= Int64(autoscaler.spec.intervalMs)
            }.sorted()
        }
    }

    /// Proposes one step of `serviceID`'s autoscaler, decided on the applied state.
    func stepAutoscaler(_ serviceID: Int) async {
        do {
            _ = try await propose(requestID: "autoscale-\(serviceID)-\(RandomID.uuidString())", summary: (0, 0), isClientCall: false) { usage, state in
                guard let service = state.services[serviceID], let autoscaler = service.autoscaler else { return nil }
                let nowMs = LoadView.nowMs()
                let decision = autoscaler.step(averageCPU: AutoscalerState.averageCPU(of: service, nowMs: nowMs),
                                               replicas: service.spec.replicas, nowMs: nowMs)
                guard decision.toReplicas != decision.fromReplicas else {
                    return .autoscale(serviceID: serviceID, decision: decision, placement: nil)
                }
                return .autoscale(serviceID: serviceID, decision: decision,
                                  placement: placement(of: service, count: decision.toReplicas, usage: &usage, state: state))
            }
        } catch {
            // Leadership moved or the commit timed out: the next pass steps again.
        }
    }

    /// Sets (or with nil removes) a service's autoscaler.
    func setAutoscaler(_ serviceID: Int, spec: AutoscalerSpec?, requestID: String) async throws(NodeError) -> ServiceRecord? {
        _ = try await propose(requestID: requestID, summary: (1, 0)) { _, state throws(NodeError) -> ClusterCommand? in
            guard let service = state.services[serviceID] else { throw .notFound("Not found") }
            if spec == nil, service.autoscaler == nil { throw .notFound("service \(serviceID) has no autoscaler") }
            return .setAutoscaler(requestID: requestID, serviceID: serviceID, spec: spec)
        }
        return lock.withLock { state.services[serviceID] }
    }
}
