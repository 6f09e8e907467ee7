/// Builds Prometheus text exposition format (version 0.0.4): `# HELP`, `# TYPE`, then
/// samples with escaped label values. Each metric name's header is written once.
public struct MetricsText: Sendable {
    private var lines: [String] = []
    private var described: Set<String> = []

    public init() {}

    /// A value that goes up and down.
    public mutating func gauge(_ name: String, _ help: String, _ value: Double, labels: [String: String] = [:]) {
        sample(name, help, "gauge", value, labels)
    }

    /// A value that only grows.
    public mutating func counter(_ name: String, _ help: String, _ value: Double, labels: [String: String] = [:]) {
        sample(name, help, "counter", value, labels)
    }

    /// The text, ending in a newline.
    public var rendered: String { lines.joined(separator: "\n") + "\n" }

    private mutating func sample(_ name: String, _ help: String, _ type: String, _ value: Double, _ labels: [String: String]) {
        if described.insert(name).inserted {
            lines.append("# HELP \(name) \(help.replacingBackslashesAndNewlines())")
            lines.append("# TYPE \(name) \(type)")
        }
        let labelText = labels.isEmpty ? "" : "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(Self.escape($0.value))\"" }.joined(separator: ",") + "}"
        let valueText = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        lines.append("\(name)\(labelText) \(valueText)")
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
