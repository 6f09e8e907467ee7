import Raft
import Transport

/// Published ports (seed 000's `publish`, seed 004's `port`): a port a replica or container
/// publishes is reserved on the node it runs on, so two replicas of different services never
/// publish the same port on one node, and a published service runs at most one replica per
/// node (as with Docker's host-mode publishing). The ports are simulated: nothing listens.
public enum PortRequest: Sendable, Equatable, Codable {
    /// Publishes nothing.
    case none
    /// Any free port, picked when the entry applies (the lowest free one in `PortRequest.automatic`).
    case any
    /// This port.
    case fixed(Int)

    /// Where ports picked for `.any` come from (Kubernetes' NodePort range).
    public static let automatic = 30_000...32_767
    /// Ports a request may name.
    public static let allowed = 1...65_535

    /// `publish` in a body: `true` (any port), `false` (none) or a port number.
    static func parse(_ value: JSONValue?, field: @autoclosure () -> String) throws(NodeError) -> PortRequest {
        switch value {
        case nil, .bool(false)?, .null?: return .none
        case .bool(true)?: return .any
        case .number(let number)? where number == number.rounded() && allowed.contains(Int(exactly: number) ?? 0):
            return .fixed(Int(number))
        case let other?:
            throw .invalid("\(field()) must be true (any free port), false, or a port from 1 to 65535, got \(other.summary)")
        }
    }

    /// A container port (the one inside, `PrivatePort`): 1 to 65535, 80 when not given.
    static func privatePort(_ value: Int?, field: @autoclosure () -> String) throws(NodeError) -> Int {
        guard let value else { return 80 }
        guard allowed.contains(value) else { throw .invalid("\(field()) must be a port from 1 to 65535, got \(value)") }
        return value
    }
}

/// What holds a published port on a node.
public enum PortHolder: Sendable, Equatable, CustomStringConvertible {
    case service(Int)
    case container(Int)

    public var description: String {
        switch self {
        case .service(let id): "service \(id)"
        case .container(let id): "container \(id)"
        }
    }
}

extension ByteWriter {
    mutating func write(_ request: PortRequest) {
        switch request {
        case .none: write(UInt8(0))
        case .any: write(UInt8(1))
        case .fixed(let port):
            write(UInt8(2))
            write(UInt32(port))
        }
    }
}

extension ByteReader {
    mutating func readPortRequest() throws -> PortRequest {
        switch try readByte() {
        case 0: return .none
        case 1: return .any
        case 2: return .fixed(Int(try readUInt32()))
        case let kind: throw ClusterCommandCodec.Malformed(description: "unknown port request \(kind)")
        }
    }

    /// An optional port written as u32 (0: none).
    mutating func readOptionalPort() throws -> Int? {
        let port = Int(try readUInt32())
        return port == 0 ? nil : port
    }
}
