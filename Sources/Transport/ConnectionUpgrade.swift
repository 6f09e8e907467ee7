/// What reads a connection after it switched protocols (`101 Switching Protocols`, RFC 9110
/// §15.2.2): the server hands it every byte the client sends from then on, in order, on the
/// connection's event loop, one call at a time. Made per connection by the route that
/// answered the upgrade.
public protocol UpgradedReceiver: AnyObject, Sendable {
    /// Bytes from the client; false closes the connection.
    func received(_ bytes: ArraySlice<UInt8>) -> Bool
    /// Bytes it holds between calls (a frame not yet whole): the server counts them against
    /// its budget for request bodies being read, and closes the connection beyond it.
    var bufferedBytes: Int { get }
    /// The connection closed (the client went, a receive refused, the server stopped).
    func closed()
}

/// A stream of length-prefixed frames (a 4-byte big-endian length, then that many bytes),
/// the protocol Raft messages travel in between nodes: one frame per batch that would
/// otherwise be a request, and no answers. A frame beyond `maxFrameBytes` or one that
/// `onFrame` refuses closes the connection.
///
/// Ownership: used on one connection's loop only (see `UpgradedReceiver`).
public final class FrameReader: UpgradedReceiver, @unchecked Sendable {
    public let maxFrameBytes: Int
    private let onFrame: ([UInt8]) -> Bool
    private let onClose: () -> Void
    /// Bytes of a frame not yet whole (its length prefix included).
    private var partial: [UInt8] = []

    public init(maxFrameBytes: Int, onFrame: @escaping ([UInt8]) -> Bool, onClose: @escaping () -> Void = {}) {
        self.maxFrameBytes = maxFrameBytes
        self.onFrame = onFrame
        self.onClose = onClose
    }

    /// The frame for `payload`: its length, then it.
    public static func frame(_ payload: [UInt8], into output: inout [UInt8]) {
        let count = UInt32(payload.count)
        output.append(contentsOf: [UInt8(count >> 24), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)])
        output.append(contentsOf: payload)
    }

    public func received(_ bytes: ArraySlice<UInt8>) -> Bool {
        if partial.isEmpty { return take(bytes) }
        partial.append(contentsOf: bytes)
        let buffered = partial
        partial = []
        return take(buffered[...])
    }

    public func closed() { onClose() }

    public var bufferedBytes: Int { partial.count }

    /// Hands over every whole frame in `bytes` and keeps the rest.
    private func take(_ bytes: ArraySlice<UInt8>) -> Bool {
        var position = bytes.startIndex
        while bytes.endIndex - position >= 4 {
            // A length that already says too much is refused before its bytes arrive.
            let length = Self.length(in: bytes, at: position)
            guard length <= maxFrameBytes else { return false }
            guard bytes.endIndex - position - 4 >= length else { break }
            guard onFrame(Array(bytes[(position + 4)..<(position + 4 + length)])) else { return false }
            position += 4 + length
        }
        if position < bytes.endIndex { partial = Array(bytes[position...]) }
        return true
    }

    /// The big-endian length prefix at `position`.
    private static func length(in bytes: ArraySlice<UInt8>, at position: Int) -> Int {
        Int(bytes[position]) << 24 | Int(bytes[position + 1]) << 16 | Int(bytes[position + 2]) << 8 | Int(bytes[position + 3])
    }
}

extension HTTPRequest {
    /// The protocol the client asks to switch to (`Connection: upgrade` and `Upgrade: name`),
    /// lowercased; nil when it asks for none.
    public var upgradeProtocol: String? {
        guard let connection = headers["connection"], connection.hasHeaderToken("upgrade"), let upgrade = headers["upgrade"] else { return nil }
        return upgrade.trimmingASCIISpaces().lowercased()
    }
}

extension HTTPResponse {
    /// `101 Switching Protocols` to `protocolName`: from then on the connection's bytes go to
    /// `receiver`, and the server writes nothing more on it.
    public static func switchingProtocols(to protocolName: String, receiver: any UpgradedReceiver) -> HTTPResponse {
        var response = HTTPResponse(status: .switchingProtocols, headers: HTTPHeaders([("Connection", "Upgrade"), ("Upgrade", protocolName)]))
        response.upgrade = receiver
        return response
    }
}
