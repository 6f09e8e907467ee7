import Foundation
import Synchronization

/// A request handler that answers later without a task (`Router.addReplying`): it runs on the
/// event loop that read the request, must not block, and answers through `reply` exactly once,
/// from any thread (`HTTPReply.send`). Work it defers (its wait for a commit ends on another
/// thread) goes back to that loop with `HTTPReply.onLoop`; a case it cannot serve that way it
/// hands to a suspending handler (`HTTPReply.suspend`). An answer given on another thread
/// while the loop sleeps is written by that thread (`ServerConnection`), and `whereCheapest`
/// runs the work before it there too.
///
/// It saves the hot path what a task costs: creating, suspending, resuming and destroying one
/// per request (about 7% of a leader's CPU at 128 connections).
public typealias ReplyingHTTPHandler = @Sendable (_ request: HTTPRequest, _ reply: HTTPReply) -> Void

/// Where a replying handler's deferred work and suspending fallback run: the server's event
/// loop that read the request, or (outside a server) the handler executor's threads.
protocol ReplyRunner: TaskExecutor {
    /// Runs `work` later on this runner's thread(s), never inline.
    func execute(_ work: @escaping () -> Void)
    /// True on this runner's own thread.
    var isCurrent: Bool { get }
    /// True when handing this runner work would first have to wake its thread.
    var isAsleep: Bool { get }
}

extension EventLoop: ReplyRunner {}

extension HandlerExecutor: ReplyRunner {
    var isCurrent: Bool { false }
    var isAsleep: Bool { false }

    func execute(_ work: @escaping () -> Void) {
        // A reply's work is handed on once and runs once, on one of the pool's threads.
        nonisolated(unsafe) let work = work
        pool.run { work() }
    }
}

/// How a replying handler answers its request (see `ReplyingHTTPHandler`).
public final class HTTPReply: @unchecked Sendable {
    /// The request as routed (path parameters included).
    public let request: HTTPRequest
    private let route: String?
    private let observer: Router.Observer?
    private let started: Double
    private let runner: any ReplyRunner
    /// Takes the answer as it leaves (`Router.finish`): the server writes it.
    private let completion: @Sendable (HTTPResponse) -> Void
    private let isAnswered = Atomic<Bool>(false)

    init(request: HTTPRequest, route: String?, observer: Router.Observer?, started: Double, runner: any ReplyRunner,
         completion: @escaping @Sendable (HTTPResponse) -> Void) {
        self.request = request
        self.route = route
        self.observer = observer
        self.started = started
        self.runner = runner
        self.completion = completion
    }

    /// Answers the request. Only the first answer counts (a second is a handler's bug, ignored).
    public func send(_ response: HTTPResponse) {
        guard !isAnswered.exchange(true, ordering: .acquiringAndReleasing) else { return }
        completion(Router.finish(response, for: request, route: route, observer: observer, started: started))
    }

    /// Answers with the error's response, as a throwing handler's error would be.
    public func send(_ error: any Error) { send(Router.response(for: error)) }

    /// Runs `work` on the request's event loop: at once when called there (a commit applied
    /// by a round that loop runs is answered before the round sends the followers the new
    /// commit index), otherwise handed to the loop.
    public func onLoop(_ work: @escaping () -> Void) {
        if runner.isCurrent { work() } else { runner.execute(work) }
    }

    /// Runs `work` where it costs least: at once on the calling thread when that is the
    /// request's loop or when the loop sleeps (handing work to a sleeping loop costs its
    /// wake-up, tens of microseconds on a virtual machine, more than building and writing an
    /// answer: the server then writes the answer from this thread too); handed to the loop
    /// when it is awake (it takes the work within microseconds, and the caller, often a round
    /// answering a batch, goes on). `work` must be safe on any thread.
    public func whereCheapest(_ work: @escaping () -> Void) {
        if runner.isCurrent || runner.isAsleep { work() } else { runner.execute(work) }
    }

    /// Serves the request with a suspending handler (one task, started on the request's loop
    /// and run there until it first waits): for what the replying handler leaves to the
    /// slower path.
    public func suspend(_ handler: @escaping AsyncHTTPHandler) {
        let request = request
        onLoop { [self] in
            Task.immediate(executorPreference: runner) { [self] in
                send(await Router.call(handler, request))
            }
        }
    }
}
