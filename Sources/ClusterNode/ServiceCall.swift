/// A service request handled by this node as leader, from queued to committed to placed
/// (seed 003's unfinished `/state`). Kept in memory, newest last, bounded.
public struct ServiceCall: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        case queued, committed, failed
    }

    public var requestID: String
    public var receivedAt: Double
    public var status: Status
    public var index: UInt64?
    public var serviceIDs: [Int] = []
    public var error: String?
    public var services: Int
    public var replicas: Int

    /// Calls remembered: enough to show recent activity, bounded so memory is too.
    static let maxRemembered = 1_000
}
