import Foundation
import CEpoll

/// Starts `body` on a new thread that carries `name` in the kernel too (`top -H`, `ps -L`,
/// /proc/PID/task/TID/comm, perf), cut to the kernel's 15 bytes. Foundation's `Thread.name`
/// names the thread only for Foundation. `stackSize` nil keeps Foundation's default.
public func startNamedThread(_ name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        _ = cepoll_name_thread(name)  // the kernel keeps the first 15 bytes
        body()
    }
    thread.name = name
    if let stackSize { thread.stackSize = stackSize }
    thread.start()
}
