import Foundation
import Raft
import Transport

/// A service's offered load over time, in millicores of CPU demand for the whole service
/// (DESIGN.md, "The load model"). Time is milliseconds since the pattern was set.
public enum LoadPattern: Codable, Sendable, Equatable {
    /// The same load all the time.
    case constant(Int)
    /// `from` until `atMs`, then `to` for good.
    case step(from: Int, to: Int, atMs: Int)
    /// From `from` to `to` in a straight line over `periodMs`, then `to` for good.
    case ramp(from: Int, to: Int, periodMs: Int)
    /// `mean + amplitude × sin(2π t / periodMs)`, never below 0.
    case sine(mean: Int, amplitude: Int, periodMs: Int)
    /// `peak` for the first `durationMs` of every `periodMs`, `base` otherwise.
    case spike(base: Int, peak: Int, periodMs: Int, durationMs: Int)

    /// The offered load `elapsedMs` after the pattern was set (before it: its start).
    public func millicores(atElapsedMs elapsedMs: Int64) -> Int {
        let t = max(0, elapsedMs)
        switch self {
        case .constant(let value):
            return value
        case .step(let from, let to, let atMs):
            return t < Int64(atMs) ? from : to
        case .ramp(let from, let to, let periodMs):
            guard t < Int64(periodMs) else { return to }
            return from + Int((Double(to - from) * Double(t) / Double(periodMs)).rounded())
        case .sine(let mean, let amplitude, let periodMs):
            let phase = Double(t % Int64(periodMs)) / Double(periodMs)
            return max(0, mean + Int((Double(amplitude) * sin(2 * Double.pi * phase)).rounded()))
        case .spike(let base, let peak, let periodMs, let durationMs):
            return t % Int64(periodMs) < Int64(durationMs) ? peak : base
        }
    }

    /// The largest load a pattern asks for: bounds what one request may set.
    public static let maxMillicores = 10_000_000
    /// The longest period or delay a pattern may have (a day).
    public static let maxPeriodMs = 86_400_000
}

/// A service's load pattern and when it was set (the leader's wall clock, in milliseconds
/// since 1970, written into the log entry): every node computes the same figures for the
/// same moment.
public struct ServiceLoad: Codable, Sendable, Equatable {
    public var pattern: LoadPattern
    public var sinceMs: Int64

    public init(pattern: LoadPattern, sinceMs: Int64) {
        self.pattern = pattern
        self.sinceMs = sinceMs
    }

    /// The service's offered load at `nowMs` (milliseconds since 1970).
    public func millicores(atMs nowMs: Int64) -> Int { pattern.millicores(atElapsedMs: nowMs - sinceMs) }
}

/// What one simulated container of a service uses under a load, from the offered load
/// spread evenly over the service's running replicas:
/// - CPU: its share of the offered load, in millicores and as a percentage of its request;
/// - memory: its request plus up to half again, growing with CPU use up to twice the request;
/// - network: 1,000 bytes per second received and 250 sent per millicore of its share.
public struct ContainerLoad: Codable, Sendable, Equatable {
    public var cpuMillicores: Int
    public var cpuPercent: Double
    public var memoryMB: Int
    public var rxBytesPerSecond: Int
    public var txBytesPerSecond: Int

    public static let zero = ContainerLoad(cpuMillicores: 0, cpuPercent: 0, memoryMB: 0, rxBytesPerSecond: 0, txBytesPerSecond: 0)

    public init(cpuMillicores: Int, cpuPercent: Double, memoryMB: Int, rxBytesPerSecond: Int, txBytesPerSecond: Int) {
        self.cpuMillicores = cpuMillicores
        self.cpuPercent = cpuPercent
        self.memoryMB = memoryMB
        self.rxBytesPerSecond = rxBytesPerSecond
        self.txBytesPerSecond = txBytesPerSecond
    }

    /// One container of `spec` when the service's offered load is `offered` over `running` replicas.
    public init(spec: ServiceSpec, offered: Int, running: Int) {
        guard running > 0 else {
            self = .zero
            return
        }
        let share = offered / running
        let utilisation = Double(share) / Double(max(1, spec.cpu))
        cpuMillicores = share
        cpuPercent = (utilisation * 1_000).rounded() / 10
        memoryMB = spec.memory + Int((Double(spec.memory) * min(utilisation, 2) / 4).rounded())
        rxBytesPerSecond = share * 1_000
        txBytesPerSecond = share * 250
    }

    public static func + (lhs: ContainerLoad, rhs: ContainerLoad) -> ContainerLoad {
        ContainerLoad(cpuMillicores: lhs.cpuMillicores + rhs.cpuMillicores, cpuPercent: lhs.cpuPercent + rhs.cpuPercent,
                      memoryMB: lhs.memoryMB + rhs.memoryMB, rxBytesPerSecond: lhs.rxBytesPerSecond + rhs.rxBytesPerSecond,
                      txBytesPerSecond: lhs.txBytesPerSecond + rhs.txBytesPerSecond)
    }
}

extension LoadPattern {
    /// Reads a pattern from a request body (strict JSON, every field checked and named):
    /// `{"pattern": "constant", "millicores": 800}`,
    /// `{"pattern": "step", "from": 200, "to": 1200, "atMs": 30000}`,
    /// `{"pattern": "ramp", "from": 200, "to": 1200, "periodMs": 60000}`,
    /// `{"pattern": "sine", "mean": 600, "amplitude": 400, "periodMs": 60000}`,
    /// `{"pattern": "spike", "base": 200, "peak": 2000, "periodMs": 60000, "durationMs": 5000}`;
    /// an optional `requestId` too. Returns the pattern and the request ID, if given.
    public static func parse(_ body: [UInt8]) throws(NodeError) -> (pattern: LoadPattern, requestID: String?) {
        let value: JSONValue
        do {
            value = try JSONBody.decodeStrictly(JSONValue.self, from: body)
        } catch {
            throw .invalid(error.message)
        }
        guard case .object(let fields) = value else { throw .invalid(#"expected an object such as {"pattern": "constant", "millicores": 800}"#) }
        let object = fields
        guard case .string(let kind)? = object["pattern"] else {
            throw .invalid("missing field pattern (constant, step, ramp, sine or spike)")
        }
        let known: [String: [String]] = ["constant": ["millicores"], "step": ["from", "to", "atMs"], "ramp": ["from", "to", "periodMs"],
                                         "sine": ["mean", "amplitude", "periodMs"], "spike": ["base", "peak", "periodMs", "durationMs"]]
        guard let names = known[kind] else { throw .invalid("pattern must be constant, step, ramp, sine or spike, got \(JSONText.quote(kind))") }
        let unknown = object.keys.filter { !names.contains($0) && $0 != "pattern" && $0 != "requestId" }.sorted()
        guard unknown.isEmpty else { throw .invalid("unknown field\(unknown.count > 1 ? "s" : "") \(unknown.joined(separator: ", ")) for pattern \(kind) (known: \(names.joined(separator: ", ")))") }
        func number(_ name: String, _ range: ClosedRange<Int>) throws(NodeError) -> Int {
            guard let field = object[name] else { throw .invalid("missing field \(name) for pattern \(kind)") }
            guard case .number(let number) = field, number == number.rounded(), let whole = Int(exactly: number), range.contains(whole) else {
                throw .invalid("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \(field.summary)")
            }
            return whole
        }
        let load = 0...maxMillicores
        let period = 1...maxPeriodMs
        let pattern: LoadPattern
        switch kind {
        case "constant": pattern = .constant(try number("millicores", load))
        case "step": pattern = .step(from: try number("from", load), to: try number("to", load), atMs: try number("atMs", 0...maxPeriodMs))
        case "ramp": pattern = .ramp(from: try number("from", load), to: try number("to", load), periodMs: try number("periodMs", period))
        case "sine": pattern = .sine(mean: try number("mean", load), amplitude: try number("amplitude", load), periodMs: try number("periodMs", period))
        default:
            let periodMs = try number("periodMs", period)
            pattern = .spike(base: try number("base", load), peak: try number("peak", load), periodMs: periodMs,
                             durationMs: try number("durationMs", 0...periodMs))
        }
        var requestID: String?
        if let field = object["requestId"] {
            guard case .string(let text) = field else { throw .invalid("requestId must be a non-empty string of at most 256 bytes, got \(field.summary)") }
            requestID = try NodeError.checkRequestID(text)
        }
        return (pattern, requestID)
    }
}

extension ByteWriter {
    mutating func write(_ pattern: LoadPattern) {
        func numbers(_ kind: UInt8, _ values: [Int]) {
            write(kind)
            for value in values { write(UInt64(bitPattern: Int64(value))) }
        }
        switch pattern {
        case .constant(let value): numbers(1, [value])
        case .step(let from, let to, let atMs): numbers(2, [from, to, atMs])
        case .ramp(let from, let to, let periodMs): numbers(3, [from, to, periodMs])
        case .sine(let mean, let amplitude, let periodMs): numbers(4, [mean, amplitude, periodMs])
        case .spike(let base, let peak, let periodMs, let durationMs): numbers(5, [base, peak, periodMs, durationMs])
        }
    }

    mutating func write(_ load: ServiceLoad) {
        write(load.pattern)
        write(UInt64(bitPattern: load.sinceMs))
    }
}

extension ByteReader {
    mutating func readLoadPattern() throws -> LoadPattern {
        let kind = try readByte()
        func number() throws -> Int { Int(Int64(bitPattern: try readUInt64())) }
        switch kind {
        case 1: return .constant(try number())
        case 2: return .step(from: try number(), to: try number(), atMs: try number())
        case 3: return .ramp(from: try number(), to: try number(), periodMs: try number())
        case 4: return .sine(mean: try number(), amplitude: try number(), periodMs: try number())
        case 5: return .spike(base: try number(), peak: try number(), periodMs: try number(), durationMs: try number())
        default: throw ClusterCommandCodec.Malformed(description: "unknown load pattern \(kind)")
        }
    }

    mutating func readServiceLoad() throws -> ServiceLoad {
        ServiceLoad(pattern: try readLoadPattern(), sinceMs: Int64(bitPattern: try readUInt64()))
    }
}

extension ServiceRecord {
    /// What one of its placed replicas uses at `nowMs` (no load set: no CPU, its memory request).
    public func replicaLoad(atMs nowMs: Int64) -> ContainerLoad {
        ContainerLoad(spec: spec, offered: load?.millicores(atMs: nowMs) ?? 0, running: placedCount)
    }
}

extension ClusterState {
    /// What the replicas of loaded services use on each node at `nowMs` (nodes with no loaded
    /// replica are left out).
    public func replicaLoads(atMs nowMs: Int64) -> [UInt64: ContainerLoad] {
        var loads: [UInt64: ContainerLoad] = [:]
        for id in loadedServiceIDs {
            guard let service = services[id] else { continue }
            let one = service.replicaLoad(atMs: nowMs)
            for (node, count) in service.placement {
                for _ in 0..<count { loads[node] = (loads[node] ?? .zero) + one }
            }
        }
        return loads
    }

    /// What the load model says the replicas on each node use now, in millicores.
    public func cpuInUse(atMs nowMs: Int64) -> [UInt64: Int] { replicaLoads(atMs: nowMs).mapValues(\.cpuMillicores) }
}
