import Foundation

/// Encodes answers as compact JSON with sorted keys, the same text `JSONEncoder` writes with
/// `[.sortedKeys, .withoutEscapingSlashes]` and `.secondsSince1970` dates, at a fraction of
/// its cost (every answer of every request goes through here; Foundation's encoder was a
/// tenth of a leader's CPU under load). Values are written as they are encoded: a string
/// or number becomes its JSON text at once, and objects keep their fields until they are
/// written out in key order.
///
/// Like `JSONEncoder`: a `Date` is Unix seconds, `Data` is Base64, a `URL` its absolute
/// string, a non-finite number is an error naming its path, a key encoded twice keeps its
/// last value, and a value that encodes nothing is an empty object.
public enum CompactJSONEncoder {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let root = Slot()
        try Writer.encode(value, into: root, codingPath: [])
        var output: [UInt8] = []
        output.reserveCapacity(256)
        root.write(to: &output)
        return output
    }

    /// One place a value goes: empty until something is encoded into it.
    fileprivate final class Slot {
        enum Content {
            case empty
            case text([UInt8])  // a scalar's JSON text
            case object(ObjectBox)
            case array(ArrayBox)
        }
        var content: Content = .empty

        func object() -> ObjectBox {
            if case .object(let box) = content { return box }
            let box = ObjectBox()
            content = .object(box)
            return box
        }

        func array() -> ArrayBox {
            if case .array(let box) = content { return box }
            let box = ArrayBox()
            content = .array(box)
            return box
        }

        func write(to output: inout [UInt8]) {
            switch content {
            case .empty: output.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")])
            case .text(let text): output.append(contentsOf: text)
            case .object(let box): box.write(to: &output)
            case .array(let box): box.write(to: &output)
            }
        }
    }

    fileprivate final class ObjectBox {
        var fields: [(key: String, slot: Slot)] = []

        func slot(for key: String) -> Slot {
            let slot = Slot()
            fields.append((key, slot))
            return slot
        }

        /// Fields in key order; of a key encoded more than once, the last value (as JSONEncoder).
        func write(to output: inout [UInt8]) {
            output.append(UInt8(ascii: "{"))
            let order = fields.indices.sorted { a, b in
                fields[a].key == fields[b].key ? a < b : fields[a].key.utf8.lexicographicallyPrecedes(fields[b].key.utf8)
            }
            var first = true
            for (position, index) in order.enumerated() {
                if position + 1 < order.count, fields[order[position + 1]].key == fields[index].key { continue }  // a later value wins
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                JSONText.appendQuoted(fields[index].key, to: &output)
                output.append(UInt8(ascii: ":"))
                fields[index].slot.write(to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    fileprivate final class ArrayBox {
        var items: [Slot] = []

        func append() -> Slot {
            let slot = Slot()
            items.append(slot)
            return slot
        }

        func write(to output: inout [UInt8]) {
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                item.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        }
    }

    fileprivate struct IndexKey: CodingKey {
        var stringValue: String { String(intValue!) }
        var intValue: Int?
        init(_ index: Int) { intValue = index }
        init?(stringValue: String) { return nil }
        init?(intValue: Int) { self.intValue = intValue }
    }

    fileprivate struct Writer: Encoder {
        let slot: Slot
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        /// Encodes `value` into `slot`, writing the types JSONEncoder treats specially its way.
        static func encode<T: Encodable>(_ value: T, into slot: Slot, codingPath: [any CodingKey]) throws {
            // Comparing types is cheap; casting every value to each of them was not.
            if T.self == Date.self {
                try number((value as! Date).timeIntervalSince1970, into: slot, codingPath: codingPath)
            } else if T.self == Data.self {
                slot.content = .text(quoted((value as! Data).base64EncodedString()))
            } else if T.self == URL.self {
                slot.content = .text(quoted((value as! URL).absoluteString))
            } else if T.self == Decimal.self {
                slot.content = .text(Array((value as! Decimal).description.utf8))
            } else {
                try value.encode(to: Writer(slot: slot, codingPath: codingPath))
            }
        }

        static func number(_ value: Double, into slot: Slot, codingPath: [any CodingKey]) throws {
            try number(value, wholeBelow: 1e15, into: slot, codingPath: codingPath)
        }

        static func number(_ value: Float, into slot: Slot, codingPath: [any CodingKey]) throws {
            try number(value, wholeBelow: 1e7, into: slot, codingPath: codingPath)
        }

        /// A number as JSONEncoder writes it: whole numbers (below `wholeBelow`, where the
        /// type is still exact) without a fraction, others in the type's shortest form that
        /// reads back the same; not a number or infinite is an error naming the path.
        private static func number<F: BinaryFloatingPoint & CustomStringConvertible>(_ value: F, wholeBelow: F, into slot: Slot,
                                                                                      codingPath: [any CodingKey]) throws {
            guard value.isFinite else {
                throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) is not a valid JSON number"))
            }
            var text: String
            if value == value.rounded(), abs(value) < wholeBelow {
                text = String(Int64(value))
            } else {
                text = value.description
                if text.hasSuffix(".0") { text.removeLast(2) }
            }
            slot.content = .text(Array(text.utf8))
        }

        static func quoted(_ string: String) -> [UInt8] {
            var output: [UInt8] = []
            output.reserveCapacity(string.utf8.count + 2)
            JSONText.appendQuoted(string, to: &output)
            return output
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            KeyedEncodingContainer(KeyedWriter<Key>(object: slot.object(), codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer { UnkeyedWriter(array: slot.array(), codingPath: codingPath) }

        func singleValueContainer() -> any SingleValueEncodingContainer { SingleWriter(slot: slot, codingPath: codingPath) }
    }

    /// Scalars shared by the three kinds of container: each writes into a slot.
    fileprivate static func write(_ value: some BinaryInteger, into slot: Slot) { slot.content = .text(Array(String(value).utf8)) }
    fileprivate static func write(_ value: Bool, into slot: Slot) { slot.content = .text(Array((value ? "true" : "false").utf8)) }
    fileprivate static func write(_ value: String, into slot: Slot) { slot.content = .text(Writer.quoted(value)) }
    fileprivate static func writeNull(into slot: Slot) { slot.content = .text(Array("null".utf8)) }

    fileprivate struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let object: ObjectBox
        let codingPath: [any CodingKey]

        private func slot(_ key: Key) -> Slot { object.slot(for: key.stringValue) }

        mutating func encodeNil(forKey key: Key) throws { CompactJSONEncoder.writeNull(into: slot(key)) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: String, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: Double, forKey key: Key) throws { try Writer.number(value, into: slot(key), codingPath: codingPath + [key]) }
        mutating func encode(_ value: Float, forKey key: Key) throws { try Writer.number(value, into: slot(key), codingPath: codingPath + [key]) }
        mutating func encode(_ value: Int, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { CompactJSONEncoder.write(value, into: slot(key)) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try Writer.encode(value, into: slot(key), codingPath: codingPath + [key]) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            KeyedEncodingContainer(KeyedWriter<NestedKey>(object: slot(key).object(), codingPath: codingPath + [key]))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            UnkeyedWriter(array: slot(key).array(), codingPath: codingPath + [key])
        }

        mutating func superEncoder() -> any Encoder { Writer(slot: object.slot(for: "super"), codingPath: codingPath) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { Writer(slot: slot(key), codingPath: codingPath + [key]) }
    }

    fileprivate struct UnkeyedWriter: UnkeyedEncodingContainer {
        let array: ArrayBox
        let codingPath: [any CodingKey]
        var count: Int { array.items.count }

        private var nextPath: [any CodingKey] { codingPath + [IndexKey(array.items.count)] }

        mutating func encodeNil() throws { CompactJSONEncoder.writeNull(into: array.append()) }
        mutating func encode(_ value: Bool) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: String) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: Double) throws {
            let path = nextPath
            try Writer.number(value, into: array.append(), codingPath: path)
        }
        mutating func encode(_ value: Float) throws {
            let path = nextPath
            try Writer.number(value, into: array.append(), codingPath: path)
        }
        mutating func encode(_ value: Int) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: Int8) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: Int16) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: Int32) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: Int64) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: UInt) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: UInt8) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: UInt16) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: UInt32) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode(_ value: UInt64) throws { CompactJSONEncoder.write(value, into: array.append()) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            let path = nextPath
            try Writer.encode(value, into: array.append(), codingPath: path)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let path = nextPath
            return KeyedEncodingContainer(KeyedWriter<NestedKey>(object: array.append().object(), codingPath: path))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let path = nextPath
            return UnkeyedWriter(array: array.append().array(), codingPath: path)
        }

        mutating func superEncoder() -> any Encoder {
            let path = nextPath
            return Writer(slot: array.append(), codingPath: path)
        }
    }

    fileprivate struct SingleWriter: SingleValueEncodingContainer {
        let slot: Slot
        let codingPath: [any CodingKey]

        mutating func encodeNil() throws { CompactJSONEncoder.writeNull(into: slot) }
        mutating func encode(_ value: Bool) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: String) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: Double) throws { try Writer.number(value, into: slot, codingPath: codingPath) }
        mutating func encode(_ value: Float) throws { try Writer.number(value, into: slot, codingPath: codingPath) }
        mutating func encode(_ value: Int) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: Int8) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: Int16) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: Int32) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: Int64) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: UInt) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: UInt8) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: UInt16) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: UInt32) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode(_ value: UInt64) throws { CompactJSONEncoder.write(value, into: slot) }
        mutating func encode<T: Encodable>(_ value: T) throws { try Writer.encode(value, into: slot, codingPath: codingPath) }
    }
}
