import Foundation
import Transport

/// Wakes the loops that act only on the leader (reconcile, autoscalers) when this node
/// becomes leader, so that on a follower they sleep instead of polling (a follower's loops
/// woke three times a second only to find it still following: an eighth of an idle node's
/// CPU).
final class LeadershipSignal: @unchecked Sendable {
    /// Leaderships begun (so a wait cannot miss one that begins while it starts), and
    /// whether the node stopped.
    private let tasks = WaitingTasks((generation: 0, isStopped: false))

    /// Returns once `isLeading()` is true, or the node stops. `isLeading` reads the core,
    /// which becomes leader before `becameLeader` is called (no lock of this type is held
    /// while it runs).
    func untilLeading(_ isLeading: () -> Bool) async {
        let seen = tasks.read { $0.generation }
        if isLeading() { return }
        await tasks.wait { !$0.isStopped && $0.generation == seen }
    }

    /// This node became leader: every waiting loop goes on.
    func becameLeader() { tasks.change { $0.generation += 1 } }

    /// The node stops: waiting loops go on (to see that and end), and none waits again.
    func stop() {
        tasks.change {
            $0.isStopped = true
            $0.generation += 1
        }
    }
}
