/// Builds Prometheus text exposition format (version 0.0.4): per metric family one `# HELP`
/// and `# TYPE`, then its samples together (whatever order they were added in), with
/// escaped label values.
public struct MetricsText: Sendable {
    private struct Family: Sendable {
        var help: String
        var type: String
        var lines: [String] = []
    }

    private var order: [String] = []
    private var families: [String: Family] = [:]

    /// The content type of the rendered text.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public init() {}

    /// A value that goes up and down.
    public mutating func gauge(_ name: String, _ help: String, _ value: Double, labels: [String: String] = [:]) {
        append(name, help, "gauge", Self.line(name, labels, value))
    }

    /// A value that only grows.
    public mutating func counter(_ name: String, _ help: String, _ value: Double, labels: [String: String] = [:]) {
        append(name, help, "counter", Self.line(name, labels, value))
    }

    /// A histogram: cumulative `_bucket` samples with `le`, then `_sum` and `_count`.
    public mutating func histogram(_ name: String, _ help: String, _ snapshot: HistogramSnapshot, labels: [String: String] = [:]) {
        var cumulative: UInt64 = 0
        for (index, bound) in snapshot.bounds.enumerated() {
            cumulative += snapshot.counts[index]
            append(name, help, "histogram", Self.line(name + "_bucket", labels.merging(["le": Self.number(bound)]) { $1 }, Double(cumulative)))
        }
        append(name, help, "histogram", Self.line(name + "_bucket", labels.merging(["le": "+Inf"]) { $1 }, Double(snapshot.count)))
        append(name, help, "histogram", Self.line(name + "_sum", labels, snapshot.sum))
        append(name, help, "histogram", Self.line(name + "_count", labels, Double(snapshot.count)))
    }

    /// The text, ending in a newline.
    public var rendered: String {
        var lines: [String] = []
        for name in order {
            guard let family = families[name] else { continue }
            lines.append("# HELP \(name) \(family.help.replacingBackslashesAndNewlines())")
            lines.append("# TYPE \(name) \(family.type)")
            lines += family.lines
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private mutating func append(_ name: String, _ help: String, _ type: String, _ line: String) {
        if families[name] == nil {
            order.append(name)
            families[name] = Family(help: help, type: type)
        }
        families[name]!.lines.append(line)
    }

    private static func line(_ name: String, _ labels: [String: String], _ value: Double) -> String {
        let labelText = labels.isEmpty ? "" : "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(escape($0.value))\"" }.joined(separator: ",") + "}"
        return "\(name)\(labelText) \(number(value))"
    }

    private static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    static func escape(_ value: String) -> String {
        var result = ""
        for character in value {
            switch character {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result
    }
}

extension String {
    func replacingBackslashesAndNewlines() -> String {
        var result = ""
        for character in self {
            switch character {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result
    }
}

extension MetricsText {
    /// The text as an HTTP answer.
    public var response: HTTPResponse {
        HTTPResponse(headers: HTTPHeaders([("Content-Type", Self.contentType)]), body: Array(rendered.utf8))
    }
}
