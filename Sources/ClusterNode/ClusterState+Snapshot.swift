import Raft

/// The state machine as a snapshot: everything `apply` depends on, so that a node restored
/// from it applies the entries after it exactly as a node that applied every entry.
///
///     version u8 (1), applied index u64, next service ID u64, node resources,
///     capacity: count u32, node u64 ...; unhealthy: count u32, node u64 ...;
///     services: count u32, then per service its record;
///     remembered requests: count u32, then per request (oldest first) ID string, count u32, service IDs u64,
///     fingerprint u64, index u64, term u64 (the last three from version 2)
extension ClusterState {
    /// 2 adds each remembered request's fingerprint, index and term; 3 each service's load
    /// (a flag, then the pattern and its start); 4 each service's autoscaler (a flag, then
    /// its settings, memory and recent steps); 5 the containers at the end (next container
    /// ID u64, count u32, each record); 6 the published ports (in specs and records, as
    /// commands of format 2 write them), each service's published port u32 (0: none) after
    /// its autoscaler, each remembered request's rejection (an optional string) and, at the
    /// end, the desired state's services (count u32, each spec); 1 to 5 are still read.
    /// The port index is not stored: it is rebuilt from the services and containers.
    static let snapshotVersion: UInt8 = 6

    /// The bytes of this state for a snapshot.
    public func snapshotData() -> [UInt8] {
        // Room for the whole state at once (a service takes about 250 bytes, a remembered
        // request about 80): growing a buffer of tens of MB step by step copied it each time.
        var writer = ByteWriter(capacity: 4_096 + services.count * 320 + requestOrder.count * 96 + containers.count * 320)
        writer.write(Self.snapshotVersion)
        writer.write(appliedIndex)
        writer.write(UInt64(nextServiceID))
        writer.write(nodeResources)
        writer.write(UInt32(capacity.count))
        for node in capacity.keys.sorted() { writer.write(node) }
        writer.write(UInt32(unhealthyNodes.count))
        for node in unhealthyNodes.sorted() { writer.write(node) }
        writer.write(UInt32(services.count))
        for service in services.values { writer.write(service) }
        writer.write(UInt32(requestOrder.count))
        for requestID in requestOrder {
            writer.write(string: requestID)
            let result = requestResults[requestID] ?? RequestRecord(fingerprint: 0, services: [], index: 0, term: 0)
            writer.write(UInt32(result.services.count))
            for id in result.services { writer.write(UInt64(id)) }
            writer.write(result.fingerprint)
            writer.write(result.index)
            writer.write(result.term)
            writer.write(optional: result.rejection)
        }
        writer.write(UInt64(nextContainerID))
        writer.write(UInt32(containers.count))
        for id in containers.keys.sorted() { writer.write(containers[id]!) }
        writer.write(UInt32(vitalServices.count))
        for name in vitalServices.keys.sorted() { writer.write(vitalServices[name]!) }
        return writer.bytes
    }

    /// Restores a state from `snapshotData()` bytes; throws when they are not one.
    public init(snapshotData bytes: [UInt8]) throws(ClusterCommandCodec.Malformed) {
        var reader = ByteReader(bytes[...])
        do {
            let version = try reader.readByte()
            guard (1...Self.snapshotVersion).contains(version) else {
                throw ClusterCommandCodec.Malformed(description: "unknown snapshot format \(version)")
            }
            let applied = try reader.readUInt64()
            let nextID = Int(try reader.readUInt64())
            self.nodeResources = try reader.readResources()
            var capacity: [UInt64: NodeResources] = [:]
            for _ in 0..<(try reader.readCount(limit: bytes.count)) { capacity[try reader.readUInt64()] = nodeResources }
            self.capacity = capacity
            for _ in 0..<(try reader.readCount(limit: bytes.count)) { unhealthyNodes.insert(try reader.readUInt64()) }
            for _ in 0..<(try reader.readCount(limit: bytes.count)) {
                let id = Int(try reader.readUInt64())
                let spec = try reader.readSpec(hasPorts: version >= 6)
                let decision = try reader.readDecision()
                var record = ServiceRecord(id: id, spec: spec, placement: decision.replicas, pending: decision.pending,
                                           pendingReason: decision.pendingReason, index: try reader.readUInt64(),
                                           term: try reader.readUInt64(), updatedIndex: try reader.readUInt64(),
                                           requestID: try reader.readString())
                if version >= 3, try reader.readByte() == 1 {
                    record.load = try reader.readServiceLoad()
                    loadedServiceIDs.insert(id)
                }
                if version >= 4 { record.autoscaler = try reader.readAutoscalerState(limit: bytes.count) }
                if record.autoscaler != nil { autoscaledServiceIDs.insert(id) }
                if spec.vital { vitalServiceIDs.insert(id) }
                if version >= 6 { record.publishedPort = try reader.readOptionalPort() }
                services[id] = record
                if record.pending > 0 { pendingServiceIDs.insert(id) }
                account(spec.demand, removing: [:], adding: record.placement)
            }
            for _ in 0..<(try reader.readCount(limit: bytes.count)) {
                let requestID = try reader.readString()
                var result: [Int] = []
                for _ in 0..<(try reader.readCount(limit: bytes.count)) { result.append(Int(try reader.readUInt64())) }
                var record = RequestRecord(fingerprint: 0, services: result, index: 0, term: 0)
                if version >= 2 {
                    record.fingerprint = try reader.readUInt64()
                    record.index = try reader.readUInt64()
                    record.term = try reader.readUInt64()
                }
                if version >= 6 { record.rejection = try reader.readOptionalString() }
                requestResults[requestID] = record
                requestOrder.append(requestID)
            }
            if version >= 5 {
                nextContainerID = Int(try reader.readUInt64())
                for _ in 0..<(try reader.readCount(limit: bytes.count)) {
                    let record = try reader.readContainerRecord(limit: bytes.count, hasPorts: version >= 6)
                    containers[record.id] = record
                    if let node = record.node, record.state != .exited {
                        account(record.spec.demand, removing: [:], adding: [node: 1])
                    }
                }
            }
            if version >= 6 {
                for _ in 0..<(try reader.readCount(limit: bytes.count)) {
                    let spec = try reader.readSpec(hasPorts: true)
                    if let name = spec.name { vitalServices[name] = spec }
                }
            }
            guard reader.isAtEnd else { throw ClusterCommandCodec.Malformed(description: "bytes left after the snapshot's state") }
            ports = portIndexFromRecords().ports
            self.appliedIndex = applied
            self.nextServiceID = nextID
        } catch let error as ClusterCommandCodec.Malformed {
            throw error
        } catch {
            throw ClusterCommandCodec.Malformed(description: "snapshot state ends early")
        }
    }
}

extension ByteWriter {
    mutating func write(_ service: ServiceRecord) {
        write(UInt64(service.id))
        write(service.spec)
        write(placement: service.placement, pending: service.pending, pendingReason: service.pendingReason)
        write(service.index)
        write(service.term)
        write(service.updatedIndex)
        write(string: service.requestID)
        if let load = service.load {
            write(UInt8(1))
            write(load)
        } else {
            write(UInt8(0))
        }
        write(optional: service.autoscaler)
        write(UInt32(service.publishedPort ?? 0))
    }

    mutating func write(_ resources: NodeResources) {
        write(UInt64(resources.slots))
        write(UInt64(resources.cpuMillicores))
        write(UInt64(resources.memoryMB))
    }
}

extension ByteReader {
    mutating func readResources() throws -> NodeResources {
        NodeResources(slots: Int(try readUInt64()), cpuMillicores: Int(try readUInt64()), memoryMB: Int(try readUInt64()))
    }

    /// A count that cannot exceed `limit` (the input's size bounds any honest count).
    mutating func readCount(limit: Int) throws -> Int {
        let count = Int(try readUInt32())
        guard count <= limit else { throw ClusterCommandCodec.Malformed(description: "count \(count) exceeds the input") }
        return count
    }
}
