import Foundation

/// Results filled in by several threads, each at its own position.
private final class ResultSlots<R>: @unchecked Sendable {
    var results: [R?]
    let lock = NSLock()
    init(count: Int) { results = Array(repeating: nil, count: count) }
}

/// Starts `body` on a thread of its own, counted in `group` until it returns (for loops that
/// block: clients, samplers, fault schedules).
func startThread(in group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
    group.enter()
    let thread = Thread {
        body()
        group.leave()
    }
    thread.stackSize = 512 * 1024
    thread.start()
}

/// Runs `body` for every element on its own thread and returns the results in order: for
/// a handful of blocking network calls that must overlap (GCD would run two at a time on
/// two cores).
func parallelMap<T: Sendable, R: Sendable>(_ items: [T], _ body: @escaping @Sendable (T) -> R) -> [R] {
    let slots = ResultSlots<R>(count: items.count)
    let group = DispatchGroup()
    for (position, item) in items.enumerated() {
        group.enter()
        let thread = Thread {
            let result = body(item)
            slots.lock.withLock { slots.results[position] = result }
            group.leave()
        }
        thread.stackSize = 512 * 1024
        thread.start()
    }
    group.wait()
    return slots.results.map { $0! }
}
