import Foundation
import Transport

/// The body of `PUT` and `PATCH /services/:sid/autoscaler`. On `PUT` only `cpuTarget` is
/// required (the rest take `AutoscalerSpec`'s defaults); on `PATCH` every field is optional
/// and a field left out keeps its value (seed 002 set it to 0).
struct AutoscalerRequest: Decodable {
    var cpuTarget: Double?
    var kp: Double?
    var ki: Double?
    var kd: Double?
    var minReplicas: Int?
    var maxReplicas: Int?
    var intervalMs: Int?
    var cooldownMs: Int?
    var requestId: String?

    /// The settings this request asks for: over `current` (PATCH) or over the defaults (PUT).
    static func spec(from body: [UInt8], over current: AutoscalerSpec?) throws(NodeError) -> (spec: AutoscalerSpec, requestID: String?) {
        let request: AutoscalerRequest
        do {
            request = try JSONBody.decodeStrictly(AutoscalerRequest.self, from: body)
        } catch {
            throw .invalid(error.message)
        }
        guard let target = request.cpuTarget ?? current?.cpuTarget else { throw .invalid("missing field cpuTarget (percent of the replicas' CPU requests)") }
        let base = current ?? AutoscalerSpec(cpuTarget: target)
        let intervalMs = request.intervalMs ?? base.intervalMs
        let spec = AutoscalerSpec(cpuTarget: target, kp: request.kp ?? base.kp, ki: request.ki ?? base.ki, kd: request.kd ?? base.kd,
                                  minReplicas: request.minReplicas ?? base.minReplicas, maxReplicas: request.maxReplicas ?? base.maxReplicas,
                                  intervalMs: intervalMs, cooldownMs: request.cooldownMs ?? (current?.cooldownMs ?? 2 * intervalMs))
        try validate(spec)
        return (spec, try NodeError.checkRequestID(request.requestId))
    }

    static func validate(_ spec: AutoscalerSpec) throws(NodeError) {
        guard spec.cpuTarget >= 1, spec.cpuTarget <= 100 else { throw .invalid("cpuTarget must be a percentage from 1 to 100, got \(spec.cpuTarget)") }
        for (name, value) in [("kp", spec.kp), ("ki", spec.ki), ("kd", spec.kd)] where !(value >= 0 && value <= 1_000) {
            throw .invalid("\(name) must be a number from 0 to 1000, got \(value)")
        }
        guard spec.minReplicas >= 1, spec.minReplicas <= ServiceRequest.maxReplicas else {
            throw .invalid("minReplicas must be a whole number from 1 to \(ServiceRequest.maxReplicas), got \(spec.minReplicas)")
        }
        guard spec.maxReplicas >= spec.minReplicas, spec.maxReplicas <= ServiceRequest.maxReplicas else {
            throw .invalid("maxReplicas must be a whole number from minReplicas (\(spec.minReplicas)) to \(ServiceRequest.maxReplicas), got \(spec.maxReplicas)")
        }
        guard spec.intervalMs >= 100, spec.intervalMs <= 3_600_000 else { throw .invalid("intervalMs must be from 100 to 3600000, got \(spec.intervalMs)") }
        guard spec.cooldownMs >= 0, spec.cooldownMs <= 3_600_000 else { throw .invalid("cooldownMs must be from 0 to 3600000, got \(spec.cooldownMs)") }
    }
}

/// `GET /services/:sid/autoscaler`: seed 002's fields (snake case, as it wrote them) and
/// this project's own: the settings, the controller's memory and its latest steps.
public struct AutoscalerView: Codable, Sendable {
    public struct Constants: Codable, Sendable {
        public var kp: Double
        public var kd: Double
        public var ki: Double
    }

    public var status: String
    public var image: String?
    public var cpu_target: Double
    public var constants: Constants
    public var error: Double
    public var avg_cpu_usage: Double
    public var containers: Int
    public var cpu_usage: [Double]
    public var settings: AutoscalerSpec
    public var integral: Double
    public var decisions: [AutoscalerDecision]

    public init(service: ServiceRecord, autoscaler: AutoscalerState, nowMs: Int64) {
        let average = AutoscalerState.averageCPU(of: service, nowMs: nowMs)
        status = autoscaler.decisions.last.map { last in
            let asked = min(autoscaler.spec.maxReplicas, max(autoscaler.spec.minReplicas, Int(last.output.rounded())))
            if asked != last.toReplicas { return "cooling down" }  // the controller asks for a change it may not make yet
            return last.toReplicas != last.fromReplicas ? "scaling" : "stable"
        } ?? "starting"
        image = service.spec.image
        cpu_target = autoscaler.spec.cpuTarget
        constants = Constants(kp: autoscaler.spec.kp, kd: autoscaler.spec.kd, ki: autoscaler.spec.ki)
        error = average - autoscaler.spec.cpuTarget
        avg_cpu_usage = average
        containers = service.placedCount
        cpu_usage = Array(repeating: service.replicaLoad(atMs: nowMs).cpuPercent, count: service.placedCount)
        settings = autoscaler.spec
        integral = autoscaler.integral
        decisions = autoscaler.decisions
    }
}
