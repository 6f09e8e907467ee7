import Foundation
import Raft
import Transport

/// One node process: the replica layer (`ReplicaDriver`: Raft core, storage, inbox, timer,
/// outboxes) under the cluster-service layer (`ClusterService`: state machine, placement,
/// reconcile, requests, views), with the links and simulated containers they share. The
/// HTTP API (`NodeAPI`) is an adapter over these.
public final class Node: @unchecked Sendable {
    public let configuration: NodeConfiguration
    /// Where the node notes what an operator needs: elections, leaders, membership,
    /// snapshots, link changes, faults noticed, fatal errors.
    public let log: EventLog
    let metrics = NodeMetrics()
    let replica: ReplicaDriver
    let service: ClusterService
    var links: LinkTable { replica.links }
    let containers: ContainerRuntime
    /// For requests this node makes to others (forwarding to the leader).
    let client: HTTPClient

    /// Opens the data directory (recovering term, vote, log and state machine).
    public init(configuration: NodeConfiguration, log: EventLog = EventLog()) throws {
        self.configuration = configuration
        self.log = log
        self.replica = try ReplicaDriver(configuration: configuration, log: log, metrics: metrics)
        self.containers = ContainerRuntime(nodeID: configuration.id, resources: NodeResources.standard(slots: configuration.capacity))
        self.service = try ClusterService(driver: replica, containers: containers)
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.connectTimeoutSeconds = 0.25
        clientConfiguration.requestTimeoutSeconds = 1
        clientConfiguration.maxConnectionsPerHost = 8
        self.client = HTTPClient(configuration: clientConfiguration)
    }

    /// Starts the timer, the reconcile loop and the autoscalers.
    public func start() {
        service.startReconciler()
        service.startAutoscalers()
        replica.start()
    }

    /// Stops the threads; queued work is dropped, written state stays on disk.
    public func stop() {
        replica.stop()
        service.leadership.stop()
    }

    /// Which peer sends on each open connection that carried Raft messages.
    private let connectionsLock = AdaptiveLock()
    private var peerConnections: [UInt64: UInt64] = [:]

    /// A connection closed: when it was the last one a peer sent Raft messages on, the peer's
    /// process most likely died, and the core hears of it (`RaftNode.peerUnreachable`).
    public func connectionClosed(_ connection: UInt64) {
        let lost = connectionsLock.withLock { () -> UInt64? in
            guard let peer = peerConnections.removeValue(forKey: connection) else { return nil }
            return peerConnections.values.contains(peer) ? nil : peer
        }
        if let lost {
            service.notePeerClosed(lost)
            replica.submit(.peerUnreachable(NodeID(lost)))
        }
    }

    /// Refuses Raft messages sent by another cluster's node (the `X-Cluster-ID` header).
    func checkCluster(_ clusterID: String?) throws(NodeError) {
        guard clusterID == configuration.clusterID else {
            throw .forbidden("raft messages are accepted only from members of cluster \(configuration.clusterID)")
        }
    }

    /// Accepts a batch of Raft messages posted by a peer of this cluster.
    func receive(_ body: [UInt8], clusterID: String?, connection: UInt64? = nil) throws(NodeError) {
        try checkCluster(clusterID)
        try receive(body, connection: connection)
    }

    /// Accepts a batch of Raft messages from a peer whose cluster was checked already (a
    /// frame of its stream).
    func receive(_ body: [UInt8], connection: UInt64?) throws(NodeError) {
        let envelopes: [Envelope]
        do {
            envelopes = try RaftWireCodec.decode(body)
        } catch {
            throw .invalid("malformed raft message batch: \(error.description)")
        }
        // Any sender of this cluster is heard: a leader may know members this node has not
        // learnt of yet (the cluster header keeps other clusters out).
        for envelope in envelopes where envelope.to.rawValue != configuration.id {
            throw .forbidden("message from \(envelope.from) to \(envelope.to): not addressed to this node (\(configuration.id))")
        }
        if let connection, let sender = envelopes.first?.from.rawValue {
            connectionsLock.withLock { peerConnections[connection] = sender }
        }
        service.noteAcknowledgements(envelopes)
        replica.receive(envelopes)
    }
}
