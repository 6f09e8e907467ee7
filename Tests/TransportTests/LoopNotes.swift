import Foundation
@testable import Transport

/// Where a handler's steps ran, for tests of where a server runs them: for each step before
/// its wait and each after it, whether it was on one of `server`'s event loops.
final class LoopNotes: @unchecked Sendable {
    let lock = NSLock()
    var server: HTTPServer?
    var before: [Bool] = []
    var after: [Bool] = []

    /// Notes where the calling step runs.
    func note(after isAfter: Bool) {
        lock.withLock {
            let onLoop = server?.isOnEventLoop ?? false
            if isAfter { after.append(onLoop) } else { before.append(onLoop) }
        }
    }
}
