#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation

/// A replying handler's answer that the thread giving it may write itself, on the request's
/// connection (`ServerConnection`): opened by the connection's event loop when it starts such
/// a handler with nothing left to write, closed by it before anything else touches the socket
/// (another answer, a close), and taken at most once by the writer. The lock keeps the
/// descriptor open while the writer uses it: a closed descriptor's number may already be
/// another connection's.
final class DirectAnswer: @unchecked Sendable {
    private let lock = AdaptiveLock()
    /// Set while open: what the answer must say (under `lock`).
    private var target: (keepAlive: Bool, includeBody: Bool)?
    /// `target` may be set: the loop's own mirror, read without the lock (loop only).
    private var mayBeOpen = false

    /// Lets the thread that gives the answer write it (on the loop).
    func open(keepAlive: Bool, includeBody: Bool) {
        lock.withLock { target = (keepAlive, includeBody) }
        mayBeOpen = true
    }

    /// The loop writes or closes the connection itself from now on (on the loop).
    func close() {
        guard mayBeOpen else { return }
        mayBeOpen = false
        lock.withLock { target = nil }
    }

    /// Writes `response` on `descriptor` from the calling thread, as far as the socket takes
    /// it without blocking, once counted and the connection no longer busy (`server`); returns
    /// what is left for the loop to write and whether the connection stays open, or nil when
    /// not open (the loop answers).
    func write(_ response: HTTPResponse, on descriptor: Int32, connection id: UInt64, of server: HTTPServer)
        -> (rest: ArraySlice<UInt8>, keepAlive: Bool)?
    {
        lock.lock()
        defer { lock.unlock() }
        guard let target else { return nil }
        self.target = nil
        // Counted before it is written, as the loop counts its answers.
        server.countRequest(writtenDirectly: true)
        let mustClose = server.setBusy(id, false)  // not inside `&&`: it must run for every answer
        let keepAlive = target.keepAlive && !mustClose
        let bytes = response.serialized(keepAlive: keepAlive, includeBody: target.includeBody)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress! + written, $0.count - written, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if count > 0 {
                written += count
            } else if count < 0, errno == EINTR {
                continue
            } else {
                break  // the socket is full or failed: the loop writes the rest (or meets the failure)
            }
        }
        return (bytes[written...], keepAlive)
    }
}
