import Raft

/// The binary form of a `ClusterCommand` in a log entry: every node decodes every entry, and
/// Foundation's JSON cost a quarter of the leader's CPU at 4,000 commits per second.
///
///     version u8 (2), kind u8, then the command's fields; strings and optionals are
///     length- or flag-prefixed; placements are count u32 then (node u64, replicas u32) sorted.
///
/// Version 2 adds the published ports (service and container specs), the vital flag, a
/// container's service name and whether a container is pinned to its node; version 1
/// entries (written before) still decode, with none of these.
public enum ClusterCommandCodec {
    /// Why an entry's bytes are not a command.
    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    static let version: UInt8 = 2

    /// The bytes of `command` for a log entry.
    public static func encode(_ command: ClusterCommand) -> [UInt8] {
        var writer = ByteWriter(capacity: 256)
        writer.write(version)
        switch command {
        case .createServices(let requestID, let services):
            writer.write(UInt8(1))
            writer.write(string: requestID)
            writer.write(UInt32(services.count))
            for plan in services {
                writer.write(plan.spec)
                writer.write(plan.decision)
            }
        case .scaleService(let requestID, let serviceID, let replicas, let decision):
            writer.write(UInt8(2))
            writer.write(string: requestID)
            writer.write(UInt64(serviceID))
            writer.write(UInt64(replicas))
            writer.write(decision)
        case .deleteService(let requestID, let serviceID):
            writer.write(UInt8(3))
            writer.write(string: requestID)
            writer.write(UInt64(serviceID))
        case .setNodeHealth(let node, let isHealthy, let moves):
            writer.write(UInt8(4))
            writer.write(node)
            writer.write(UInt8(isHealthy ? 1 : 0))
            writer.write(moves)
        case .placePending(let moves):
            writer.write(UInt8(5))
            writer.write(moves)
        case .setServiceLoad(let requestID, let serviceID, let load):
            writer.write(UInt8(6))
            writer.write(string: requestID)
            writer.write(UInt64(serviceID))
            writer.write(load)
        case .setAutoscaler(let requestID, let serviceID, let spec):
            writer.write(UInt8(7))
            writer.write(string: requestID)
            writer.write(UInt64(serviceID))
            writer.write(optional: spec)
        case .createContainer(let requestID, let spec, let node, let pinned, let atMs):
            writer.write(UInt8(9))
            writer.write(string: requestID)
            writer.write(spec)
            writer.write(node ?? 0)
            writer.write(UInt64(bitPattern: atMs))
            writer.write(UInt8(pinned ? 1 : 0))
        case .setContainerRunning(let requestID, let containerID, let isRunning, let atMs):
            writer.write(UInt8(10))
            writer.write(string: requestID)
            writer.write(UInt64(containerID))
            writer.write(UInt8(isRunning ? 1 : 0))
            writer.write(UInt64(bitPattern: atMs))
        case .deleteContainer(let requestID, let containerID):
            writer.write(UInt8(11))
            writer.write(string: requestID)
            writer.write(UInt64(containerID))
        case .setDesiredState(let requestID, let services):
            writer.write(UInt8(12))
            writer.write(string: requestID)
            writer.write(UInt32(services.count))
            for spec in services { writer.write(spec) }
        case .autoscale(let serviceID, let decision, let placement):
            writer.write(UInt8(8))
            writer.write(UInt64(serviceID))
            writer.write(decision)
            writer.write(UInt8(placement == nil ? 0 : 1))
            if let placement { writer.write(placement) }
        }
        return writer.bytes
    }

    /// The command in an entry's bytes; throws when they are not one (every node alike).
    public static func decode(_ bytes: [UInt8]) throws(Malformed) -> ClusterCommand {
        var reader = ByteReader(bytes[...])
        do {
            let format = try reader.readByte()
            guard (1...version).contains(format) else { throw Malformed(description: "unknown command format") }
            let hasPorts = format >= 2
            let command: ClusterCommand
            switch try reader.readByte() {
            case 1:
                let requestID = try reader.readString()
                let count = Int(try reader.readUInt32())
                guard count <= bytes.count else { throw Malformed(description: "service count \(count) exceeds the entry") }
                var services: [PlannedService] = []
                for _ in 0..<count { services.append(PlannedService(spec: try reader.readSpec(hasPorts: hasPorts), decision: try reader.readDecision())) }
                command = .createServices(requestID: requestID, services: services)
            case 2:
                let requestID = try reader.readString()
                let serviceID = Int(try reader.readUInt64())
                let replicas = Int(try reader.readUInt64())
                command = .scaleService(requestID: requestID, serviceID: serviceID, replicas: replicas, decision: try reader.readDecision())
            case 3:
                command = .deleteService(requestID: try reader.readString(), serviceID: Int(try reader.readUInt64()))
            case 4:
                let node = try reader.readUInt64()
                let isHealthy = try reader.readByte() == 1
                command = .setNodeHealth(node: node, isHealthy: isHealthy, moves: try reader.readMoves())
            case 5:
                command = .placePending(moves: try reader.readMoves())
            case 6:
                command = .setServiceLoad(requestID: try reader.readString(), serviceID: Int(try reader.readUInt64()), load: try reader.readServiceLoad())
            case 7:
                command = .setAutoscaler(requestID: try reader.readString(), serviceID: Int(try reader.readUInt64()), spec: try reader.readAutoscalerSpec())
            case 9:
                let requestID = try reader.readString()
                let spec = try reader.readContainerSpec(limit: bytes.count, hasPorts: hasPorts)
                let node = try reader.readUInt64()
                let atMs = Int64(bitPattern: try reader.readUInt64())
                let pinned = hasPorts ? try reader.readByte() == 1 : false
                command = .createContainer(requestID: requestID, spec: spec, node: node == 0 ? nil : node, pinned: pinned, atMs: atMs)
            case 10:
                let requestID = try reader.readString()
                let containerID = Int(try reader.readUInt64())
                let isRunning = try reader.readByte() == 1
                command = .setContainerRunning(requestID: requestID, containerID: containerID, isRunning: isRunning, atMs: Int64(bitPattern: try reader.readUInt64()))
            case 11:
                command = .deleteContainer(requestID: try reader.readString(), containerID: Int(try reader.readUInt64()))
            case 12 where hasPorts:
                let requestID = try reader.readString()
                var services: [ServiceSpec] = []
                for _ in 0..<(try reader.readCount(limit: bytes.count)) { services.append(try reader.readSpec(hasPorts: true)) }
                command = .setDesiredState(requestID: requestID, services: services)
            case 8:
                let serviceID = Int(try reader.readUInt64())
                let decision = try reader.readAutoscalerDecision()
                command = .autoscale(serviceID: serviceID, decision: decision, placement: try reader.readByte() == 1 ? try reader.readDecision() : nil)
            default:
                throw Malformed(description: "unknown command kind")
            }
            guard reader.isAtEnd else { throw Malformed(description: "bytes left after the command") }
            return command
        } catch let error as Malformed {
            throw error
        } catch {
            throw Malformed(description: "command ends early")
        }
    }
}

extension ByteWriter {
    mutating func write(string: String) {
        // The text's bytes straight from its UTF-8 view: no array per string (a snapshot
        // writes a few per service).
        var text = string
        text.withUTF8 { utf8 in
            write(UInt32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func write(optional string: String?) {
        write(UInt8(string == nil ? 0 : 1))
        if let string { write(string: string) }
    }

    mutating func write(_ spec: ServiceSpec) {
        write(UInt8(spec.containerID == nil ? 0 : 1))
        write(UInt64(bitPattern: Int64(spec.containerID ?? 0)))
        write(optional: spec.name)
        write(optional: spec.description)
        write(optional: spec.label)
        write(optional: spec.image)
        write(UInt64(spec.replicas))
        write(UInt64(spec.cpu))
        write(UInt64(spec.memory))
        write(spec.publish)
        write(UInt32(spec.privatePort))
        write(UInt8(spec.vital ? 1 : 0))
    }

    mutating func write(_ decision: Placement.Decision) {
        write(placement: decision.replicas, pending: decision.pending, pendingReason: decision.pendingReason)
    }

    /// A `Placement.Decision`'s encoding from its parts (a service record writes its own
    /// without making a decision of them). Nodes in ascending order; one node needs no sort.
    mutating func write(placement replicas: [UInt64: Int], pending: Int, pendingReason: String?) {
        write(UInt32(replicas.count))
        if replicas.count == 1, let (node, count) = replicas.first {
            write(node)
            write(UInt32(count))
        } else {
            for (node, count) in replicas.sorted(by: { $0.key < $1.key }) {
                write(node)
                write(UInt32(count))
            }
        }
        write(UInt64(pending))
        write(optional: pendingReason)
    }

    mutating func write(_ moves: [ServiceMove]) {
        write(UInt32(moves.count))
        for move in moves {
            write(UInt64(move.serviceID))
            write(move.decision)
        }
    }
}

extension ByteReader {
    mutating func readString() throws -> String {
        try readString(byteCount: Int(try readUInt32()))
    }

    mutating func readOptionalString() throws -> String? {
        try readByte() == 1 ? try readString() : nil
    }

    /// A service spec; `hasPorts` for the formats that carry its ports and vital flag
    /// (commands from format 2, snapshots from 6).
    mutating func readSpec(hasPorts: Bool) throws -> ServiceSpec {
        let hasContainerID = try readByte() == 1
        let containerID = Int(Int64(bitPattern: try readUInt64()))
        var spec = ServiceSpec(containerID: hasContainerID ? containerID : nil, name: try readOptionalString(),
                               description: try readOptionalString(), label: try readOptionalString(), image: try readOptionalString(),
                               replicas: Int(try readUInt64()), cpu: Int(try readUInt64()), memory: Int(try readUInt64()))
        if hasPorts {
            spec.publish = try readPortRequest()
            spec.privatePort = Int(try readUInt32())
            spec.vital = try readByte() == 1
        }
        return spec
    }

    mutating func readDecision() throws -> Placement.Decision {
        let count = Int(try readUInt32())
        var replicas: [UInt64: Int] = [:]
        for _ in 0..<count { replicas[try readUInt64()] = Int(try readUInt32()) }
        return Placement.Decision(replicas: replicas, pending: Int(try readUInt64()), pendingReason: try readOptionalString())
    }

    mutating func readMoves() throws -> [ServiceMove] {
        let count = Int(try readUInt32())
        var moves: [ServiceMove] = []
        for _ in 0..<count { moves.append(ServiceMove(serviceID: Int(try readUInt64()), decision: try readDecision())) }
        return moves
    }
}
