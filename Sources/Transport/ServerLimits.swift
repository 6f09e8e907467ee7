/// The bounds of the HTTP server, each with its reason. Every one is answered properly
/// when exceeded: 431, 413, 503, or a closed idle connection.
public struct ServerLimits: Sendable {
    /// Request line plus headers: 16 KiB holds any sane request; beyond it is 431.
    public var maxHeaderBytes = 16 * 1024
    /// Header fields per request: 100 is far above what clients send; beyond it is 431.
    public var maxHeaderCount = 100
    /// Request body: 1 MiB holds any service request and any Raft batch we send; beyond it is 413.
    public var maxBodyBytes = 1024 * 1024
    /// Open connections: each holds a thread; beyond the cap a client is answered 503 and closed.
    public var maxConnections = 2_048
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
}
