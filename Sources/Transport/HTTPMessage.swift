import Foundation

/// Header fields in arrival order. Lookups ignore case, as HTTP requires.
public struct HTTPHeaders: Sendable, Equatable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []

    public init(_ fields: [(String, String)] = []) {
        for (name, value) in fields { add(name, value) }
    }

    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    /// Room for `count` fields, so that adding a request's fields one by one grows the list once.
    public mutating func reserveCapacity(_ count: Int) { fields.reserveCapacity(count) }

    /// Replaces every field called `name` with one holding `value`.
    public mutating func set(_ name: String, _ value: String) {
        fields.removeAll { $0.name.caseInsensitiveEquals(name) }
        fields.append((name, value))
    }

    /// The first value of `name`, if any.
    public subscript(name: String) -> String? {
        fields.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// Every value of `name`.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }
}

extension String {
    /// ASCII case-insensitive comparison (header names are ASCII tokens).
    func caseInsensitiveEquals(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        func equal(_ x: UInt8, _ y: UInt8) -> Bool { x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7A) }
        let fast = utf8.withContiguousStorageIfAvailable { a in
            other.utf8.withContiguousStorageIfAvailable { b in
                for index in 0..<a.count where !equal(a[index], b[index]) { return false }
                return true
            }
        }
        return (fast ?? nil) ?? zip(utf8, other.utf8).allSatisfy(equal)
    }

    /// True when this comma-separated header value lists `token` (ASCII case-insensitive),
    /// as `Connection: keep-alive, Upgrade` lists `upgrade`.
    func hasHeaderToken(_ token: String) -> Bool {
        split(separator: ",").contains { $0.trimmingASCIISpaces().caseInsensitiveEquals(token) }
    }
}

/// One HTTP request as the server received it.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The request target as sent, e.g. `/clusters/0/stats?pretty`.
    public var target: String
    /// The path part of the target, percent-decoded per segment by the router.
    public var path: String
    /// Query parameters, percent-decoded; a key without `=` maps to "".
    public var query: [String: String]
    public var isHTTP11: Bool
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Parameters bound by the route pattern (`:id` in `/clusters/:id`).
    public var pathParameters: [String: String] = [:]
    /// The peer's address as "ip:port", when known.
    public var remoteAddress: String?
    /// The server's number for the connection this request came on (see
    /// `HTTPServer.onConnectionClosed`); nil for a request not read by a server.
    public var connectionID: UInt64?

    public init(method: String, target: String, isHTTP11: Bool = true, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.isHTTP11 = isHTTP11
        self.headers = headers
        self.body = body
        let (path, query) = Self.split(target: target)
        self.path = path
        self.query = query
    }

    /// True when the client asked for pretty-printed JSON (`?pretty`).
    public var wantsPrettyJSON: Bool {
        guard let value = query["pretty"] else { return false }
        return value != "false" && value != "0"
    }

    /// True when the connection should stay open after this request (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    public var wantsKeepAlive: Bool {
        guard let connection = headers["connection"] else { return isHTTP11 }
        return isHTTP11 ? !connection.hasHeaderToken("close") : connection.hasHeaderToken("keep-alive")
    }

    /// The parameter `name` of the route pattern; throws 404 when absent.
    public func parameter(_ name: String) throws(HTTPError) -> String {
        guard let value = pathParameters[name] else { throw HTTPError(.notFound, "missing path parameter \(name)") }
        return value
    }

    /// The fields of an `application/x-www-form-urlencoded` body (decoded like a query).
    public static func formFields(_ body: [UInt8]) -> [String: String] {
        split(target: "?" + String(decoding: body, as: UTF8.self)).1
    }

    static func split(target: String) -> (String, [String: String]) {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (target, [:]) }
        var query: [String: String] = [:]
        for pair in target[target.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: true) {
            if let equals = pair.firstIndex(of: "=") {
                query[percentDecode(pair[..<equals], plusIsSpace: true)] = percentDecode(pair[pair.index(after: equals)...], plusIsSpace: true)
            } else {
                query[percentDecode(pair, plusIsSpace: true)] = ""
            }
        }
        return (String(target[..<mark]), query)
    }
}

/// Decodes %XX escapes (and `+` as space in queries); malformed escapes stay as they are.
func percentDecode<S: StringProtocol>(_ text: S, plusIsSpace: Bool) -> String {
    // Bytes, not `contains("%")`: that is Foundation's substring search, through NSString.
    guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) else { return String(text) }
    var bytes: [UInt8] = []
    var iterator = Array(text.utf8)[...]
    while let byte = iterator.popFirst() {
        if byte == UInt8(ascii: "%"), iterator.count >= 2,
           let high = hexValue(iterator[iterator.startIndex]), let low = hexValue(iterator[iterator.startIndex + 1])
        {
            bytes.append(high << 4 | low)
            iterator.removeFirst(2)
        } else if byte == UInt8(ascii: "+") && plusIsSpace {
            bytes.append(UInt8(ascii: " "))
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// An HTTP status code with its reason phrase.
public struct HTTPStatus: RawRepresentable, Hashable, Sendable, ExpressibleByIntegerLiteral {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public init(integerLiteral value: Int) { self.rawValue = value }

    public static let `continue`: HTTPStatus = 100
    public static let switchingProtocols: HTTPStatus = 101
    public static let ok: HTTPStatus = 200
    public static let created: HTTPStatus = 201
    public static let accepted: HTTPStatus = 202
    public static let noContent: HTTPStatus = 204
    public static let badRequest: HTTPStatus = 400
    public static let forbidden: HTTPStatus = 403
    public static let notFound: HTTPStatus = 404
    public static let methodNotAllowed: HTTPStatus = 405
    public static let requestTimeout: HTTPStatus = 408
    public static let conflict: HTTPStatus = 409
    public static let payloadTooLarge: HTTPStatus = 413
    public static let unprocessableContent: HTTPStatus = 422
    public static let upgradeRequired: HTTPStatus = 426
    public static let tooManyRequests: HTTPStatus = 429
    public static let uriTooLong: HTTPStatus = 414
    public static let unsupportedMediaType: HTTPStatus = 415
    public static let headerFieldsTooLarge: HTTPStatus = 431
    public static let internalServerError: HTTPStatus = 500
    public static let notImplemented: HTTPStatus = 501
    public static let badGateway: HTTPStatus = 502
    public static let serviceUnavailable: HTTPStatus = 503
    public static let gatewayTimeout: HTTPStatus = 504
    public static let versionNotSupported: HTTPStatus = 505

    public var reason: String {
        switch rawValue {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 426: "Upgrade Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Status \(rawValue)"
        }
    }
}

/// A response to send, or one the client received.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// A body written as it is produced (server-sent events): after the head, the server
    /// calls this on the connection's thread with a writer that returns false once the
    /// client is gone (or too slow: the socket's send timeout); the connection closes when
    /// it returns. No Content-Length; `body` is ignored.
    public var stream: (@Sendable (_ write: ([UInt8]) -> Bool) -> Void)? = nil
    /// With status 101: what reads the connection once this answer is written (see
    /// `switchingProtocols(to:receiver:)`).
    public var upgrade: (any UpgradedReceiver)? = nil

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body as UTF-8 text.
    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// A JSON error answer: `{"error": message}`.
    public static func error(_ status: HTTPStatus, _ message: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        var headers = headers
        headers.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: Array(#"{"error":\#(JSONText.quote(message))}"#.utf8))
    }

    /// The bytes of this response on the wire (head and body in one buffer, for one write).
    /// Written straight into one buffer sized for the whole answer: built as a string first, an
    /// answer cost about nine allocations (each piece, the head's bytes, the body appended).
    func serialized(keepAlive: Bool, includeBody: Bool = true) -> [UInt8] {
        let sendsBody = includeBody && status != .noContent
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + status.reason.utf8.count + headers.fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
                              + (sendsBody ? body.count : 0))
        bytes.append(contentsOf: "HTTP/1.1 ".utf8)
        bytes.append(contentsOf: String(status.rawValue).utf8)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: status.reason.utf8)
        bytes.append(contentsOf: "\r\n".utf8)
        // The server decides Connection, but for a switch of protocols, which names it.
        let keepsConnectionHeader = status == .switchingProtocols
        for (name, value) in headers.fields
        where !name.caseInsensitiveEquals("content-length") && (keepsConnectionHeader || !name.caseInsensitiveEquals("connection")) {
            bytes.append(contentsOf: name.utf8)
            bytes.append(contentsOf: ": ".utf8)
            bytes.append(contentsOf: value.utf8)
            bytes.append(contentsOf: "\r\n".utf8)
        }
        if status.rawValue >= 200 && status != .noContent {
            bytes.append(contentsOf: "Content-Length: ".utf8)
            bytes.append(contentsOf: String(body.count).utf8)
            bytes.append(contentsOf: "\r\n".utf8)
        }
        if !keepAlive { bytes.append(contentsOf: "Connection: close\r\n".utf8) }
        bytes.append(contentsOf: "\r\n".utf8)
        if sendsBody { bytes.append(contentsOf: body) }
        return bytes
    }
}

/// An error that renders itself as an HTTP answer: a status and `{"error": message}`.
/// An error that knows how it is answered over HTTP (Hummingbird's `HTTPResponseError`): a
/// domain's error type conforms at the edge, and the router renders it.
public protocol HTTPResponseError: Error {
    var httpError: HTTPError { get }
}

public struct HTTPError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPStatus
    public var message: String
    public var headers: HTTPHeaders

    public init(_ status: HTTPStatus, _ message: String, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.rawValue) \(message)" }

    public var response: HTTPResponse { .error(status, message, headers: headers) }
}

/// Minimal JSON text helpers for hand-written answers.
public enum JSONText {
    /// `text` as a JSON string literal.
    public static func quote(_ text: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 2)
        appendQuoted(text, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `text` as a JSON string literal, escaped as `JSONEncoder` escapes (quote,
    /// backslash, the short escapes, other control bytes as \u00XX; slashes and non-ASCII
    /// as they are).
    /// Whether key `a` comes before `b` in the order of their UTF-8 bytes (JSONEncoder's order
    /// of sorted keys, which both of our JSON writers follow).
    static func sortsBefore(_ a: String, _ b: String) -> Bool {
        let fast = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in
                let common = min(x.count, y.count)
                let order = common == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, common)
                return order != 0 ? order < 0 : x.count < y.count
            }
        }
        return (fast ?? nil) ?? a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    public static func appendQuoted(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        // Most text needs no escape: copied whole.
        let isPlain = text.utf8.withContiguousStorageIfAvailable { bytes in
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            output.append(contentsOf: bytes)
            return true
        }
        if isPlain == true {
            output.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
