import Foundation

/// The times a connection's deadlines count from, for the phase it is in.
struct ConnectionTimes {
    var idleSince = monotonicSeconds()
    var requestStartedAt = monotonicSeconds()
    var headCompletedAt: Double?
    var hasServedRequest = false

    /// When waiting for more bytes must end: the body's, the head's or the keep-alive's or,
    /// before the first request, the first request's deadline.
    mutating func deadline(isMidRequest: Bool, hasUnparsedBytes: Bool, now: Double, limits: ServerLimits) -> Double {
        if isMidRequest {
            if headCompletedAt == nil { headCompletedAt = now }
            return headCompletedAt! + limits.bodyTimeoutSeconds
        }
        if hasUnparsedBytes { return requestStartedAt + limits.headerTimeoutSeconds }
        // A connection that has sent nothing yet gets no more time than a slow head.
        return idleSince + (hasServedRequest ? limits.idleTimeoutSeconds : limits.firstRequestTimeoutSeconds)
    }

    mutating func requestAnswered() {
        hasServedRequest = true
        headCompletedAt = nil
        idleSince = monotonicSeconds()
        requestStartedAt = idleSince
    }
}
