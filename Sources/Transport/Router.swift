/// A request handler. It runs on the connection's own thread, so it may block (for
/// example while waiting for a commit); it throws `HTTPError` to answer with an error.
public typealias HTTPHandler = @Sendable (HTTPRequest) throws -> HTTPResponse

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

    private struct Route: Sendable {
        var method: String
        var pattern: String
        var segments: [Segment]
        var handler: HTTPHandler
    }

    private var routes: [Route] = []

    /// Told of every answered request: the request (with its path parameters), the pattern
    /// of the route that answered (nil when none matched), the status and the handler's
    /// seconds. For request metrics.
    public var observer: (@Sendable (_ request: HTTPRequest, _ route: String?, _ status: HTTPStatus, _ seconds: Double) -> Void)?

    public init() {}

    /// Every route's method and pattern (`/clusters/:id/stats`), in the order added.
    public var registered: [(method: String, pattern: String)] { routes.map { ($0.method, $0.pattern) } }

    /// Adds a route. `HEAD` is served by the `GET` route of the same path.
    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping HTTPHandler) {
        let parts = Self.segments(of: pattern)
        let segments = parts.map { part -> Segment in
            part.hasPrefix(":") ? .parameter(String(part.dropFirst())) : .literal(part)
        }
        routes.append(Route(method: method.uppercased(), pattern: "/" + parts.joined(separator: "/"), segments: segments, handler: handler))
    }

    /// Answers a request: the matching handler's response, or a JSON error (indented too
    /// when `?pretty` asks, like every JSON answer).
    public func respond(to request: HTTPRequest) -> HTTPResponse {
        guard let observer else { return Self.prettyError(answer(request).response, for: request) }
        let started = monotonicSeconds()
        var (response, route, parameters) = answer(request)
        response = Self.prettyError(response, for: request)
        var seen = request
        seen.pathParameters = parameters
        observer(seen, route, response.status, monotonicSeconds() - started)
        return response
    }

    private func answer(_ request: HTTPRequest) -> (response: HTTPResponse, route: String?, parameters: [String: String]) {
        let parts = Self.segments(of: request.path).map { percentDecode($0, plusIsSpace: false) }
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
            do {
                return (try route.handler(request), route.pattern, parameters)
            } catch let error as HTTPError {
                return (error.response, route.pattern, parameters)
            } catch let error as any HTTPResponseError {
                return (error.httpError.response, route.pattern, parameters)
            } catch {
                return (.error(.internalServerError, "internal error: \(error)"), route.pattern, parameters)
            }
        }
        if !allowed.isEmpty {
            let allow = Array(Set(allowed + (allowed.contains("GET") ? ["HEAD"] : []))).sorted().joined(separator: ", ")
            return (.error(.methodNotAllowed, "method \(request.method) not allowed on \(request.path) (allowed: \(allow))",
                           headers: HTTPHeaders([("Allow", allow)])), nil, [:])
        }
        return (.error(.notFound, "no route for \(request.method) \(request.path)"), nil, [:])
    }

    private static func prettyError(_ response: HTTPResponse, for request: HTTPRequest) -> HTTPResponse {
        guard response.status.rawValue >= 400, request.wantsPrettyJSON, response.headers["content-type"]?.hasPrefix("application/json") == true,
              let value = try? JSONBody.decode(JSONValue.self, from: response.body), let pretty = try? JSONBody.encode(value, pretty: true)
        else { return response }
        var indented = response
        indented.body = pretty
        return indented
    }

    private static func segments(of path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
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
