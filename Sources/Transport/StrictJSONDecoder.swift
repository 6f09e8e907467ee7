/// A JSON decoder for request bodies that says exactly what is wrong: every field the target
/// type does not have is an error naming it, and a number that does not fit its field (a
/// fraction for a whole number, a value out of range) names the field and the value.
///
/// Foundation's decoder ignores unknown fields and reports some number mismatches as
/// "corrupted data" with no path; API.md asks for both to be a 400 naming the field.
public enum StrictJSONDecoder {
    /// What is wrong with a body, as a sentence for `{"error": ...}`.
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The most nested arrays and objects a body may have (deeper is refused, not recursed).
    public static let maxDepth = 64

    /// Decodes `bytes` as `T`, refusing unknown fields anywhere in it.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(Problem) -> T {
        var parser = JSONParser(bytes: bytes)
        let root: JSONNode
        do {
            root = try parser.parseDocument()
        } catch {
            throw Problem(description: "invalid JSON body: \(error.description)")
        }
        let usage = KeyUsage()
        let value: T
        do {
            value = try T(from: NodeDecoder(node: root, codingPath: [], usage: usage))
        } catch let error as DecodingError {
            throw Problem(description: JSONBody.describe(error))
        } catch let error as Problem {
            throw error
        } catch {
            throw Problem(description: "\(error)")
        }
        let unknown = usage.unknownFields()
        if !unknown.isEmpty {
            let list = unknown.joined(separator: ", ")
            throw Problem(description: unknown.count == 1 ? "unknown field \(list)" : "unknown fields \(list)")
        }
        return value
    }
}

/// A parsed JSON value; numbers keep their text so that no precision is lost before the
/// target type is known. Public for fast paths that read a common body straight from it and
/// leave anything unusual to `StrictJSONDecoder`, which names what is wrong.
public enum JSONNode: Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONNode])
    case object([(key: String, value: JSONNode)])

    /// The document in `bytes`, or nil when it is not valid JSON (or nests too deeply).
    public static func parse(_ bytes: [UInt8]) -> JSONNode? {
        var parser = JSONParser(bytes: bytes)
        return try? parser.parseDocument()
    }

    /// A number written as a plain whole number that fits `Int` ("-12"; not "1.0" or "1e3").
    public var integer: Int? {
        guard case .number(let text) = self else { return nil }
        return Int(text)
    }

    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "true or false"
        case .number(let text): text
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// Which keys of each object the target types asked for (by the key's place in the object).
final class KeyUsage {
    private struct Object {
        var codingPath: [any CodingKey]
        var fields: [(key: String, value: JSONNode)]
        var requested: [Bool]
        var acceptsAnyKey = false
    }

    private var objects: [Object] = []

    func register(codingPath: [any CodingKey], fields: [(key: String, value: JSONNode)]) -> Int {
        objects.append(Object(codingPath: codingPath, fields: fields, requested: Array(repeating: false, count: fields.count)))
        return objects.count - 1
    }

    func request(_ index: Int, in object: Int) { objects[object].requested[index] = true }
    func acceptAnyKey(in object: Int) { objects[object].acceptsAnyKey = true }

    /// Paths of fields no type asked for, in the body's order.
    func unknownFields() -> [String] {
        // The common case, every field of every object asked for: nothing to merge.
        if objects.allSatisfy({ $0.acceptsAnyKey || !$0.requested.contains(false) }) { return [] }
        var byPath: [String: (keys: [String], requested: Set<String>, any: Bool)] = [:]
        var order: [String] = []
        for object in objects {
            let path = object.codingPath.isEmpty ? "" : JSONBody.path(object.codingPath)
            if byPath[path] == nil { order.append(path) }
            var merged = byPath[path] ?? (object.fields.map(\.key), [], false)
            for (index, field) in object.fields.enumerated() where object.requested[index] { merged.requested.insert(field.key) }
            merged.any = merged.any || object.acceptsAnyKey
            byPath[path] = merged
        }
        return order.flatMap { path -> [String] in
            let object = byPath[path]!
            guard !object.any else { return [] }
            return object.keys.filter { !object.requested.contains($0) }.map { path.isEmpty ? $0 : "\(path).\($0)" }
        }
    }
}

/// One object of the body as a keyed container reads it: its fields, where each key is
/// (looked up in order for a small object, hashed for a large one), and its coding path.
/// A class, so that copying a container costs one reference.
private final class ObjectFields {
    let fields: [(key: String, value: JSONNode)]
    /// Each key's first place, for objects too large to search in order.
    private let places: [String: Int]?
    let object: Int
    let codingPath: [any CodingKey]

    init(fields: [(key: String, value: JSONNode)], object: Int, codingPath: [any CodingKey]) {
        self.fields = fields
        self.object = object
        self.codingPath = codingPath
        if fields.count > 16 {
            var places: [String: Int] = [:]
            places.reserveCapacity(fields.count)
            for (index, field) in fields.enumerated() where places[field.key] == nil { places[field.key] = index }
            self.places = places
        } else {
            places = nil
        }
    }

    func place(of key: String) -> Int? {
        if let places { return places[key] }
        return fields.firstIndex { $0.key == key }
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

private struct NodeDecoder: Decoder {
    let node: JSONNode
    let codingPath: [any CodingKey]
    let usage: KeyUsage
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let fields) = node else {
            throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: codingPath, debugDescription: "expected an object, got \(node.kind)"))
        }
        let object = usage.register(codingPath: codingPath, fields: fields)
        return KeyedDecodingContainer(KeyedContainer<Key>(object: ObjectFields(fields: fields, object: object, codingPath: codingPath), usage: usage))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = node else {
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "expected an array, got \(node.kind)"))
        }
        return UnkeyedContainer(items: items, codingPath: codingPath, usage: usage)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleContainer(node: node, codingPath: codingPath, usage: usage) }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: ObjectFields
    let usage: KeyUsage
    var codingPath: [any CodingKey] { object.codingPath }

    var allKeys: [Key] {
        usage.acceptAnyKey(in: object.object)
        return object.fields.compactMap { Key(stringValue: $0.key) }
    }

    /// The field's value, noting that the type asked for it; nil when absent.
    private func value(_ key: Key) -> JSONNode? {
        guard let place = object.place(of: key.stringValue) else { return nil }
        usage.request(place, in: object.object)
        return object.fields[place].value
    }

    func contains(_ key: Key) -> Bool { value(key) != nil }

    private func node(_ key: Key) throws -> JSONNode {
        guard let node = value(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return node
    }

    private func decoder(_ key: Key) throws -> NodeDecoder {
        NodeDecoder(node: try node(key), codingPath: codingPath + [key], usage: usage)
    }

    // The common scalars directly; anything else (and every mismatch, for its message)
    // through `SingleContainer`.
    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        if case .string(let value) = try node(key) { return value }
        return try decodeValue(type, forKey: key)
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        if case .bool(let value) = try node(key) { return value }
        return try decodeValue(type, forKey: key)
    }

    func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
        if case .number(let text) = try node(key), let value = Int(text) { return value }
        return try decodeValue(type, forKey: key)
    }

    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 {
        if case .number(let text) = try node(key), let value = UInt64(text) { return value }
        return try decodeValue(type, forKey: key)
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        if case .null = try node(key) { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decodeValue(type, forKey: key) }

    private func decodeValue<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let decoder = try decoder(key)
        return try SingleContainer(node: decoder.node, codingPath: decoder.codingPath, usage: usage).decode(T.self)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let node = value(key) else { return nil }
        if case .null = node { return nil }
        return try decode(T.self, forKey: key)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try decoder(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try decoder(key).unkeyedContainer() }
    func superDecoder() throws -> any Decoder { NodeDecoder(node: .object(object.fields), codingPath: codingPath, usage: usage) }
    func superDecoder(forKey key: Key) throws -> any Decoder { try decoder(key) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let items: [JSONNode]
    let codingPath: [any CodingKey]
    let usage: KeyUsage
    var currentIndex = 0

    init(items: [JSONNode], codingPath: [any CodingKey], usage: KeyUsage) {
        self.items = items
        self.codingPath = codingPath
        self.usage = usage
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> NodeDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "array ended"))
        }
        defer { currentIndex += 1 }
        return NodeDecoder(node: items[currentIndex], codingPath: codingPath + [AnyKey(intValue: currentIndex)], usage: usage)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, case .null = items[currentIndex] else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let decoder = try next()
        return try SingleContainer(node: decoder.node, codingPath: decoder.codingPath, usage: usage).decode(T.self)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

private struct SingleContainer: SingleValueDecodingContainer {
    let node: JSONNode
    let codingPath: [any CodingKey]
    let usage: KeyUsage

    func decodeNil() -> Bool {
        if case .null = node { return true }
        return false
    }

    private func mismatch(_ type: Any.Type, _ expected: String) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "expected \(expected), got \(node.kind)"))
    }

    private func wholeNumber<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        guard case .number(let text) = node else { throw mismatch(type, "a whole number") }
        if let value = T(text) { return value }
        if let double = Double(text), double == double.rounded(), let value = T(exactly: double) { return value }  // 1e3, 5.0
        let isWhole = !text.contains(".") && !text.lowercased().contains("e")
        throw mismatch(type, isWhole ? "a whole number from \(T.min) to \(T.max)" : "a whole number")
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let value) = node else { throw mismatch(type, "true or false") }
        return value
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let value) = node else { throw mismatch(type, "a string") }
        return value
    }

    func decode(_ type: Double.Type) throws -> Double {
        guard case .number(let text) = node, let value = Double(text), value.isFinite else { throw mismatch(type, "a number") }
        return value
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func decode(_ type: Int.Type) throws -> Int { try wholeNumber(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try wholeNumber(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try wholeNumber(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try wholeNumber(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try wholeNumber(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try wholeNumber(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try wholeNumber(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try wholeNumber(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try wholeNumber(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try wholeNumber(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        // Each case has just checked that T is the type it decodes, so the casts cannot fail.
        switch type {
        case is Bool.Type: return try decode(Bool.self) as! T
        case is String.Type: return try decode(String.self) as! T
        case is Double.Type: return try decode(Double.self) as! T
        case is Int.Type: return try decode(Int.self) as! T
        case is Int64.Type: return try decode(Int64.self) as! T
        case is UInt64.Type: return try decode(UInt64.self) as! T
        case is Int32.Type: return try decode(Int32.self) as! T
        case is UInt16.Type: return try decode(UInt16.self) as! T
        default: return try T(from: NodeDecoder(node: node, codingPath: codingPath, usage: usage))
        }
    }
}
