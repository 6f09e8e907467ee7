/// A value that writes its own compact JSON: byte for byte what `CompactJSONEncoder` writes
/// for its `Encodable` conformance (a test compares the two for every such type), without
/// Codable's containers. For the answers on a hot path (a created service); a pretty answer
/// still goes through `Encodable`.
public protocol JSONWritable: Encodable {
    func writeJSON(to writer: inout JSONObjectWriter) throws
}

/// Writes one JSON object field by field. The caller gives the fields in the order of their
/// keys' UTF-8 bytes (the order `CompactJSONEncoder` sorts them in), and leaves out a nil
/// optional, as synthesized `Encodable` does.
public struct JSONObjectWriter {
    private var bytes: [UInt8]
    private var isFirst = true

    public init() {
        bytes = []
        bytes.reserveCapacity(512)
        bytes.append(UInt8(ascii: "{"))
    }

    /// Goes on after `output` (which it takes over: `finish` gives it back, longer).
    private init(after output: inout [UInt8]) {
        bytes = output
        output = []
        bytes.append(UInt8(ascii: "{"))
    }

    /// The object's text, closed (the writer is left empty).
    public mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        defer { bytes = [] }
        return bytes
    }

    private mutating func key(_ key: StaticString) {
        if !isFirst { bytes.append(UInt8(ascii: ",")) }
        isFirst = false
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func field(_ key: StaticString, _ value: String) {
        self.key(key)
        JSONText.appendQuoted(value, to: &bytes)
    }

    public mutating func field(_ key: StaticString, _ value: Int) {
        self.key(key)
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func field(_ key: StaticString, _ value: UInt64) {
        self.key(key)
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func field(_ key: StaticString, _ value: Bool) {
        self.key(key)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func field(_ key: StaticString, _ value: String?) {
        if let value { field(key, value) }
    }

    public mutating func field(_ key: StaticString, _ value: Int?) {
        if let value { field(key, value) }
    }

    /// A map of names to counts, its keys sorted.
    public mutating func field(_ key: StaticString, _ value: [String: Int]) {
        self.key(key)
        bytes.append(UInt8(ascii: "{"))
        for (index, name) in value.keys.sorted(by: JSONText.sortsBefore).enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONText.appendQuoted(name, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            bytes.append(contentsOf: String(value[name]!).utf8)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// Any other value, through `CompactJSONEncoder` (left out when nil).
    public mutating func field<T: Encodable>(_ key: StaticString, encoding value: T?) throws {
        guard let value else { return }
        let text = try CompactJSONEncoder.encode(value)
        self.key(key)
        bytes.append(contentsOf: text)
    }

    /// An array of values that write themselves.
    public mutating func field<T: JSONWritable>(_ key: StaticString, _ values: [T]) throws {
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            var nested = JSONObjectWriter(after: &bytes)
            try value.writeJSON(to: &nested)
            bytes = nested.finish()
        }
        bytes.append(UInt8(ascii: "]"))
    }
}

extension JSONWritable {
    /// The value's compact JSON text.
    public func jsonBytes() throws -> [UInt8] {
        var writer = JSONObjectWriter()
        try writeJSON(to: &writer)
        return writer.finish()
    }
}
