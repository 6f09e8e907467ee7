#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import CEpoll
import Foundation
import Synchronization

/// One thread waiting in `epoll_wait` for the descriptors registered with it, its timers and
/// the tasks other threads hand it. Everything registered runs on that thread, one thing at
/// a time, so what a handler touches needs no lock of its own.
///
/// It is also a task executor: a task that prefers it runs its jobs on the loop's thread
/// (the server's suspending handlers do, so a request's answer is written where its job ends).
///
/// Descriptors are registered under a token of the loop's own (never reused), so an event
/// still in flight for a descriptor that was closed, and whose number a new connection took,
/// reaches no one.
final class EventLoop: @unchecked Sendable {
    typealias Handler = (_ events: UInt32) -> Void

    let name: String
    private let epoll: Int32
    /// An eventfd that `execute` writes to wake the loop.
    private let wakeDescriptor: Int32
    private let lock = AdaptiveLock()
    /// What other threads hand the loop: a closure, or a job of a task that prefers the loop
    /// as its executor (held as it is: wrapping each job in a closure allocated per job).
    private enum Work {
        case closure(() -> Void)
        case job(UnownedJob)
    }
    /// Work from other threads (guarded by `lock`), and whether a wake-up is already on its way.
    private var tasks: [Work] = []
    /// The batch being run: the loop thread swaps it with `tasks` (under `lock`), runs it and
    /// empties it for the next swap, so that taking a batch allocates nothing (copying `tasks`
    /// out and emptying it in place allocated a new buffer for `tasks` each time).
    private var runningTasks: [Work] = []
    private var isWakePending = false
    /// The loop handed itself work while handling an event (loop thread only).
    private var isOwnWorkPending = false
    private var isStopRequested = false
    private let finished = DispatchSemaphore(value: 0)
    /// The loop's thread, once it runs.
    private var thread: pthread_t?
    /// Times `epoll_wait` returned (tests check that a loop sleeps when it has nothing to do).
    private let wakeups = Atomic<Int>(0)
    var wakeupCount: Int { wakeups.load(ordering: .relaxed) }
    /// Looks for events without sleeping while busy (`BriefSpin`): an idle loop makes none.
    private let polls = Atomic<Int>(0)
    var pollCount: Int { polls.load(ordering: .relaxed) }
    /// The loop's thread sleeps in `epoll_wait` (set just before, cleared just after).
    private let sleeping = Atomic<Bool>(false)
    /// True while the loop's thread sleeps waiting for events: handing it work costs a
    /// wake-up, which on this kind of machine takes tens of microseconds.
    var isAsleep: Bool { sleeping.load(ordering: .relaxed) }

    // The loop thread's own state.
    /// Where connections read into (each copies out at once).
    var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var handlers: [UInt64: Handler] = [:]
    private var nextToken: UInt64 = 1
    private var timers = TimerHeap()
    private var busy = BusyTracker()

    static let wakeToken: UInt64 = 0
    /// The largest batch buffer kept for the next (a burst's larger one is let go).
    static let keptBatchCapacity = 4_096

    init(name: String) throws(SocketError) {
        self.name = name
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw SocketError(operation: "epoll_create1", code: errno) }
        wakeDescriptor = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeDescriptor >= 0 else {
            let code = errno
            close(epoll)
            throw SocketError(operation: "eventfd", code: code)
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.wakeToken
        epoll_ctl(epoll, EPOLL_CTL_ADD, wakeDescriptor, &event)
    }

    deinit {
        close(wakeDescriptor)
        close(epoll)
    }

    /// Starts the loop's thread.
    func start() {
        startNamedThread(name, stackSize: 1 << 20) { [self] in run() }
    }

    /// True on the loop's own thread.
    var isCurrent: Bool { lock.withLock { isOwnThread } }

    /// `isCurrent`, with `lock` held.
    private var isOwnThread: Bool { thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }

    /// Runs `task` on the loop's thread, after the tasks handed over before it. From the loop's
    /// own thread no wake-up is needed: the loop runs such tasks before it waits again.
    func execute(_ task: @escaping () -> Void) { hand(.closure(task)) }

    /// Queues `work` for the loop's thread, waking it unless a wake-up is on its way or this
    /// is the loop's thread.
    private func hand(_ work: Work) {
        let mustWake = lock.withLock { () -> Bool in
            tasks.append(work)
            if isOwnThread {
                isOwnWorkPending = true
                return false
            }
            guard !isWakePending else { return false }
            isWakePending = true
            return true
        }
        if mustWake {
            var one: UInt64 = 1
            _ = write(wakeDescriptor, &one, 8)
        }
    }

    /// Ends the loop once the tasks handed over so far have run, and waits for its thread.
    func stop() {
        execute { [self] in lock.withLock { isStopRequested = true } }
        finished.wait()
    }

    // MARK: On the loop's thread only

    /// Watches `descriptor` for `events` (EPOLLIN, EPOLLOUT ...); returns the token to change
    /// or end the watch with.
    func register(_ descriptor: Int32, events: UInt32, handler: @escaping Handler) -> UInt64 {
        let token = nextToken
        nextToken += 1
        handlers[token] = handler
        var event = epoll_event()
        event.events = events
        event.data.u64 = token
        epoll_ctl(epoll, EPOLL_CTL_ADD, descriptor, &event)
        return token
    }

    func modify(_ descriptor: Int32, token: UInt64, events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = token
        epoll_ctl(epoll, EPOLL_CTL_MOD, descriptor, &event)
    }

    /// Ends the watch (before the descriptor is closed).
    func unregister(_ descriptor: Int32, token: UInt64) {
        handlers[token] = nil
        var event = epoll_event()
        epoll_ctl(epoll, EPOLL_CTL_DEL, descriptor, &event)
    }

    /// Runs `action` once the monotonic clock reaches `deadline` (or soon after).
    func schedule(at deadline: Double, _ action: @escaping () -> Void) {
        timers.push(deadline, action)
    }

    /// Runs the work handed to the loop so far (on the loop's thread).
    private func runHandedWork() {
        isOwnWorkPending = false
        lock.withLock {
            swap(&tasks, &runningTasks)
            isWakePending = false
        }
        for work in runningTasks {
            switch work {
            case .closure(let task): task()
            case .job(let job): job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        runningTasks.removeAll(keepingCapacity: runningTasks.capacity <= Self.keptBatchCapacity)
    }

    private func run() {
        lock.withLock { thread = pthread_self() }
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while true {
            var timeout: Int32 = -1
            if let next = timers.earliest {
                timeout = Int32(min(max(0, (next - monotonicSeconds()) * 1_000).rounded(.up), 60_000))
            }
            if lock.withLock({ !tasks.isEmpty }) { timeout = 0 }  // handed over by the loop's own tasks
            var count: Int32 = 0
            // A busy loop polls a moment before it sleeps (`BriefSpin`).
            if timeout != 0, busy.isBusy(at: monotonicSeconds()) {
                _ = BriefSpin.poll {
                    polls.add(1, ordering: .relaxed)
                    count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), 0) }
                    return count != 0
                }
            }
            if count == 0 {
                if timeout != 0 { sleeping.store(true, ordering: .relaxed) }
                count = events.withUnsafeMutableBufferPointer { epoll_wait(epoll, $0.baseAddress, Int32($0.count), timeout) }
                if timeout != 0 { sleeping.store(false, ordering: .relaxed) }
            }
            if count > 0 { busy.noteWork(at: monotonicSeconds()) }
            wakeups.add(1, ordering: .relaxed)
            if count > 0 {
                for index in 0..<Int(count) {
                    let token = events[index].data.u64
                    if token == Self.wakeToken {
                        var value: UInt64 = 0
                        _ = read(wakeDescriptor, &value, 8)
                        continue
                    }
                    handlers[token]?(events[index].events)
                    // Work a handler handed its own loop (a resumed task's job, a reply) runs
                    // before the next event's handler, not after the whole batch: an answer
                    // made ready goes out before the loop reads the next connection.
                    if isOwnWorkPending { runHandedWork() }
                }
            }
            if !timers.isEmpty {
                let now = monotonicSeconds()
                while let action = timers.popDue(now: now) { action() }
            }
            runHandedWork()
            if lock.withLock({ isStopRequested }) {
                handlers.removeAll()
                timers = TimerHeap()
                finished.signal()
                return
            }
        }
    }
}

/// Deadlines and their actions, earliest first (a binary heap; ties in the order scheduled).
struct TimerHeap {
    private var entries: [(deadline: Double, order: UInt64, action: () -> Void)] = []
    private var scheduled: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var earliest: Double? { entries.first?.deadline }

    mutating func push(_ deadline: Double, _ action: @escaping () -> Void) {
        scheduled += 1
        entries.append((deadline, scheduled, action))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(child, parent) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    /// The earliest action if its deadline is at or before `now`, taken off the heap.
    mutating func popDue(now: Double) -> (() -> Void)? {
        guard let first = entries.first, first.deadline <= now else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < entries.count, precedes(left, smallest) { smallest = left }
                if right < entries.count, precedes(right, smallest) { smallest = right }
                guard smallest != parent else { break }
                entries.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first.action
    }

    private func precedes(_ a: Int, _ b: Int) -> Bool {
        entries[a].deadline < entries[b].deadline || (entries[a].deadline == entries[b].deadline && entries[a].order < entries[b].order)
    }
}

extension EventLoop: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        hand(.job(UnownedJob(job)))
    }
}
