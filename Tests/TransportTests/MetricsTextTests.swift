import Testing
@testable import Transport

@Suite("Metrics text and histograms")
struct MetricsTextTests {
    @Test func samplesOfOneFamilyStayTogetherWhateverTheOrderAdded() {
        var text = MetricsText()
        text.gauge("a", "A.", 1, labels: ["n": "1"])
        text.counter("b_total", "B.", 2)
        text.gauge("a", "A.", 3, labels: ["n": "2"])
        #expect(text.rendered == """
        # HELP a A.
        # TYPE a gauge
        a{n="1"} 1
        a{n="2"} 3
        # HELP b_total B.
        # TYPE b_total counter
        b_total 2

        """)
    }

    @Test func aHistogramRendersCumulativeBucketsSumAndCount() {
        let histogram = Histogram(bounds: [0.01, 0.1, 1])
        for seconds in [0.005, 0.05, 0.05, 0.5, 3.0] { histogram.observe(seconds) }
        var text = MetricsText()
        text.histogram("x_seconds", "X.", histogram.snapshot, labels: ["k": "v"])
        let lines = text.rendered.split(separator: "\n").map(String.init)
        #expect(lines.contains("# TYPE x_seconds histogram"))
        #expect(lines.contains(#"x_seconds_bucket{k="v",le="0.01"} 1"#))
        #expect(lines.contains(#"x_seconds_bucket{k="v",le="0.1"} 3"#))
        #expect(lines.contains(#"x_seconds_bucket{k="v",le="1"} 4"#))
        #expect(lines.contains(#"x_seconds_bucket{k="v",le="+Inf"} 5"#))
        #expect(lines.contains(#"x_seconds_sum{k="v"} 3.605"#))
        #expect(lines.contains(#"x_seconds_count{k="v"} 5"#))
    }

    @Test func quantilesInterpolateInsideTheirBucketAndIntervalsSubtract() throws {
        let histogram = Histogram(bounds: [0.01, 0.02, 0.04])
        for _ in 0..<10 { histogram.observe(0.005) }
        let first = histogram.snapshot
        #expect(first.quantile(0.5) == 0.005)  // half of the first bucket, from 0
        for _ in 0..<10 { histogram.observe(0.03) }
        let interval = histogram.snapshot.since(first)
        #expect(interval.count == 10)
        #expect(try #require(interval.quantile(0.5)) == 0.03)  // the middle of (0.02, 0.04]
        #expect(interval.quantile(1) == 0.04)
        #expect(Histogram(bounds: [1]).snapshot.quantile(0.5) == nil)
        // A restarted source (counts that went down) is taken whole.
        #expect(first.since(histogram.snapshot) == first)
    }
}
