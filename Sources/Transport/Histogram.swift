import Foundation

/// Counts observations (seconds) into fixed buckets, as a Prometheus histogram does: thread
/// safe, constant memory, and a snapshot that can be subtracted from a later one to see one
/// interval's distribution.
public final class Histogram: @unchecked Sendable {
    /// Upper bounds in seconds from half a millisecond to ten seconds: the range of a
    /// commit, an fsync, an election or an HTTP request on a laptop or a loaded CI machine.
    public static let latencyBounds: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]

    private let lock = AdaptiveLock()
    /// Read without the lock: never changes.
    private let bounds: [Double]
    private var snapshotValue: HistogramSnapshot

    public init(bounds: [Double] = Histogram.latencyBounds) {
        precondition(!bounds.isEmpty && zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "bounds must rise")
        self.bounds = bounds
        snapshotValue = HistogramSnapshot(bounds: bounds, counts: Array(repeating: 0, count: bounds.count + 1), sum: 0)
    }

    public func observe(_ seconds: Double) {
        let value = seconds.isFinite ? max(0, seconds) : 0
        let bucket = bounds.firstIndex { value <= $0 } ?? bounds.count
        lock.withLock {
            snapshotValue.counts[bucket] += 1
            snapshotValue.sum += value
        }
    }

    public var snapshot: HistogramSnapshot { lock.withLock { snapshotValue } }
}

/// A histogram's counts at one moment. `counts[i]` holds observations above `bounds[i-1]`
/// and at most `bounds[i]`; the last holds those above every bound.
public struct HistogramSnapshot: Codable, Sendable, Equatable {
    public var bounds: [Double]
    public var counts: [UInt64]
    public var sum: Double

    public init(bounds: [Double], counts: [UInt64], sum: Double) {
        self.bounds = bounds
        self.counts = counts
        self.sum = sum
    }

    public var count: UInt64 { counts.reduce(0, +) }

    /// What was observed since `earlier` (a snapshot of the same histogram), or all of this
    /// one when `earlier` is of another shape or from before a restart.
    public func since(_ earlier: HistogramSnapshot?) -> HistogramSnapshot {
        guard let earlier, earlier.bounds == bounds, zip(counts, earlier.counts).allSatisfy({ $0 >= $1 }) else { return self }
        return HistogramSnapshot(bounds: bounds, counts: zip(counts, earlier.counts).map { $0 - $1 }, sum: max(0, sum - earlier.sum))
    }

    /// The `q` quantile (0...1) estimated by linear interpolation inside its bucket, as
    /// Prometheus' `histogram_quantile` does; nil when nothing was observed. An estimate
    /// in the open last bucket is its lower bound.
    public func quantile(_ q: Double) -> Double? {
        let total = count
        guard total > 0 else { return nil }
        let rank = min(max(q, 0), 1) * Double(total)
        var below: UInt64 = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            if Double(below + bucketCount) >= rank {
                guard index < bounds.count else { return bounds.last }
                let lower = index == 0 ? 0 : bounds[index - 1]
                let fraction = (rank - Double(below)) / Double(bucketCount)
                return lower + (bounds[index] - lower) * max(0, fraction)
            }
            below += bucketCount
        }
        return bounds.last
    }
}
