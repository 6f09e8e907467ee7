import Raft

/// Published ports in the replicated state: who holds which port on which node, the port a
/// request gets, and the nodes a published service may take a replica on.
extension ClusterState {
    /// The port `request` gets: a fixed one as asked, `.any` the lowest in the automatic
    /// range free on `node` (nil: free on every node, so the service publishes one port
    /// everywhere), nil for none or when none is free.
    func freePort(for request: PortRequest, on node: UInt64?) -> Int? {
        switch request {
        case .none: return nil
        case .fixed(let port): return port
        case .any:
            let taken: Set<Int>
            if let node { taken = Set(ports[node].map { Array($0.keys) } ?? []) } else { taken = Set(ports.values.flatMap(\.keys)) }
            return PortRequest.automatic.first { !taken.contains($0) }
        }
    }

    /// The nodes of `healthy` that may take one more replica of `spec` (of `service`, once it
    /// exists): every one when it publishes nothing; otherwise those where its port is free
    /// and none of its replicas runs yet (a published service runs one replica per node).
    public func eligibleNodes(_ healthy: Set<UInt64>, for spec: ServiceSpec, service: ServiceRecord?) -> Set<UInt64> {
        guard spec.publish != .none else { return healthy }
        let port: Int?
        if let service { port = service.publishedPort } else if case .fixed(let fixed) = spec.publish { port = fixed } else { return healthy }
        guard let port else { return [] }
        return healthy.filter { node in service?.placement[node] == nil && isPortFree(port, on: node, for: service.map { .service($0.id) }) }
    }

    /// The port index as the services' and containers' records say it should be, and how
    /// many ports two records claim on one node (always 0 when every change kept the rules:
    /// the simulation checks both against `ports`).
    public func portIndexFromRecords() -> (ports: [UInt64: [Int: PortHolder]], conflicts: Int) {
        var index: [UInt64: [Int: PortHolder]] = [:]
        var conflicts = 0
        func claim(_ port: Int, _ node: UInt64, _ holder: PortHolder) {
            if index[node]?[port] != nil { conflicts += 1 }
            index[node, default: [:]][port] = holder
        }
        for service in services.values {
            guard let port = service.publishedPort else { continue }
            for (node, count) in service.placement {
                claim(port, node, .service(service.id))
                if count > 1 { conflicts += 1 }
            }
        }
        for record in containers.values {
            if let port = record.publicPort, let node = record.node, record.state != .exited { claim(port, node, .container(record.id)) }
        }
        return (index, conflicts)
    }

    /// Whether `port` on `node` is free for `holder`: held by nobody, or by `holder` itself.
    public func isPortFree(_ port: Int, on node: UInt64, for holder: PortHolder?) -> Bool {
        guard let current = ports[node]?[port] else { return true }
        return current == holder
    }

    mutating func hold(_ port: Int, on node: UInt64, by holder: PortHolder) {
        ports[node, default: [:]][port] = holder
    }

    mutating func release(_ port: Int, on node: UInt64, by holder: PortHolder) {
        guard ports[node]?[port] == holder else { return }
        ports[node]?[port] = nil
        if ports[node]?.isEmpty == true { ports[node] = nil }
    }
}
