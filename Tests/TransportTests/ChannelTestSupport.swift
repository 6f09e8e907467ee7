import Foundation
@testable import Transport

/// What a test channel's `report` counted, and what its server received.
final class ChannelRecord: @unchecked Sendable {
    let lock = NSLock()
    /// Bodies (or frames) the server took, and when.
    var bodies: [String] = []
    var arrivals: [Double] = []
    var sent = 0
    var failed = 0
    var rejected = 0

    var counts: (sent: Int, failed: Int, rejected: Int) { lock.withLock { (sent, failed, rejected) } }
    /// The messages received, each body split at its commas (a batch is joined by them).
    var messages: [String] { lock.withLock { bodies.flatMap { $0.split(separator: ",").map(String.init) } } }

    /// A channel's `report`.
    func count(_ outcome: PostChannel<String>.Outcome, _ count: Int) {
        lock.withLock {
            switch outcome {
            case .sent: sent += count
            case .failed: failed += count
            case .rejected: rejected += count
            }
        }
    }

    /// The `prepare` of a channel whose messages are strings: one body per batch, joined by commas.
    static let joined: @Sendable ([String]) -> [PostChannel<String>.Prepared] = { messages in [(Array(messages.joined(separator: ",").utf8), messages.count)] }
}

/// Polls `condition` until it holds or 5 s pass.
func waitUntil(_ condition: () -> Bool) -> Bool {
    let deadline = monotonicSeconds() + 5
    while monotonicSeconds() < deadline {
        if condition() { return true }
        usleep(2_000)
    }
    return condition()
}
