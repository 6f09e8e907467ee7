import Foundation
import Testing
@testable import Transport

/// The compact encoder must write what Foundation's JSONEncoder writes with the answers'
/// settings (sorted keys, unescaped slashes, Unix-seconds dates), byte for byte.
@Suite struct CompactJSONEncoderTests {
    enum Shape: Codable, Equatable {
        case circle(radius: Double)
        case square(Int)
        case none
    }

    struct Inner: Codable, Equatable {
        var name: String
        var tags: [String]
        var weight: Float
    }

    struct Everything: Codable, Equatable {
        var id: Int
        var big: UInt64
        var small: Int64
        var ratio: Double
        var whole: Double
        var tiny: Double
        var flag: Bool
        var missing: String?
        var present: String?
        var text: String
        var when: Date
        var blob: Data
        var link: URL
        var inner: Inner
        var list: [Inner]
        var byName: [String: Int]
        var byNumber: [Int: String]
        var byID: [UInt64: String]
        var shapes: [Shape]
        var nested: [[Int]]
        var empty: [String: String]
        var zebra: Int
        var Apple: Int
        var a10: Int
        var a2: Int
    }

    static let sample = Everything(
        id: 42, big: .max, small: .min, ratio: 0.1, whole: 3.0, tiny: 1e-7, flag: true, missing: nil, present: "here",
        text: "quote \" backslash \\ slash / tab \t newline \n bell \u{07} é 🚀 \u{1F}",
        when: Date(timeIntervalSince1970: 1_700_000_000.25), blob: Data([0, 1, 2, 250]), link: URL(string: "http://localhost:8001/a?b=c")!,
        inner: Inner(name: "n", tags: [], weight: 0.5), list: [Inner(name: "x", tags: ["a", "b"], weight: 2)],
        byName: ["b": 2, "a": 1, "B": 3], byNumber: [10: "ten", 2: "two"], byID: [7: "seven"],
        shapes: [.circle(radius: 1.5), .square(3), .none], nested: [[1, 2], [], [3]], empty: [:], zebra: 1, Apple: 2, a10: 3, a2: 4)

    static func foundation<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test func writesWhatFoundationWrites() throws {
        let ours = String(decoding: try CompactJSONEncoder.encode(Self.sample), as: UTF8.self)
        #expect(ours == (try Self.foundation(Self.sample)))
    }

    @Test func readsBackToTheSameValue() throws {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        #expect(try decoder.decode(Everything.self, from: Data(CompactJSONEncoder.encode(Self.sample))) == Self.sample)
    }

    @Test func scalarsAtTheTopAndNumbers() throws {
        for value in [0.0, -2.5, 1e15, 1e16, 123456.789, 5e-324, 1.7976931348623157e308, -0.0] {
            let ours = String(decoding: try CompactJSONEncoder.encode(value), as: UTF8.self)
            #expect(Double(ours) == value, "\(value) written as \(ours)")
        }
        #expect(String(decoding: try CompactJSONEncoder.encode("a/b"), as: UTF8.self) == #""a/b""#)
        #expect(String(decoding: try CompactJSONEncoder.encode([Int]()), as: UTF8.self) == "[]")
        #expect(String(decoding: try CompactJSONEncoder.encode(Optional<Int>.none), as: UTF8.self) == "null")
    }

    @Test func nonFiniteNumbersAreErrorsNamingTheirPath() {
        struct Holder: Encodable { var values: [String: Double] }
        struct Outer: Encodable { var list: [Holder] }
        func path(_ value: some Encodable) -> String? {
            guard case .failure(let error) = Result(catching: { try CompactJSONEncoder.encode(value) }) else { return nil }
            guard case EncodingError.invalidValue(_, let context) = error else { return "\(error)" }
            return context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        #expect(path(Holder(values: ["x": .nan])) == "values.x")
        #expect(path(Outer(list: [Holder(values: [:]), Holder(values: ["y": .infinity])])) == "list.1.values.y")
        #expect(path([1.0, Double.infinity]) == "1")
        #expect(path(Float.nan) == "")
    }

    /// Containers used out of order (a nested container written after its sibling fields), a
    /// key written twice, super encoders and a value that encodes nothing: as Foundation.
    @Test func unusualContainerUseWritesWhatFoundationWrites() throws {
        struct Nothing: Encodable { func encode(to encoder: any Encoder) throws {} }
        struct Odd: Encodable {
            enum Key: String, CodingKey { case b, a, nested, list, again, sup, nothing }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Key.self)
                var nested = container.nestedContainer(keyedBy: Key.self, forKey: .nested)
                var list = container.nestedUnkeyedContainer(forKey: .list)
                try container.encode(2, forKey: .b)
                try nested.encode("late", forKey: .b)
                try list.encode(1)
                try container.encode("first", forKey: .again)
                try container.encode(1.5, forKey: .a)
                try list.encode(["k": [true]])
                try container.encode("second", forKey: .again)
                try nested.encode([Nothing()], forKey: .a)
                try container.encode(Nothing(), forKey: .nothing)
                var sup = container.superEncoder(forKey: .sup).container(keyedBy: Key.self)
                try sup.encode(7, forKey: .a)
                var superInList = list.superEncoder().singleValueContainer()
                try superInList.encode("in list")
            }
        }
        let ours = String(decoding: try CompactJSONEncoder.encode(Odd()), as: UTF8.self)
        #expect(ours == (try Self.foundation(Odd())))
        // Foundation refuses a top-level value that encodes nothing; an answer is then `{}`.
        #expect(String(decoding: try CompactJSONEncoder.encode(Nothing()), as: UTF8.self) == "{}")
    }
}
