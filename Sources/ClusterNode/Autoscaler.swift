import Foundation
import Raft

/// Seed 002's autoscaler, done right: a PID controller on the error between a service's
/// average CPU use and its target, whose output is the replica count.
///
///     error      e  = average CPU % − target %              (positive: too busy)
///     integral   I += e × dt   (dt: real seconds since the last step; not integrated while
///                               the output is held at a bound in the error's direction)
///     derivative D  = (e − previous e) / dt
///     output     u  = minReplicas + kp·e + ki·I + kd·D
///     replicas      = u rounded to the nearest whole number, clamped to [min, max]
///
/// The integral carries the replicas the load needs once the error is 0; when the
/// autoscaler is set, it starts where the service's replica count already is (no jump).
/// A change of replica count is followed by a cool-down during which the count is held.
/// Every step is a committed entry with its reason (the figures and the three terms), and
/// the controller's memory (integral, previous error, time) is part of the replicated
/// state: a new leader continues from the last committed step.
public struct AutoscalerSpec: Codable, Sendable, Equatable {
    /// Target average CPU use, in percent of the replicas' CPU requests.
    public var cpuTarget: Double
    public var kp: Double
    public var ki: Double
    public var kd: Double
    public var minReplicas: Int
    public var maxReplicas: Int
    /// Milliseconds between steps.
    public var intervalMs: Int
    /// Milliseconds the count is held after a change.
    public var cooldownMs: Int

    /// Defaults tuned on the load model (see the README): a step from 2 to 20 replicas' worth
    /// of load reaches the band within about 8 intervals without overshoot.
    public init(cpuTarget: Double, kp: Double = 0.01, ki: Double = 0.03, kd: Double = 0, minReplicas: Int = 1,
                maxReplicas: Int = 20, intervalMs: Int = 1_000, cooldownMs: Int? = nil) {
        self.cpuTarget = cpuTarget
        self.kp = kp
        self.ki = ki
        self.kd = kd
        self.minReplicas = minReplicas
        self.maxReplicas = maxReplicas
        self.intervalMs = intervalMs
        self.cooldownMs = cooldownMs ?? 2 * intervalMs
    }
}

/// One step of the controller: what it saw, its three terms, and what it decided.
public struct AutoscalerDecision: Codable, Sendable, Equatable {
    public var atMs: Int64
    public var averageCPU: Double
    public var error: Double
    public var proportional: Double
    public var integralTerm: Double
    public var derivative: Double
    /// The integral after this step (the controller's memory).
    public var integral: Double
    public var output: Double
    public var fromReplicas: Int
    public var toReplicas: Int
    public var reason: String
}

/// A service's autoscaler in the replicated state: its settings, its memory, its recent steps.
public struct AutoscalerState: Codable, Sendable, Equatable {
    public var spec: AutoscalerSpec
    public var integral: Double
    public var lastError: Double?
    public var lastAtMs: Int64?
    public var lastChangeAtMs: Int64?
    /// The latest steps, oldest first (at most `maxDecisions`).
    public var decisions: [AutoscalerDecision] = []
    public static let maxDecisions = 20

    /// A new autoscaler for a service now at `replicas`: the integral starts where the
    /// count already is, so the first step does not jump to `minReplicas`.
    public init(spec: AutoscalerSpec, replicas: Int) {
        self.spec = spec
        self.integral = spec.ki > 0 ? Double(replicas - spec.minReplicas) / spec.ki : 0
    }

    /// The controller's next step at `nowMs`, seeing `averageCPU` over `replicas`. Pure: the
    /// leader computes it and the entry carries it, so every node applies the same decision.
    public func step(averageCPU: Double, replicas: Int, nowMs: Int64) -> AutoscalerDecision {
        let dt = lastAtMs.map { max(0.001, Double(nowMs - $0) / 1_000) } ?? Double(spec.intervalMs) / 1_000
        let error = averageCPU - spec.cpuTarget
        let derivative = lastError.map { (error - $0) / dt } ?? 0
        let lower = Double(spec.minReplicas)
        let upper = Double(spec.maxReplicas)
        func output(_ integral: Double) -> Double {
            lower + spec.kp * error + spec.ki * integral + spec.kd * derivative
        }
        var integral = integral + error * dt
        // Anti-windup: no integrating further into a bound the output is already held at.
        let held = output(integral)
        if (held > upper && error > 0) || (held < lower && error < 0) { integral = self.integral }
        let raw = output(integral)
        var desired = min(spec.maxReplicas, max(spec.minReplicas, Int(raw.rounded())))
        var reason: String
        if desired == replicas {
            reason = "holding: output \(Self.format(raw)) rounds to the current \(replicas)"
        } else if let changed = lastChangeAtMs, nowMs - changed < Int64(spec.cooldownMs) {
            reason = "cooling down: output \(Self.format(raw)) asks for \(desired), but the last change was \(nowMs - changed) ms ago"
            desired = replicas
        } else {
            reason = "average CPU \(Self.format(averageCPU))% against a target of \(Self.format(spec.cpuTarget))%: \(replicas) -> \(desired)"
        }
        if raw > upper + 0.5 || raw < lower - 0.5 { reason += " (held at the bound)" }
        return AutoscalerDecision(atMs: nowMs, averageCPU: averageCPU, error: error, proportional: spec.kp * error,
                                  integralTerm: spec.ki * integral, derivative: spec.kd * derivative, integral: integral,
                                  output: raw, fromReplicas: replicas, toReplicas: desired, reason: reason)
    }

    /// New settings for a running controller: its memory and history stay, and the integral is
    /// rescaled so that the integral term (ki × integral) is what it was (or, when ki was 0,
    /// what holds the current count): changing ki moves nothing by itself (a bumpless change).
    public mutating func change(to newSpec: AutoscalerSpec, replicas: Int) {
        if newSpec.ki > 0 {
            integral = spec.ki > 0 ? integral * spec.ki / newSpec.ki : Double(replicas - newSpec.minReplicas) / newSpec.ki
        }
        spec = newSpec
    }

    /// This state after `decision` was committed.
    public mutating func record(_ decision: AutoscalerDecision) {
        integral = decision.integral
        lastError = decision.error
        lastAtMs = decision.atMs
        if decision.toReplicas != decision.fromReplicas { lastChangeAtMs = decision.atMs }
        decisions.append(decision)
        if decisions.count > Self.maxDecisions { decisions.removeFirst(decisions.count - Self.maxDecisions) }
    }

    static func format(_ value: Double) -> String { String(format: "%.1f", value) }

    /// The average CPU use of a service's replicas, in percent of their request, under its load now.
    public static func averageCPU(of service: ServiceRecord, nowMs: Int64) -> Double {
        guard let load = service.load else { return 0 }
        let offered = load.millicores(atMs: nowMs)
        return ContainerLoad(spec: service.spec, offered: offered, running: max(1, service.placedCount)).cpuPercent
    }
}

extension ByteWriter {
    mutating func write(optional spec: AutoscalerSpec?) {
        guard let spec else { return write(UInt8(0)) }
        write(UInt8(1))
        for value in [spec.cpuTarget, spec.kp, spec.ki, spec.kd] { write(value.bitPattern) }
        for value in [spec.minReplicas, spec.maxReplicas, spec.intervalMs, spec.cooldownMs] { write(UInt64(value)) }
    }

    mutating func write(_ decision: AutoscalerDecision) {
        write(UInt64(bitPattern: decision.atMs))
        for value in [decision.averageCPU, decision.error, decision.proportional, decision.integralTerm, decision.derivative,
                      decision.integral, decision.output] { write(value.bitPattern) }
        write(UInt64(decision.fromReplicas))
        write(UInt64(decision.toReplicas))
        write(string: decision.reason)
    }

    mutating func write(optional state: AutoscalerState?) {
        guard let state else { return write(UInt8(0)) }
        write(optional: state.spec)
        write(state.integral.bitPattern)
        write(UInt8(state.lastError == nil ? 0 : 1))
        write((state.lastError ?? 0).bitPattern)
        for time in [state.lastAtMs, state.lastChangeAtMs] {
            write(UInt8(time == nil ? 0 : 1))
            write(UInt64(bitPattern: time ?? 0))
        }
        write(UInt32(state.decisions.count))
        for decision in state.decisions { write(decision) }
    }
}

extension ByteReader {
    mutating func readAutoscalerSpec() throws -> AutoscalerSpec? {
        guard try readByte() == 1 else { return nil }
        let doubles = try (0..<4).map { _ in Double(bitPattern: try readUInt64()) }
        let ints = try (0..<4).map { _ in Int(try readUInt64()) }
        return AutoscalerSpec(cpuTarget: doubles[0], kp: doubles[1], ki: doubles[2], kd: doubles[3], minReplicas: ints[0],
                              maxReplicas: ints[1], intervalMs: ints[2], cooldownMs: ints[3])
    }

    mutating func readAutoscalerDecision() throws -> AutoscalerDecision {
        let atMs = Int64(bitPattern: try readUInt64())
        let values = try (0..<7).map { _ in Double(bitPattern: try readUInt64()) }
        return AutoscalerDecision(atMs: atMs, averageCPU: values[0], error: values[1], proportional: values[2], integralTerm: values[3],
                                  derivative: values[4], integral: values[5], output: values[6], fromReplicas: Int(try readUInt64()),
                                  toReplicas: Int(try readUInt64()), reason: try readString())
    }

    mutating func readAutoscalerState(limit: Int) throws -> AutoscalerState? {
        guard let spec = try readAutoscalerSpec() else { return nil }
        var state = AutoscalerState(spec: spec, replicas: spec.minReplicas)
        state.integral = Double(bitPattern: try readUInt64())
        let hasError = try readByte() == 1
        let lastError = Double(bitPattern: try readUInt64())
        state.lastError = hasError ? lastError : nil
        var times: [Int64?] = []
        for _ in 0..<2 {
            let present = try readByte() == 1
            let time = Int64(bitPattern: try readUInt64())
            times.append(present ? time : nil)
        }
        (state.lastAtMs, state.lastChangeAtMs) = (times[0], times[1])
        for _ in 0..<(try readCount(limit: limit)) { state.decisions.append(try readAutoscalerDecision()) }
        return state
    }
}
