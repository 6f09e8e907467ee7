/// How a request to the node's replicated state fails, in the domain's words. The node's
/// layers throw these; the node API turns each into a status and `{"error": ...}` in one
/// place (`NodeError.httpError`), so nothing below the API speaks HTTP.
public enum NodeError: Error, Sendable, Equatable {
    /// This node does not lead; `leader` is the one it knows of, if any.
    case notLeader(leader: UInt64?)
    /// Too much is waiting already; nothing was done.
    case overloaded
    /// Not confirmed in time. When `mayHaveApplied`, it may still take effect (retry with the
    /// same request ID to be sure it applies once); otherwise nothing was done.
    case timedOut(String, mayHaveApplied: Bool)
    /// Failed without effect, for a reason that passes (a leadership change): safe to retry.
    case retryable(String)
    /// Cannot succeed as asked (an invalid membership change).
    case rejected(String)
    /// What the request names does not exist (decided on state known to be current).
    case notFound(String)
    /// A request ID reused for another request: a client bug.
    case requestIDReused(String)
    /// A value outside what the node accepts, naming it.
    case invalid(String)
    /// The command would not fit in one log entry.
    case tooLarge(String)
    /// Not accepted from this sender (a Raft message from another cluster, or not for this node).
    case forbidden(String)
}

extension NodeError {
    /// A client's request ID (`requestId` in a body), checked in one place: nil or a
    /// non-empty string of at most 256 bytes.
    static func checkRequestID(_ id: String?) throws(NodeError) -> String? {
        if let id, id.isEmpty || id.utf8.count > 256 { throw .invalid("requestId must be a non-empty string of at most 256 bytes") }
        return id
    }
}
