import Foundation
import Testing
@testable import Transport

@Suite struct NamedThreadTests {
    /// The kernel's name of the calling thread (what `top -H` and perf show).
    private static func kernelName() -> String {
        (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
    }

    private final class Names: @unchecked Sendable {
        let lock = NSLock()
        var seen: [String] = []
        func add(_ name: String) { lock.withLock { seen.append(name) } }
        var all: [String] { lock.withLock { seen } }
    }

    @Test func aStartedThreadCarriesItsNameInTheKernelCutTo15Bytes() {
        let names = Names()
        startNamedThread("raft-rounds", stackSize: 256 << 10) { names.add(Self.kernelName()) }
        // Longer than the kernel's 15 bytes: the start is kept, not the whole name lost.
        startNamedThread("http-65535-12-extra") { names.add(Self.kernelName()) }
        let deadline = Date().addingTimeInterval(5)
        while names.all.count < 2, Date() < deadline { usleep(2_000) }
        #expect(Set(names.all) == ["raft-rounds", "http-65535-12-e"])
        #expect(Self.kernelName() != "raft-rounds", "the caller's own name changed")
    }
}
