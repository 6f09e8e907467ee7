import Foundation

/// Encodes answers as compact JSON with sorted keys, the same text `JSONEncoder` writes with
/// `[.sortedKeys, .withoutEscapingSlashes]` and `.secondsSince1970` dates, at a fraction of
/// its cost (every answer of every request goes through here).
///
/// A scalar's JSON text is written at once into one scratch buffer and its place noted; an
/// object keeps its fields (key and value) until the whole value is written out, in key
/// order. So a field costs no allocation of its own: only objects and arrays do, and the
/// coding path is a stack that becomes an array only when someone asks for it (an error).
///
/// Like `JSONEncoder`: a `Date` is Unix seconds, `Data` is Base64, a `URL` its absolute
/// string, a non-finite number is an error naming its path, a key encoded twice keeps its
/// last value, and a value that encodes nothing is an empty object.
public enum CompactJSONEncoder {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let storage = Storage()
        let root = try storage.encode(value, at: .stack(depth: 0), key: nil)
        var output: [UInt8] = []
        output.reserveCapacity(storage.scratch.count + 64)
        storage.write(root, to: &output)
        return output
    }

    /// An encoded value: a scalar's text (a range of the scratch buffer), an object or an array.
    fileprivate enum Value {
        case empty
        case text(Int, Int)
        case object(ObjectBox)
        case array(ArrayBox)
    }

    fileprivate final class ObjectBox {
        @exclusivity(unchecked) var fields: [(key: String, value: Value)] = []
        init() { fields.reserveCapacity(8) }
    }

    fileprivate final class ArrayBox {
        @exclusivity(unchecked) var items: [Value] = []
    }

    /// Where an encoder's value goes: a place on the stack of values being encoded, or a
    /// field or item of an object or array (an encoder handed out by `superEncoder`).
    fileprivate enum Destination {
        case slot(Int)
        case field(ObjectBox, Int)
        case item(ArrayBox, Int)
    }

    /// A container's coding path: the first `depth` keys of the storage's path stack (while
    /// the value that made the container is being encoded, the stack holds its path), or a
    /// path of its own (a nested container, which may be used after its siblings were).
    fileprivate enum Path {
        case stack(depth: Int)
        case fixed([any CodingKey])
    }

    fileprivate struct IndexKey: CodingKey {
        var stringValue: String { String(intValue!) }
        var intValue: Int?
        init(_ index: Int) { intValue = index }
        init?(stringValue: String) { return nil }
        init?(intValue: Int) { self.intValue = intValue }
    }

    fileprivate final class Storage {
        // One encoding runs on one thread and no access to these overlaps another (none is
        // held across a call that could reach the same property), so the dynamic exclusivity
        // checks, a sixth of the encoder's time, are left out.
        @exclusivity(unchecked) var scratch: [UInt8] = []
        @exclusivity(unchecked) var slots: [Value] = []
        @exclusivity(unchecked) var path: [any CodingKey] = []

        init() {
            scratch.reserveCapacity(512)
            slots.reserveCapacity(8)
            path.reserveCapacity(8)
        }

        func resolve(_ path: Path) -> [any CodingKey] {
            switch path {
            case .stack(let depth): Array(self.path.prefix(depth))
            case .fixed(let keys): keys
            }
        }

        /// Encodes `value`, whose container is at `parent` (with `key`, when it is a field or
        /// an item), and returns what it became.
        func encode<T: Encodable>(_ value: T, at parent: Path, key: (any CodingKey)?) throws -> Value {
            if case .stack(let depth) = parent, depth == path.count {
                if let key { path.append(key) }
                defer { if key != nil { path.removeLast() } }
                return try encodeHere(value)
            }
            let saved = path
            path = resolve(parent) + (key.map { [$0] } ?? [])
            defer { path = saved }
            return try encodeHere(value)
        }

        /// Encodes `value` whose coding path is the stack as it is.
        private func encodeHere<T: Encodable>(_ value: T) throws -> Value {
            // Comparing types is cheap; casting every value to each of them was not.
            if T.self == Date.self { return try number((value as! Date).timeIntervalSince1970, wholeBelow: 1e15, at: .stack(depth: path.count)) }
            if T.self == Data.self { return quoted((value as! Data).base64EncodedString()) }
            if T.self == URL.self { return quoted((value as! URL).absoluteString) }
            if T.self == Decimal.self { return raw((value as! Decimal).description) }
            if T.self == String.self { return quoted(value as! String) }
            slots.append(.empty)
            let slot = slots.count - 1
            defer { slots.removeLast() }
            try value.encode(to: Writer(storage: self, destination: .slot(slot), path: .stack(depth: path.count)))
            return slots[slot]
        }

        func get(_ destination: Destination) -> Value {
            switch destination {
            case .slot(let index): slots[index]
            case .field(let box, let index): box.fields[index].value
            case .item(let box, let index): box.items[index]
            }
        }

        func set(_ destination: Destination, _ value: Value) {
            switch destination {
            case .slot(let index): slots[index] = value
            case .field(let box, let index): box.fields[index].value = value
            case .item(let box, let index): box.items[index] = value
            }
        }

        func object(at destination: Destination) -> ObjectBox {
            if case .object(let box) = get(destination) { return box }
            let box = ObjectBox()
            set(destination, .object(box))
            return box
        }

        func array(at destination: Destination) -> ArrayBox {
            if case .array(let box) = get(destination) { return box }
            let box = ArrayBox()
            set(destination, .array(box))
            return box
        }

        // MARK: Scalars, written into the scratch buffer

        func literal(_ text: StaticString) -> Value {
            let start = scratch.count
            text.withUTF8Buffer { scratch.append(contentsOf: $0) }
            return .text(start, scratch.count)
        }

        func raw(_ text: String) -> Value {
            let start = scratch.count
            scratch.append(contentsOf: text.utf8)
            return .text(start, scratch.count)
        }

        func quoted(_ text: String) -> Value {
            let start = scratch.count
            JSONText.appendQuoted(text, to: &scratch)
            return .text(start, scratch.count)
        }

        func bool(_ value: Bool) -> Value { value ? literal("true") : literal("false") }

        func integer(_ value: some FixedWidthInteger) -> Value {
            let start = scratch.count
            if value < 0 {
                scratch.append(UInt8(ascii: "-"))
                appendDigits(UInt64(value.magnitude))
            } else {
                appendDigits(UInt64(value))
            }
            return .text(start, scratch.count)
        }

        private func appendDigits(_ value: UInt64) {
            var count = 1
            var rest = value
            while rest >= 10 {
                rest /= 10
                count += 1
            }
            scratch.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: count))
            var position = scratch.count
            rest = value
            repeat {
                position -= 1
                scratch[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
        }

        /// A number as JSONEncoder writes it: whole numbers (below `wholeBelow`, where the
        /// type is still exact) without a fraction, others in the type's shortest form that
        /// reads back the same; not a number or infinite is an error naming the path.
        func number<F: BinaryFloatingPoint & CustomStringConvertible>(_ value: F, wholeBelow: F, at path: Path,
                                                                       key: (any CodingKey)? = nil) throws -> Value {
            guard value.isFinite else {
                let codingPath = resolve(path) + (key.map { [$0] } ?? [])
                throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) is not a valid JSON number"))
            }
            if value == value.rounded(), abs(value) < wholeBelow { return integer(Int64(value)) }
            var text = value.description
            if text.hasSuffix(".0") { text.removeLast(2) }
            return raw(text)
        }

        // MARK: Writing out

        func write(_ value: Value, to output: inout [UInt8]) {
            switch value {
            case .empty: output.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")])
            case .text(let start, let end): output.append(contentsOf: scratch[start..<end])
            case .object(let box): write(box, to: &output)
            case .array(let box):
                output.append(UInt8(ascii: "["))
                for (index, item) in box.items.enumerated() {
                    if index > 0 { output.append(UInt8(ascii: ",")) }
                    write(item, to: &output)
                }
                output.append(UInt8(ascii: "]"))
            }
        }

        /// Fields in key order; of a key encoded more than once, the last value (as JSONEncoder).
        private func write(_ box: ObjectBox, to output: inout [UInt8]) {
            let fields = box.fields
            output.append(UInt8(ascii: "{"))
            var isSorted = true
            for index in fields.indices.dropFirst() where !JSONText.sortsBefore(fields[index - 1].key, fields[index].key) {
                isSorted = false
                break
            }
            if isSorted {
                for (index, field) in fields.enumerated() { writeField(field, first: index == 0, to: &output) }
            } else {
                let order = fields.indices.sorted { a, b in
                    fields[a].key == fields[b].key ? a < b : JSONText.sortsBefore(fields[a].key, fields[b].key)
                }
                var first = true
                for (position, index) in order.enumerated() {
                    if position + 1 < order.count, fields[order[position + 1]].key == fields[index].key { continue }  // a later value wins
                    writeField(fields[index], first: first, to: &output)
                    first = false
                }
            }
            output.append(UInt8(ascii: "}"))
        }

        private func writeField(_ field: (key: String, value: Value), first: Bool, to output: inout [UInt8]) {
            if !first { output.append(UInt8(ascii: ",")) }
            JSONText.appendQuoted(field.key, to: &output)
            output.append(UInt8(ascii: ":"))
            write(field.value, to: &output)
        }
    }

    fileprivate struct Writer: Encoder {
        let storage: Storage
        let destination: Destination
        let path: Path
        var codingPath: [any CodingKey] { storage.resolve(path) }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            KeyedEncodingContainer(KeyedWriter<Key>(storage: storage, object: storage.object(at: destination), path: path))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            UnkeyedWriter(storage: storage, array: storage.array(at: destination), path: path)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { SingleWriter(storage: storage, destination: destination, path: path) }
    }

    fileprivate struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let storage: Storage
        let object: ObjectBox
        let path: Path
        var codingPath: [any CodingKey] { storage.resolve(path) }

        private func put(_ key: Key, _ value: Value) { object.fields.append((key.stringValue, value)) }

        mutating func encodeNil(forKey key: Key) throws { put(key, storage.literal("null")) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { put(key, storage.bool(value)) }
        mutating func encode(_ value: String, forKey key: Key) throws { put(key, storage.quoted(value)) }
        mutating func encode(_ value: Double, forKey key: Key) throws { put(key, try storage.number(value, wholeBelow: 1e15, at: path, key: key)) }
        mutating func encode(_ value: Float, forKey key: Key) throws { put(key, try storage.number(value, wholeBelow: 1e7, at: path, key: key)) }
        mutating func encode(_ value: Int, forKey key: Key) throws { put(key, storage.integer(value)) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { put(key, storage.integer(value)) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { put(key, storage.integer(value)) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { put(key, storage.integer(value)) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { put(key, storage.integer(value)) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { put(key, storage.integer(value)) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { put(key, storage.integer(value)) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { put(key, storage.integer(value)) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { put(key, storage.integer(value)) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { put(key, storage.integer(value)) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { put(key, try storage.encode(value, at: path, key: key)) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let box = ObjectBox()
            put(key, .object(box))
            return KeyedEncodingContainer(KeyedWriter<NestedKey>(storage: storage, object: box, path: .fixed(codingPath + [key])))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let box = ArrayBox()
            put(key, .array(box))
            return UnkeyedWriter(storage: storage, array: box, path: .fixed(codingPath + [key]))
        }

        mutating func superEncoder() -> any Encoder { superEncoder(named: "super", path: codingPath) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder(named: key.stringValue, path: codingPath + [key]) }

        private func superEncoder(named name: String, path: [any CodingKey]) -> any Encoder {
            object.fields.append((name, .empty))
            return Writer(storage: storage, destination: .field(object, object.fields.count - 1), path: .fixed(path))
        }
    }

    /// The scalar writes an unkeyed and a single-value container share: each puts the value's
    /// text in its next place (`numberKey`: the key an error about a number names, if any).
    fileprivate protocol ScalarWriting {
        var storage: Storage { get }
        var path: Path { get }
        var numberKey: (any CodingKey)? { get }
        mutating func put(_ value: Value)
    }

    fileprivate struct UnkeyedWriter: UnkeyedEncodingContainer, ScalarWriting {
        let storage: Storage
        let array: ArrayBox
        let path: Path
        var codingPath: [any CodingKey] { storage.resolve(path) }
        var count: Int { array.items.count }
        var numberKey: (any CodingKey)? { IndexKey(count) }

        private var nextPath: [any CodingKey] { codingPath + [IndexKey(array.items.count)] }
        func put(_ value: Value) { array.items.append(value) }

        mutating func encode<T: Encodable>(_ value: T) throws { put(try storage.encode(value, at: path, key: IndexKey(count))) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let path = nextPath
            let box = ObjectBox()
            put(.object(box))
            return KeyedEncodingContainer(KeyedWriter<NestedKey>(storage: storage, object: box, path: .fixed(path)))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let path = nextPath
            let box = ArrayBox()
            put(.array(box))
            return UnkeyedWriter(storage: storage, array: box, path: .fixed(path))
        }

        mutating func superEncoder() -> any Encoder {
            let path = nextPath
            put(.empty)
            return Writer(storage: storage, destination: .item(array, array.items.count - 1), path: .fixed(path))
        }
    }

    fileprivate struct SingleWriter: SingleValueEncodingContainer, ScalarWriting {
        let storage: Storage
        let destination: Destination
        let path: Path
        var codingPath: [any CodingKey] { storage.resolve(path) }
        var numberKey: (any CodingKey)? { nil }

        func put(_ value: Value) { storage.set(destination, value) }

        mutating func encode<T: Encodable>(_ value: T) throws { put(try storage.encode(value, at: path, key: nil)) }
    }
}

extension CompactJSONEncoder.ScalarWriting {
    mutating func encodeNil() throws { put(storage.literal("null")) }
    mutating func encode(_ value: Bool) throws { put(storage.bool(value)) }
    mutating func encode(_ value: String) throws { put(storage.quoted(value)) }
    mutating func encode(_ value: Double) throws { put(try storage.number(value, wholeBelow: 1e15, at: path, key: numberKey)) }
    mutating func encode(_ value: Float) throws { put(try storage.number(value, wholeBelow: 1e7, at: path, key: numberKey)) }
    mutating func encode(_ value: Int) throws { put(storage.integer(value)) }
    mutating func encode(_ value: Int8) throws { put(storage.integer(value)) }
    mutating func encode(_ value: Int16) throws { put(storage.integer(value)) }
    mutating func encode(_ value: Int32) throws { put(storage.integer(value)) }
    mutating func encode(_ value: Int64) throws { put(storage.integer(value)) }
    mutating func encode(_ value: UInt) throws { put(storage.integer(value)) }
    mutating func encode(_ value: UInt8) throws { put(storage.integer(value)) }
    mutating func encode(_ value: UInt16) throws { put(storage.integer(value)) }
    mutating func encode(_ value: UInt32) throws { put(storage.integer(value)) }
    mutating func encode(_ value: UInt64) throws { put(storage.integer(value)) }
}
