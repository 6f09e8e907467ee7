/// The bounds of a node that are not the Raft core's own, each with its reason.
public enum NodeLimits {
    /// A body on any node route but the Raft endpoint: 1 MiB, like the orchestrator's API.
    public static let maxAPIBodyBytes = 1024 * 1024
    /// One log command: a client body is at most 1 MiB, and a reconcile decision moving
    /// thousands of services stays far below this; larger is refused, so that one append
    /// always fits in a Raft batch.
    public static let maxCommandBytes = 4 * 1024 * 1024
    /// One batch a node posts to a peer: several appends of up to 512 KiB (or one command)
    /// and a few 256 KiB snapshot chunks; a larger batch is split before sending.
    public static let maxRaftBatchBytes = 8 * 1024 * 1024
    /// A body `/raft/messages` accepts: twice the largest batch a node sends.
    public static let maxRaftBodyBytes = 16 * 1024 * 1024
    /// Bytes of all bodies a node reads at once: four full Raft batches.
    public static let maxBodyBytesInFlight = 64 * 1024 * 1024
}
