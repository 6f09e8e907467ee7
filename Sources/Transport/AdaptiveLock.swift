#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation

/// A mutual-exclusion lock that spins a moment before it sleeps (glibc's adaptive mutex,
/// `PTHREAD_MUTEX_ADAPTIVE_NP`), for locks held a microsecond or two at a time by several
/// busy threads: an event loop that finds the state lock taken by the round thread waits a
/// few hundred nanoseconds on the CPU instead of a futex sleep and wake-up (two context
/// switches, and a system call for whoever unlocks). `NSLock` sleeps at once: under load a
/// node's leader slept on its locks about once every three requests.
///
/// Not recursive; unlocked by the thread that locked it.
public final class AdaptiveLock: NSLocking, @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        let status = pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
        precondition(status == 0, "pthread_mutex_init failed: \(status)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }
}
