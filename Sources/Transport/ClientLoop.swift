import Foundation

/// One event-loop thread for outgoing connections (`PostChannel`s): any number of them,
/// idle ones costing a descriptor and a little memory, never a thread.
public final class ClientLoop: @unchecked Sendable {
    let loop: EventLoop
    private let lock = NSLock()
    private var isStopped = false

    public init(name: String) throws(SocketError) {
        loop = try EventLoop(name: name)
        loop.start()
    }

    /// Ends the loop's thread once the work handed to it so far (channels' closing among it)
    /// is done. Later calls do nothing.
    public func stop() {
        guard lock.withLock({ () -> Bool in defer { isStopped = true }; return !isStopped }) else { return }
        loop.stop()
    }
}
