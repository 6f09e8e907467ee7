import Foundation

/// The bounds of the HTTP server, each with its reason. Every one is answered properly
/// when exceeded: 431, 413, 503, or a closed idle connection.
public struct ServerLimits: Sendable {
    /// Request line plus headers: 16 KiB holds any sane request; beyond it is 431.
    public var maxHeaderBytes = 16 * 1024
    /// Header fields per request: 100 is far above what clients send; beyond it is 431.
    public var maxHeaderCount = 100
    /// Request body: 1 MiB holds any service request; beyond it is 413.
    public var maxBodyBytes = 1024 * 1024
    /// Larger limits for particular paths (exact match), e.g. a node's Raft endpoint.
    public var maxBodyBytesByPath: [String: Int] = [:]
    /// Bytes of all request bodies being read at once (declared lengths, or a chunked body's
    /// route limit): beyond it a new body is refused with 503, so many large uploads at once
    /// cannot exhaust memory.
    public var maxBodyBytesInFlight = 64 * 1024 * 1024
    /// Open connections: an idle one costs a few hundred bytes and a descriptor, no thread
    /// (the server raises its soft descriptor limit to the hard one, and keeps 64 spare). At
    /// the cap the connection idle longest is closed to make room; only when every connection
    /// is mid-request is a client answered 503.
    public var maxConnections = 16_384
    /// Open connections from one client address: one client cannot take every slot (its own
    /// idle connections are closed first when it opens more). Three quarters of the total,
    /// so local tools (every one of them 127.0.0.1) can still hold ten thousand.
    public var maxConnectionsPerAddress = 12_288
    /// Event-loop threads that read, parse and write every connection: one per core, at most four.
    public var eventLoops = min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))
    /// Threads for handlers that may block (forwarding and waiting for the answer, event
    /// streams), started as needed and ended when idle; handlers beyond them wait in order.
    /// Handlers that suspend (waiting for a commit) use none while they wait.
    public var maxHandlerThreads = 512
    /// Time a new connection may stay silent before its first request (like a slow head).
    public var firstRequestTimeoutSeconds = 10.0
    /// Time to receive a whole request head once its first byte arrived (slowloris guard).
    public var headerTimeoutSeconds = 10.0
    /// Time to receive a declared body.
    public var bodyTimeoutSeconds = 30.0
    /// Time a keep-alive connection may sit idle between requests.
    public var idleTimeoutSeconds = 60.0
    /// Time allowed for writing one response to a slow reader.
    public var writeTimeoutSeconds = 30.0

    public init() {}

    /// The body limit for a request to `path`.
    public func maxBodyBytes(forPath path: String) -> Int { maxBodyBytesByPath[path] ?? maxBodyBytes }
}
