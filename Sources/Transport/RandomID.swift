import CEpoll
import Glibc

/// Random identifiers in the form of a version-4 UUID ("E621E1F8-C36C-495A-93FC-0C247A3E6E5F"),
/// for the request keys a node makes up when a client sends none. Foundation's `UUID()` opens,
/// reads and closes /dev/urandom for every identifier: three system calls, about 5% of a
/// leader's CPU at 128 connections. Here the bytes come from the kernel's random source
/// (`getrandom`) 4 KiB at a time, 256 identifiers per call, as unpredictable as `UUID()`'s.
public enum RandomID {
    private static let pool = RandomPool()

    /// A new identifier: 122 random bits, upper-case hexadecimal like `UUID().uuidString`.
    public static func uuidString() -> String {
        var (high, low) = pool.next()
        high = (high & ~0xF000) | 0x4000                      // version 4
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // RFC 4122 variant
        return String(unsafeUninitializedCapacity: 36) { text in
            let digits: StaticString = "0123456789ABCDEF"
            var at = 0
            func put(_ value: UInt64, nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    text[at] = digits.utf8Start[Int((value >> UInt64(shift)) & 0xF)]
                    at += 1
                }
            }
            func dash() {
                text[at] = UInt8(ascii: "-")
                at += 1
            }
            put(high >> 32, nibbles: 8)
            dash()
            put(high >> 16, nibbles: 4)
            dash()
            put(high, nibbles: 4)
            dash()
            put(low >> 48, nibbles: 4)
            dash()
            put(low, nibbles: 12)
            return at
        }
    }
}

/// Random bytes drawn from the kernel a block at a time; each is handed out once.
private final class RandomPool: @unchecked Sendable {
    private let lock = AdaptiveLock()
    private var block = [UInt64](repeating: 0, count: 512)
    private var used = 512

    /// 128 random bits.
    func next() -> (UInt64, UInt64) {
        lock.lock()
        defer { lock.unlock() }
        if used + 2 > block.count {
            refill()
            used = 0
        }
        defer { used += 2 }
        return (block[used], block[used + 1])
    }

    private func refill() {
        block.withUnsafeMutableBytes { bytes in
            var filled = 0
            while filled < bytes.count {
                let got = getrandom(bytes.baseAddress! + filled, bytes.count - filled, 0)
                if got > 0 {
                    filled += got
                } else if got < 0, errno != EINTR {
                    // getrandom fails only on kernels older than 3.17 or a bad buffer: fall back
                    // to the standard library's generator (one system call per eight bytes).
                    var generator = SystemRandomNumberGenerator()
                    while filled + 8 <= bytes.count {
                        bytes.storeBytes(of: generator.next(), toByteOffset: filled, as: UInt64.self)
                        filled += 8
                    }
                }
            }
        }
    }
}
