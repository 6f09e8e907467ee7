import Foundation
import Testing
@testable import Transport

@Suite struct RandomIDTests {
    @Test func identifiersAreVersionFourUUIDsInUpperCase() throws {
        for _ in 0..<2_000 {
            let id = RandomID.uuidString()
            let bytes = Array(id.utf8)
            #expect(bytes.count == 36)
            for (at, byte) in bytes.enumerated() {
                if [8, 13, 18, 23].contains(at) {
                    #expect(byte == UInt8(ascii: "-"), "\(id): no dash at \(at)")
                } else {
                    #expect((UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte), "\(id): not upper-case hex at \(at)")
                }
            }
            #expect(bytes[14] == UInt8(ascii: "4"), "\(id): not version 4")
            #expect("89AB".utf8.contains(bytes[19]), "\(id): not the RFC 4122 variant")
            // Foundation reads it back as the same UUID.
            let parsed = try #require(UUID(uuidString: id))
            #expect(parsed.uuidString == id)
        }
    }

    @Test func identifiersDoNotRepeatAcrossBlocksAndThreads() {
        // 4 threads x 3,000: many refills of the 256-identifier block, taken concurrently.
        final class Collected: @unchecked Sendable {
            let lock = NSLock()
            var ids: [String] = []
        }
        let collected = Collected()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let mine = (0..<3_000).map { _ in RandomID.uuidString() }
            collected.lock.withLock { collected.ids += mine }
        }
        let all = collected.ids
        #expect(all.count == 12_000)
        #expect(Set(all).count == all.count)
        // Every position carries randomness: each hex digit outside the fixed ones takes many values.
        for at in [0, 7, 9, 15, 20, 35] {
            let values = Set(all.map { Array($0.utf8)[at] })
            #expect(values.count >= 14, "position \(at) took only \(values.count) values")
        }
    }
}
