import Foundation

/// A request handler that may block (forwarding a request and waiting for the answer): the
/// server runs it on a thread of its worker pool. It throws `HTTPError` to answer with an error.
public typealias HTTPHandler = @Sendable (HTTPRequest) throws -> HTTPResponse
/// A request handler that waits without a thread (for a commit, say): it suspends, and the
/// thread serves others meanwhile. It must not block.
public typealias AsyncHTTPHandler = @Sendable (HTTPRequest) async throws -> HTTPResponse

/// Maps method and path patterns (`/clusters/:id/stats`) to handlers.
///
/// Paths match segment by segment, so a trailing slash or a doubled slash does not matter
/// (seed 003's README posts to `/connections/`). A path that matches with another method
/// is answered 405 with `Allow`; no match at all is 404. Every error is JSON.
public struct Router: Sendable {
    private enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    fileprivate enum Handler: Sendable {
        case immediate(HTTPHandler)
        case blocking(HTTPHandler)
        case suspending(AsyncHTTPHandler)
        case replying(ReplyingHTTPHandler)
    }

    private struct Route: Sendable {
        var method: String
        var pattern: String
        var segments: [Segment]
        var handler: Handler
    }

    private var routes: [Route] = []

    /// Told of every answered request: the request (with its path parameters), the pattern
    /// of the route that answered (nil when none matched), the status and the handler's
    /// seconds. For request metrics.
    public var observer: Observer?
    public typealias Observer = @Sendable (_ request: HTTPRequest, _ route: String?, _ status: HTTPStatus, _ seconds: Double) -> Void

    public init() {}

    /// Every route's method and pattern (`/clusters/:id/stats`), in the order added.
    public var registered: [(method: String, pattern: String)] { routes.map { ($0.method, $0.pattern) } }

    /// Adds a route. `HEAD` is served by the `GET` route of the same path.
    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping HTTPHandler) {
        add(method, pattern, .blocking(handler))
    }

    /// Adds a route whose handler neither blocks nor waits (no lock held across I/O, no
    /// forwarding): it runs on the event loop that read the request, with no hand-off to
    /// another thread. A handler that may block must not be added this way: it would stall
    /// every connection on its loop.
    public mutating func addImmediate(_ method: String, _ pattern: String, _ handler: @escaping HTTPHandler) {
        add(method, pattern, .immediate(handler))
    }

    /// Adds a route whose handler suspends while it waits (see `AsyncHTTPHandler`).
    public mutating func addSuspending(_ method: String, _ pattern: String, _ handler: @escaping AsyncHTTPHandler) {
        add(method, pattern, .suspending(handler))
    }

    /// Adds a route whose handler answers later without a task (see `ReplyingHTTPHandler`).
    public mutating func addReplying(_ method: String, _ pattern: String, _ handler: @escaping ReplyingHTTPHandler) {
        add(method, pattern, .replying(handler))
    }

    private mutating func add(_ method: String, _ pattern: String, _ handler: Handler) {
        let parts = Self.decodedSegments(of: pattern)
        let segments = parts.map { part -> Segment in
            part.hasPrefix(":") ? .parameter(String(part.dropFirst())) : .literal(part)
        }
        routes.append(Route(method: method.uppercased(), pattern: "/" + parts.joined(separator: "/"), segments: segments, handler: handler))
    }

    /// What serving one request takes: an answer known at once (no route, wrong method), a
    /// handler that may block, or one that suspends. Matching costs no handler call, so the
    /// server can do it on its event loop.
    public struct Dispatch: Sendable {
        fileprivate enum Work: Sendable {
            case answered(HTTPResponse)
            /// The matching route's handler.
            case handler(Handler)
        }

        fileprivate let work: Work
        fileprivate let request: HTTPRequest
        fileprivate let route: String?
        fileprivate let observer: Observer?

        /// True when the handler may block a thread (run it on a thread that may wait).
        public var mayBlock: Bool {
            if case .handler(.blocking) = work { return true }
            return false
        }

        /// True for a replying handler (`Router.addReplying`), whose answer may come from any thread.
        var isReplying: Bool {
            if case .handler(.replying) = work { return true }
            return false
        }

        /// True when the answer is known at once or the handler neither blocks nor waits: the
        /// server answers on the thread that read the request (`respondNow`).
        public var isImmediate: Bool {
            switch work {
            case .answered, .handler(.immediate): return true
            case .handler(.blocking), .handler(.suspending), .handler(.replying): return false
            }
        }

        /// Runs the handler where the caller is; blocks for a suspending or replying one, whose
        /// later work runs on the handler executor's threads (tests, tools).
        public func respondNow() -> HTTPResponse {
            let started = monotonicSeconds()
            switch work {
            case .answered(let response): return finish(response, started: started)
            case .handler(.immediate(let handler)), .handler(.blocking(let handler)): return finish(Router.call(handler, request), started: started)
            case .handler(.suspending), .handler(.replying):
                let box = ResponseBox()
                let done = DispatchSemaphore(value: 0)
                respond(on: HandlerExecutor.shared) { response in
                    box.response = response
                    done.signal()
                }
                done.wait()
                return box.response!
            }
        }

        /// Runs a suspending or replying handler and delivers its answer; anything else is
        /// answered at once. The handler starts on the caller's thread and runs there until it
        /// first waits; it goes on on `runner` (the server passes the event loop that read the
        /// request).
        func respond(on runner: any ReplyRunner, _ completion: @escaping @Sendable (HTTPResponse) -> Void) {
            let started = monotonicSeconds()
            switch work {
            case .answered, .handler(.immediate), .handler(.blocking):
                completion(respondNow())
            case .handler(.suspending(let handler)):
                reply(on: runner, started: started, completion).suspend(handler)
            case .handler(.replying(let handler)):
                handler(request, reply(on: runner, started: started, completion))
            }
        }

        private func reply(on runner: any ReplyRunner, started: Double, _ completion: @escaping @Sendable (HTTPResponse) -> Void) -> HTTPReply {
            HTTPReply(request: request, route: route, observer: observer, started: started, runner: runner, completion: completion)
        }

        private func finish(_ response: HTTPResponse, started: Double) -> HTTPResponse {
            Router.finish(response, for: request, route: route, observer: observer, started: started)
        }
    }

    private final class ResponseBox: @unchecked Sendable {
        var response: HTTPResponse?
    }

    /// Answers a request: the matching handler's response, or a JSON error (indented too
    /// when `?pretty` asks, like every JSON answer). Blocks the caller while the handler runs.
    public func respond(to request: HTTPRequest) -> HTTPResponse { dispatch(request).respondNow() }

    /// Finds what answers `request` (see `Dispatch`).
    public func dispatch(_ request: HTTPRequest) -> Dispatch {
        let parts = Self.decodedSegments(of: request.path)
        var allowed: [String] = []
        let method = request.method == "HEAD" ? "GET" : request.method
        for route in routes {
            guard let parameters = Self.match(route.segments, parts) else { continue }
            guard route.method == method else {
                allowed.append(route.method)
                continue
            }
            var request = request
            request.pathParameters = parameters
            return Dispatch(work: .handler(route.handler), request: request, route: route.pattern, observer: observer)
        }
        if !allowed.isEmpty {
            let allow = Array(Set(allowed + (allowed.contains("GET") ? ["HEAD"] : []))).sorted().joined(separator: ", ")
            return Dispatch(work: .answered(.error(.methodNotAllowed, "method \(request.method) not allowed on \(request.path) (allowed: \(allow))",
                                                   headers: HTTPHeaders([("Allow", allow)]))), request: request, route: nil, observer: observer)
        }
        return Dispatch(work: .answered(.error(.notFound, "no route for \(request.method) \(request.path)")), request: request, route: nil, observer: observer)
    }

    private static func call(_ handler: HTTPHandler, _ request: HTTPRequest) -> HTTPResponse {
        do {
            return try handler(request)
        } catch {
            return response(for: error)
        }
    }

    static func call(_ handler: AsyncHTTPHandler, _ request: HTTPRequest) async -> HTTPResponse {
        do {
            return try await handler(request)
        } catch {
            return response(for: error)
        }
    }

    static func response(for error: any Error) -> HTTPResponse {
        if let error = error as? HTTPError { return error.response }
        if let error = error as? any HTTPResponseError { return error.httpError.response }
        return .error(.internalServerError, "internal error: \(error)")
    }

    /// A handler's answer as it leaves: an error indented when asked for, and the observer told.
    static func finish(_ response: HTTPResponse, for request: HTTPRequest, route: String?, observer: Observer?, started: Double) -> HTTPResponse {
        let response = prettyError(response, for: request)
        observer?(request, route, response.status, monotonicSeconds() - started)
        return response
    }

    private static func prettyError(_ response: HTTPResponse, for request: HTTPRequest) -> HTTPResponse {
        guard response.status.rawValue >= 400, request.wantsPrettyJSON, response.headers["content-type"]?.hasPrefix("application/json") == true,
              let value = try? JSONBody.decode(JSONValue.self, from: response.body), let pretty = try? JSONBody.encode(value, pretty: true)
        else { return response }
        var indented = response
        indented.body = pretty
        return indented
    }

    /// A path's non-empty segments, percent-decoded (a route's pattern has nothing to decode),
    /// gathered in one array (splitting, converting and decoding in three passes made three
    /// arrays per request).
    static func decodedSegments(of path: String) -> [String] {
        var parts: [String] = []
        parts.reserveCapacity(8)
        let utf8 = path.utf8
        var start = utf8.startIndex
        while start < utf8.endIndex {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
            if end > start { parts.append(percentDecode(path[start..<end], plusIsSpace: false)) }
            start = end < utf8.endIndex ? utf8.index(after: end) : end
        }
        return parts
    }

    private static func match(_ pattern: [Segment], _ parts: [String]) -> [String: String]? {
        guard pattern.count == parts.count else { return nil }
        var parameters: [String: String] = [:]
        for (segment, part) in zip(pattern, parts) {
            switch segment {
            case .literal(let literal): guard literal == part else { return nil }
            case .parameter(let name): parameters[name] = part
            }
        }
        return parameters
    }
}
