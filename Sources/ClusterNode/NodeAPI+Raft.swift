import Transport

/// The internal endpoints peers send Raft messages to: a batch per POST, or frames on one
/// connection switched to `raft-frames` (what the nodes use between themselves).
extension NodeAPI {
    /// The protocol `POST /raft/stream` switches a connection to (see `FrameReader`).
    public static let raftStreamProtocol = "raft-frames"

    static func addRaftRoutes(_ router: inout Router, _ node: Node) {
        // Decoded and queued for the round thread: nothing here blocks, so it runs on the loop.
        router.addImmediate("POST", "/raft/messages") { request in
            try node.receive(request.body, clusterID: request.headers["x-cluster-id"], connection: request.connectionID)
            return HTTPResponse(status: .noContent)
        }
        // The same batches as a stream of frames on one connection, without a request and an
        // answer each (`PostChannel`'s streamed mode). The cluster is checked once, here.
        router.addImmediate("POST", "/raft/stream") { request in
            try node.checkCluster(request.headers["x-cluster-id"])
            guard request.upgradeProtocol == raftStreamProtocol else {
                var response = HTTPResponse.error(.upgradeRequired, "POST /raft/stream switches the connection to the \(raftStreamProtocol) protocol: send Connection: Upgrade and Upgrade: \(raftStreamProtocol)")
                response.headers.set("Upgrade", raftStreamProtocol)
                return response
            }
            let connection = request.connectionID
            let receiver = FrameReader(maxFrameBytes: NodeLimits.maxRaftBodyBytes) { frame in
                do {
                    try node.receive(frame, connection: connection)
                    return true
                } catch {
                    node.service.metrics.increment(.framesRefused)
                    return false
                }
            }
            return .switchingProtocols(to: raftStreamProtocol, receiver: receiver)
        }
    }
}
