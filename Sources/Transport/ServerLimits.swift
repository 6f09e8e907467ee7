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
    /// Open connections: each holds a thread. At the cap the connection idle longest is
    /// closed to make room; only when every connection is mid-request is a client answered 503.
    public var maxConnections = 2_048
    /// Open connections from one client address: one client cannot take every slot (its own
    /// idle connections are closed first when it opens more).
    public var maxConnectionsPerAddress = 1_024
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
    /// Stack of each connection thread: handlers decode JSON of bounded size, so 512 KiB is ample.
    public var threadStackBytes = 512 * 1024

    public init() {}

    /// The body limit for a request to `path`.
    public func maxBodyBytes(forPath path: String) -> Int { maxBodyBytesByPath[path] ?? maxBodyBytes }
}
