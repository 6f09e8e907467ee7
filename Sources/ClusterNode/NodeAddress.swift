/// A node as users name it. Nodes listen on loopback and are known by their port (which is
/// also their Raft ID), so this is the one parser and the one formatter of node names.
public struct NodeAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let port: Int

    public init(port: Int) {
        precondition((1...65_535).contains(port), "port \(port) is not a port")
        self.port = port
    }

    /// The node with Raft ID `id` (its port).
    public init(id: UInt64) { self.init(port: Int(id)) }

    /// `localhost:8002`, `127.0.0.1:8002`, `8002`, with or without `http://`; nil for anything else.
    public init?(parsing text: String) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        if let colon = rest.lastIndex(of: ":") {
            guard rest[..<colon] == "localhost" || rest[..<colon] == "127.0.0.1" else { return nil }
            rest = rest[rest.index(after: colon)...]
        }
        guard let port = Int(rest), (1...65_535).contains(port) else { return nil }
        self.init(port: port)
    }

    /// The node's Raft ID.
    public var id: UInt64 { UInt64(port) }

    /// `localhost:PORT`, as every answer shows a node.
    public var description: String { "localhost:\(port)" }

    public static func < (lhs: NodeAddress, rhs: NodeAddress) -> Bool { lhs.port < rhs.port }
}

/// A node's role as the API names it (API.md: a string on the wire, an enum in code).
public enum NodeRole: String, Codable, Sendable {
    case leader, follower, candidate, learner, stopped
}

extension NodeDefinition {
    /// The role this node reported (nil for a name this version does not know).
    public var role: NodeRole? { NodeRole(rawValue: state) }
}
