@testable import ClusterNode
import Testing

/// The services table: a dictionary's answers (lookups, deletes, counts, equality) in ID
/// order, with value semantics (a snapshot's copy never sees later changes).
@Suite struct ServiceTableTests {
    static func record(_ id: Int, name: String = "web") -> ServiceRecord {
        ServiceRecord(id: id, spec: ServiceSpec(name: name, replicas: 1), placement: [:], pending: 1, pendingReason: nil,
                      index: UInt64(id), term: 1, updatedIndex: UInt64(id), requestID: "r\(id)")
    }

    @Test func answersLikeADictionaryInIDOrder() {
        var table = ServiceTable()
        var reference: [Int: ServiceRecord] = [:]
        // Across several chunks (1,024 slots each), inserted out of order, some deleted.
        for id in (1...3_000).reversed() where id % 7 != 0 {
            table[id] = Self.record(id)
            reference[id] = Self.record(id)
        }
        for id in stride(from: 5, through: 3_000, by: 5) {
            #expect(table.removeValue(forKey: id) == reference.removeValue(forKey: id))
        }
        table[12] = Self.record(12, name: "changed")
        reference[12] = Self.record(12, name: "changed")
        #expect(table.count == reference.count)
        #expect(table.values.map(\.id) == reference.keys.sorted())
        #expect(Array(table.keys) == reference.keys.sorted())
        for id in [-1, 0, 7, 12, 2_999, 3_001, 1 << 40] { #expect(table[id] == reference[id]) }
        #expect(table.last?.id == reference.keys.max())
        #expect(table.removeValue(forKey: 7) == nil)  // never there
    }

    @Test func aCopyKeepsWhatItHadAndEqualityIgnoresLayout() {
        var table = ServiceTable()
        for id in 1...2_100 { table[id] = Self.record(id) }
        let snapshot = table
        table[5] = nil
        table[2_101] = Self.record(2_101)
        #expect(snapshot.count == 2_100 && snapshot[5] != nil && snapshot[2_101] == nil)
        #expect(table.count == 2_100 && table[5] == nil)
        // Emptying a whole chunk releases it; the same services compare equal however laid out.
        var emptied = ServiceTable()
        for id in 1...3_000 { emptied[id] = Self.record(id) }
        for id in 1_024..<2_048 { emptied[id] = nil }
        var built = ServiceTable()
        for id in (1..<1_024).reversed() { built[id] = Self.record(id) }
        for id in 2_048...3_000 { built[id] = Self.record(id) }
        #expect(emptied == built)
        built[3_000] = Self.record(3_000, name: "other")
        #expect(emptied != built)
        for id in 1...3_000 { emptied[id] = nil }
        #expect(emptied.isEmpty && emptied.last == nil && emptied == ServiceTable())
    }
}
