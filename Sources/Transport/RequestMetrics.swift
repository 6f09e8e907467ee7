import Foundation

/// `http_request_duration_seconds`: one histogram per method, route pattern and status
/// class (`2xx`...), as a server's router observes them. The label values are bounded:
/// routes are the registered patterns (a path no route matches counts as `unmatched`),
/// methods outside the usual ones count as `other`.
public final class RequestMetrics: @unchecked Sendable {
    private struct Key: Hashable {
        var method: String
        var route: String
        var code: String
    }

    private static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    private let lock = AdaptiveLock()
    private var histograms: [Key: Histogram] = [:]

    public init() {}

    public func observe(method: String, route: String?, status: HTTPStatus, seconds: Double) {
        let key = Key(method: Self.methods.contains(method) ? method : "other", route: route ?? "unmatched", code: "\(status.rawValue / 100)xx")
        let histogram = lock.withLock { () -> Histogram in
            if let known = histograms[key] { return known }
            let made = Histogram()
            histograms[key] = made
            return made
        }
        histogram.observe(seconds)
    }

    /// Adds every series to `text`, with `labels` on each.
    public func write(into text: inout MetricsText, labels: [String: String] = [:]) {
        let all = lock.withLock { histograms.sorted { ($0.key.route, $0.key.method, $0.key.code) < ($1.key.route, $1.key.method, $1.key.code) } }
        for (key, histogram) in all {
            text.histogram("http_request_duration_seconds", "Seconds from a request's routing to its answer, by method, route pattern and status class.",
                           histogram.snapshot, labels: labels.merging(["method": key.method, "route": key.route, "code": key.code]) { $1 })
        }
    }
}
