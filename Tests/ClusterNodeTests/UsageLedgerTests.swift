@testable import ClusterNode
import Testing

/// The ledger's running sum is always the sum of its deltas, whatever is set, replaced and
/// removed (placement trusts it instead of summing every change in flight).
@Suite struct UsageLedgerTests {
    @Test func theTotalIsAlwaysTheSumOfTheDeltas() {
        var ledger = UsageLedger<UInt64>()
        var generator = SystemRandomNumberGenerator()
        for step in 0..<2_000 {
            let key = UInt64.random(in: 0..<40, using: &generator)
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<6:
                var delta: [UInt64: NodeResources] = [:]
                for node in UInt64(8001)...UInt64.random(in: 8001...8004, using: &generator) {
                    let count = Int.random(in: -3...3, using: &generator)
                    delta[node] = NodeResources(slots: 1, cpuMillicores: 250, memoryMB: 64) * count
                }
                ledger[key] = delta
            case 6..<9:
                ledger[key] = nil
            default:
                let bound = UInt64.random(in: 0..<40, using: &generator)
                ledger.removeAll { $0 >= bound }
                #expect(ledger.deltas.keys.allSatisfy { $0 < bound })
            }
            var expected: [UInt64: NodeResources] = [:]
            for delta in ledger.deltas.values {
                for (node, resources) in delta { expected[node] = (expected[node] ?? .zero) + resources }
            }
            expected = expected.filter { $0.value != .zero }
            #expect(ledger.total == expected, "after step \(step)")
            if ledger.total != expected { return }
        }
    }
}
