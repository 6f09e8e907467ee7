import Foundation
import Raft
import Transport

/// Seed 001's containers, one by one, as replicated state: created on a node the leader
/// picks (like any replica), then started and stopped through the log. A stopped container
/// keeps its place and its capacity reservation (so starting it again always fits) and uses
/// no CPU. Times are the leader's clock, written into each entry.
public struct ContainerSpec: Codable, Sendable, Equatable {
    public var name: String?
    public var image: String
    public var cmd: [String]
    /// CPU (millicores) and memory (MB) reserved for it.
    public var cpu: Int
    public var memory: Int
    /// Seed 004's service name, if given (a label: it does not join a service's replicas).
    public var service: String? = nil
    /// The port it publishes on its node, and the one inside it that maps to.
    public var publish: PortRequest = .none
    public var privatePort: Int = 80

    public init(name: String? = nil, image: String, cmd: [String] = [], cpu: Int = ServiceSpec.defaultCPU, memory: Int = ServiceSpec.defaultMemory,
                service: String? = nil, publish: PortRequest = .none, privatePort: Int = 80) {
        self.name = name
        self.image = image
        self.cmd = cmd
        self.cpu = cpu
        self.memory = memory
        self.service = service
        self.publish = publish
        self.privatePort = privatePort
    }

    public var demand: NodeResources { NodeResources(slots: 1, cpuMillicores: cpu, memoryMB: memory) }
}

/// A container's state: created (placed, not yet started), running, stopped (by request),
/// exited (its node left the cluster).
public enum ContainerState: String, Codable, Sendable, Equatable {
    case created, running, stopped, exited
}

public struct ContainerRecord: Codable, Sendable, Equatable {
    public struct Change: Codable, Sendable, Equatable {
        public var state: ContainerState
        /// Milliseconds since 1970, the leader's clock when it proposed the change.
        public var atMs: Int64
    }

    public var id: Int
    public var spec: ContainerSpec
    /// The node it is placed on; nil when it fit nowhere (then it stays `created`).
    public var node: UInt64?
    /// The port it publishes on its node (held while it is placed and not exited).
    public var publicPort: Int? = nil
    public var state: ContainerState
    /// Every change of state, oldest first (at most `maxHistory`).
    public var history: [Change]
    /// The entry that created it.
    public var index: UInt64
    public var requestID: String
    public static let maxHistory = 20

    mutating func change(to newState: ContainerState, atMs: Int64) {
        guard newState != state else { return }
        state = newState
        history.append(Change(state: newState, atMs: atMs))
        if history.count > Self.maxHistory { history.removeFirst(history.count - Self.maxHistory) }
    }
}

/// The body of `POST /clusters/:id/containers`: `{"image": ..., "cmd": [...], "name": ...}`
/// (`cmd` may be one string), optional `cpu` and `memory`, `service` (a name it carries),
/// `publish` (true: any free port; or a port), `privatePort` (80 if not given), `node` (put
/// it on this node or refuse: seed 004's create on a node), `requestId`.
struct ContainerRequest: Decodable {
    var image: String?
    var cmd: JSONValue?
    var name: String?
    var cpu: Int?
    var memory: Int?
    var service: String?
    var publish: JSONValue?
    var privatePort: Int?
    var node: JSONValue?
    var requestId: String?

    static func spec(from body: [UInt8]) throws(NodeError) -> (spec: ContainerSpec, node: UInt64?, requestID: String?) {
        let request: ContainerRequest
        do {
            request = try JSONBody.decodeStrictly(ContainerRequest.self, from: body)
        } catch {
            throw .invalid(error.message)
        }
        guard let image = request.image, !image.isEmpty, image.utf8.count <= 256 else {
            throw .invalid(#"missing field image (a non-empty string of at most 256 bytes), e.g. {"image": "golang:alpine"}"#)
        }
        var cmd: [String] = []
        switch request.cmd {
        case nil: break
        case .string(let one)?: cmd = [one]
        case .array(let parts)?:
            for part in parts {
                guard case .string(let text) = part else { throw .invalid("cmd must be a string or an array of strings, got an element \(part.summary)") }
                cmd.append(text)
            }
        case let other?: throw .invalid("cmd must be a string or an array of strings, got \(other.summary)")
        }
        guard cmd.count <= 64, cmd.allSatisfy({ $0.utf8.count <= 1_024 }) else { throw .invalid("cmd has more than 64 parts or a part longer than 1024 bytes") }
        for (field, value) in [("name", request.name), ("service", request.service)] {
            if let value, value.isEmpty || value.utf8.count > 256 { throw .invalid("\(field) must be a non-empty string of at most 256 bytes") }
        }
        let cpu = request.cpu ?? ServiceSpec.defaultCPU
        guard ServiceRequest.cpuMillicores.contains(cpu) else { throw .invalid("cpu must be millicores from 1 to \(ServiceRequest.cpuMillicores.upperBound), got \(cpu)") }
        let memory = request.memory ?? ServiceSpec.defaultMemory
        guard ServiceRequest.memoryMB.contains(memory) else { throw .invalid("memory must be MB from 1 to \(ServiceRequest.memoryMB.upperBound), got \(memory)") }
        let spec = ContainerSpec(name: request.name, image: image, cmd: cmd, cpu: cpu, memory: memory, service: request.service,
                                 publish: try PortRequest.parse(request.publish, field: "publish"),
                                 privatePort: try PortRequest.privatePort(request.privatePort, field: "privatePort"))
        return (spec, try request.node.map(NodeAPI.memberID), try NodeError.checkRequestID(request.requestId))
    }
}

/// A container as the API shows it.
public struct ContainerView: Codable, Sendable {
    public var id: Int
    public var name: String?
    public var image: String
    public var cmd: [String]
    public var node: String?
    public var state: String
    /// When it entered its state (milliseconds since 1970, the leader's clock).
    public var sinceMs: Int64
    public var history: [ContainerRecord.Change]
    /// A stopped container keeps its place and its reservation.
    public var keepsReservation: Bool
    public var cpu: Int
    public var memory: Int
    /// Seed 004's service name, if it was given.
    public var service: String?
    /// The port it publishes on its node (nil: none), and the one inside it.
    public var publicPort: Int?
    public var privatePort: Int
    public var index: UInt64
    public var requestId: String

    public init(_ record: ContainerRecord) {
        id = record.id
        name = record.spec.name
        image = record.spec.image
        cmd = record.spec.cmd
        node = record.node.map(address)
        state = record.state.rawValue
        sinceMs = record.history.last?.atMs ?? 0
        history = record.history
        keepsReservation = record.node != nil && record.state != .exited
        cpu = record.spec.cpu
        memory = record.spec.memory
        service = record.spec.service
        publicPort = record.publicPort
        privatePort = record.spec.privatePort
        index = record.index
        requestId = record.requestID
    }
}

extension ByteWriter {
    mutating func write(_ spec: ContainerSpec) {
        write(optional: spec.name)
        write(string: spec.image)
        write(UInt32(spec.cmd.count))
        for part in spec.cmd { write(string: part) }
        write(UInt64(spec.cpu))
        write(UInt64(spec.memory))
        write(optional: spec.service)
        write(spec.publish)
        write(UInt32(spec.privatePort))
    }

    mutating func write(_ record: ContainerRecord) {
        write(UInt64(record.id))
        write(record.spec)
        write(record.node ?? 0)
        write(UInt32(record.publicPort ?? 0))
        write(string: record.state.rawValue)
        write(UInt32(record.history.count))
        for change in record.history {
            write(string: change.state.rawValue)
            write(UInt64(bitPattern: change.atMs))
        }
        write(record.index)
        write(string: record.requestID)
    }
}

extension ByteReader {
    /// A container spec; `hasPorts` for the formats that carry its service and ports
    /// (commands from format 2, snapshots from 6).
    mutating func readContainerSpec(limit: Int, hasPorts: Bool) throws -> ContainerSpec {
        let name = try readOptionalString()
        let image = try readString()
        var cmd: [String] = []
        for _ in 0..<(try readCount(limit: limit)) { cmd.append(try readString()) }
        var spec = ContainerSpec(name: name, image: image, cmd: cmd, cpu: Int(try readUInt64()), memory: Int(try readUInt64()))
        if hasPorts {
            spec.service = try readOptionalString()
            spec.publish = try readPortRequest()
            spec.privatePort = Int(try readUInt32())
        }
        return spec
    }

    mutating func readContainerState() throws -> ContainerState {
        let text = try readString()
        guard let state = ContainerState(rawValue: text) else { throw ClusterCommandCodec.Malformed(description: "unknown container state \(text)") }
        return state
    }

    mutating func readContainerRecord(limit: Int, hasPorts: Bool) throws -> ContainerRecord {
        let id = Int(try readUInt64())
        let spec = try readContainerSpec(limit: limit, hasPorts: hasPorts)
        let node = try readUInt64()
        let publicPort = hasPorts ? try readOptionalPort() : nil
        let state = try readContainerState()
        var history: [ContainerRecord.Change] = []
        for _ in 0..<(try readCount(limit: limit)) {
            history.append(ContainerRecord.Change(state: try readContainerState(), atMs: Int64(bitPattern: try readUInt64())))
        }
        return ContainerRecord(id: id, spec: spec, node: node == 0 ? nil : node, publicPort: publicPort, state: state, history: history,
                               index: try readUInt64(), requestID: try readString())
    }
}
