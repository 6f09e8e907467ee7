import Transport

/// The one place where the node's domain errors become HTTP answers.
extension NodeError: HTTPResponseError {
    public var httpError: HTTPError {
        let retryLater = HTTPHeaders([("Retry-After", "1")])
        switch self {
        case .notLeader(let leader?):
            return HTTPError(.serviceUnavailable, "this node does not lead; the leader is \(NodeAddress(id: leader))", headers: retryLater)
        case .notLeader(nil):
            return HTTPError(.serviceUnavailable, "no leader elected yet; retry shortly", headers: retryLater)
        case .overloaded:
            return HTTPError(.serviceUnavailable, "node overloaded; retry later", headers: retryLater)
        case .timedOut(let message, _):
            return HTTPError(.gatewayTimeout, message)
        case .retryable(let message):
            return HTTPError(.serviceUnavailable, message, headers: retryLater)
        case .rejected(let message):
            return HTTPError(.conflict, message)
        case .notFound(let message):
            return HTTPError(.notFound, message)
        case .requestIDReused(let message):
            return HTTPError(.unprocessableContent, message)
        case .invalid(let message):
            return HTTPError(.badRequest, message)
        case .tooLarge(let message):
            return HTTPError(.payloadTooLarge, message)
        case .forbidden(let message):
            return HTTPError(.forbidden, message)
        }
    }
}
