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

    public init(name: String? = nil, image: String, cmd: [String] = [], cpu: Int = ServiceSpec.defaultCPU, memory: Int = ServiceSpec.defaultMemory) {
        self.name = name
        self.image = image
        self.cmd = cmd
        self.cpu = cpu
        self.memory = memory
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
/// (`cmd` may be one string), optional `cpu` and `memory`, `requestId`.
struct ContainerRequest: Decodable {
    var image: String?
    var cmd: JSONValue?
    var name: String?
    var cpu: Int?
    var memory: Int?
    var requestId: String?

    static func spec(from body: [UInt8]) throws(NodeError) -> (spec: ContainerSpec, requestID: String?) {
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
        if let name = request.name, name.isEmpty || name.utf8.count > 256 { throw .invalid("name must be a non-empty string of at most 256 bytes") }
        let cpu = request.cpu ?? ServiceSpec.defaultCPU
        guard cpu >= 1, cpu <= 256_000 else { throw .invalid("cpu must be millicores from 1 to 256000, got \(cpu)") }
        let memory = request.memory ?? ServiceSpec.defaultMemory
        guard memory >= 1, memory <= 1_048_576 else { throw .invalid("memory must be MB from 1 to 1048576, got \(memory)") }
        return (ContainerSpec(name: request.name, image: image, cmd: cmd, cpu: cpu, memory: memory), try NodeError.checkRequestID(request.requestId))
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
    }

    mutating func write(_ record: ContainerRecord) {
        write(UInt64(record.id))
        write(record.spec)
        write(record.node ?? 0)
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
    mutating func readContainerSpec(limit: Int) throws -> ContainerSpec {
        let name = try readOptionalString()
        let image = try readString()
        var cmd: [String] = []
        for _ in 0..<(try readCount(limit: limit)) { cmd.append(try readString()) }
        return ContainerSpec(name: name, image: image, cmd: cmd, cpu: Int(try readUInt64()), memory: Int(try readUInt64()))
    }

    mutating func readContainerState() throws -> ContainerState {
        let text = try readString()
        guard let state = ContainerState(rawValue: text) else { throw ClusterCommandCodec.Malformed(description: "unknown container state \(text)") }
        return state
    }

    mutating func readContainerRecord(limit: Int) throws -> ContainerRecord {
        let id = Int(try readUInt64())
        let spec = try readContainerSpec(limit: limit)
        let node = try readUInt64()
        let state = try readContainerState()
        var history: [ContainerRecord.Change] = []
        for _ in 0..<(try readCount(limit: limit)) {
            history.append(ContainerRecord.Change(state: try readContainerState(), atMs: Int64(bitPattern: try readUInt64())))
        }
        return ContainerRecord(id: id, spec: spec, node: node == 0 ? nil : node, state: state, history: history,
                               index: try readUInt64(), requestID: try readString())
    }
}
