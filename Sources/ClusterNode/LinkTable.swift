import Foundation
import Raft
import Transport

/// The state of this node's outgoing link to one peer.
public struct LinkState: Codable, Sendable, Equatable {
    public var isUp: Bool
    /// Added to every message on this link.
    public var delayMilliseconds: Int
    /// Probability that a message on this link is dropped.
    public var loss: Double

    public static let healthy = LinkState(isUp: true, delayMilliseconds: 0, loss: 0)

    public init(isUp: Bool, delayMilliseconds: Int, loss: Double) {
        self.isUp = isUp
        self.delayMilliseconds = delayMilliseconds
        self.loss = loss
    }

    enum CodingKeys: String, CodingKey {
        case isUp = "up"
        case delayMilliseconds = "delayMs"
        case loss
    }

    /// As `/connections` shows a link: `1` or `0`, or an object when it has a delay or loss.
    public func encode(to encoder: any Encoder) throws {
        if delayMilliseconds == 0 && loss == 0 {
            var container = encoder.singleValueContainer()
            try container.encode(isUp ? 1 : 0)
        } else {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(isUp, forKey: .isUp)
            try container.encode(delayMilliseconds, forKey: .delayMilliseconds)
            try container.encode(loss, forKey: .loss)
        }
    }

    public init(from decoder: any Decoder) throws {
        if let plain = try? decoder.singleValueContainer().decode(Int.self) {
            self = LinkState(isUp: plain != 0, delayMilliseconds: 0, loss: 0)
            return
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self = LinkState(isUp: try container.decode(Bool.self, forKey: .isUp),
                         delayMilliseconds: try container.decode(Int.self, forKey: .delayMilliseconds),
                         loss: try container.decode(Double.self, forKey: .loss))
    }
}

/// This node's table of outgoing links (behind `/connections`). Cutting A->B here stops
/// A's messages to B only: Raft messages travel as one-way posts, so this is a true
/// one-way failure. Thread-safe.
public final class LinkTable: @unchecked Sendable {
    public let selfID: UInt64
    private let lock = NSLock()
    private var links: [UInt64: LinkState]
    /// The longest delay a link may be given: a minute is longer than any experiment needs.
    public static let maxDelayMilliseconds = 60_000

    public init(selfID: UInt64, peers: [UInt64]) {
        self.selfID = selfID
        self.links = Dictionary(uniqueKeysWithValues: peers.filter { $0 != selfID }.map { ($0, LinkState.healthy) })
    }

    /// The link to `peer` (healthy when the peer is unknown).
    public func state(to peer: UInt64) -> LinkState { lock.withLock { links[peer] ?? .healthy } }

    /// Every link, by peer.
    public var snapshot: [UInt64: LinkState] { lock.withLock { links } }

    /// Starts tracking a new peer with a healthy link (membership grew).
    public func addPeer(_ peer: UInt64) { lock.withLock { if peer != selfID, links[peer] == nil { links[peer] = .healthy } } }

    /// Sets every link healthy again.
    public func healAll() { lock.withLock { for peer in links.keys { links[peer] = .healthy } } }

    /// Sets the links to `peers`.
    public func set(_ state: LinkState, for peers: [UInt64]) {
        lock.withLock { for peer in peers where links[peer] != nil { links[peer] = state } }
    }

    /// The table as `/connections` shows it: `1`/`0` for a plain link, an object when it has
    /// a delay or loss.
    public func renderJSON(pretty: Bool) -> [UInt8] {
        let table = Dictionary(uniqueKeysWithValues: snapshot.map { ("localhost:\($0.key)", $0.value) })
        return (try? JSONBody.encode(table, pretty: pretty)) ?? Array("{}".utf8)  // encoding a dictionary of links cannot fail
    }

    /// Applies a `/connections` update, all or nothing. Throws a 400 naming the bad key or value.
    public func update(from body: [UInt8]) throws(NodeError) {
        let value: JSONValue
        do {
            value = try JSONBody.decodeStrictly(JSONValue.self, from: body)
        } catch {
            throw .invalid(error.message)
        }
        guard case .object(let fields) = value else {
            throw .invalid(#"expected an object such as {"localhost:8002": 0}"#)
        }
        guard !fields.isEmpty else { throw .invalid("no links given") }
        var changes: [(UInt64, LinkState)] = []
        let known = snapshot
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            // Each key names a peer (a body such as {"to": ..., "state": ...} is not this API).
            let peer = try Self.peerID(from: key, hint: "each key names a peer (\(Self.addressForms)), as in " + #"{"localhost:8002": 0}"#)
            guard peer != selfID else { throw .invalid("\(key) is this node itself") }
            guard let current = known[peer] else {
                let peers = known.keys.sorted().map { "localhost:\($0)" }.joined(separator: ", ")
                throw .invalid("unknown peer \(key) (peers: \(peers))")
            }
            changes.append((peer, try Self.linkState(from: value, current: current, key: key)))
        }
        lock.withLock { for (peer, state) in changes { links[peer] = state } }
    }

    /// How a peer may be named.
    static let addressForms = "localhost:PORT, 127.0.0.1:PORT or PORT"

    /// `localhost:8002`, `127.0.0.1:8002` or `8002` (with an optional `http://`) → 8002;
    /// otherwise an error naming `key`, followed by `hint`.
    static func peerID(from key: String, hint: @autoclosure () -> String = "name it \(addressForms)") throws(NodeError) -> UInt64 {
        guard let address = NodeAddress(parsing: key) else {
            throw .invalid(#"unknown peer "\#(key)": "# + hint())
        }
        return address.id
    }

    static func linkState(from value: JSONValue, current: LinkState, key: String) throws(NodeError) -> LinkState {
        switch value {
        case .bool(let isUp):
            return LinkState(isUp: isUp, delayMilliseconds: current.delayMilliseconds, loss: current.loss)
        case .number(let number) where number == 0 || number == 1:
            return LinkState(isUp: number == 1, delayMilliseconds: current.delayMilliseconds, loss: current.loss)
        case .object(let fields):
            var state = current
            for (name, field) in fields {
                switch (name, field) {
                case ("up", .bool(let isUp)): state.isUp = isUp
                case ("up", .number(let number)) where number == 0 || number == 1: state.isUp = number == 1
                case ("delayMs", .number(let delay)) where delay >= 0 && delay <= Double(maxDelayMilliseconds) && delay == delay.rounded():
                    state.delayMilliseconds = Int(delay)
                case ("loss", .number(let loss)) where loss >= 0 && loss <= 1:
                    state.loss = loss
                case ("up", _): throw .invalid("\(key).up must be true, false, 0 or 1, got \(field.summary)")
                case ("delayMs", _): throw .invalid("\(key).delayMs must be a whole number from 0 to \(maxDelayMilliseconds), got \(field.summary)")
                case ("loss", _): throw .invalid("\(key).loss must be a number from 0 to 1, got \(field.summary)")
                default: throw .invalid("\(key): unknown field \(name) (known: up, delayMs, loss)")
                }
            }
            return state
        default:
            throw .invalid("\(key) must be 0, 1, true, false or an object like {\"up\": true, \"delayMs\": 100, \"loss\": 0.2}, got \(value.summary)")
        }
    }
}
