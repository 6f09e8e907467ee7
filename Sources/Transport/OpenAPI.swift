import Foundation

/// An OpenAPI 3.1 document built from a router's own routes: each registered route
/// (method and pattern) is looked up in a table of operations, so a route without a
/// description, or a description without a route, shows in `coverage` (and a test fails).
public struct OpenAPIDocument: Sendable {
    /// One operation: what it does, its query parameters, body and answers.
    public struct Operation: Sendable {
        public var summary: String
        public var tags: [String]
        public var query: [Parameter]
        public var body: Body?
        public var answers: [Answer]
        /// Header parameters (`Idempotency-Key`, `Last-Event-ID`).
        public var headers: [Parameter]

        public init(_ summary: String, tags: [String] = [], query: [Parameter] = [], headers: [Parameter] = [], body: Body? = nil, answers: [Answer]) {
            self.summary = summary
            self.tags = tags
            self.query = query
            self.headers = headers
            self.body = body
            self.answers = answers
        }
    }

    public struct Parameter: Sendable {
        public var name: String
        public var schema: JSONValue
        public var description: String
        public var required: Bool

        public init(_ name: String, _ schema: JSONValue, _ description: String, required: Bool = false) {
            self.name = name
            self.schema = schema
            self.description = description
            self.required = required
        }
    }

    /// What a body or answer carries.
    public enum Content: Sendable {
        case json(JSONValue)
        /// Another media type, with the schema of its text.
        case media(String, JSONValue)
        case empty
    }

    public struct Body: Sendable {
        public var content: [Content]
        public var required: Bool
        public var description: String

        public init(_ description: String, _ content: Content..., required: Bool = true) {
            self.description = description
            self.content = content
            self.required = required
        }
    }

    public struct Answer: Sendable {
        public var status: Int
        public var description: String
        public var content: Content
        /// Response headers it carries (name → description).
        public var headers: [String: String]
        /// OpenAPI links: operations this answer leads to, with their parameters as runtime
        /// expressions (`$response.body#/id`), for stateful testing.
        public var links: [String: (operation: String, parameters: [String: String])]

        public init(_ status: Int, _ description: String, _ content: Content = .empty, headers: [String: String] = [:],
                    links: [String: (operation: String, parameters: [String: String])] = [:]) {
            self.status = status
            self.description = description
            self.content = content
            self.headers = headers
            self.links = links
        }
    }

    public var title: String
    public var version: String
    public var description: String
    /// "METHOD /pattern/:param" → its operation.
    public var operations: [String: Operation]
    /// Reusable schemas, referred to as `#/components/schemas/Name`.
    public var schemas: [String: JSONValue]
    /// Descriptions and schemas of path parameters by name (`id`, `sid`...).
    public var pathParameters: [String: (schema: JSONValue, description: String)]

    public init(title: String, version: String, description: String, operations: [String: Operation], schemas: [String: JSONValue],
                pathParameters: [String: (schema: JSONValue, description: String)]) {
        self.title = title
        self.version = version
        self.description = description
        self.operations = operations
        self.schemas = schemas
        self.pathParameters = pathParameters
    }

    public static func key(_ method: String, _ pattern: String) -> String { method.uppercased() + " " + pattern }

    /// Routes without an operation, and operations without a route.
    public func coverage(of routes: [(method: String, pattern: String)]) -> (undocumented: [String], unrouted: [String]) {
        let registered = Set(routes.map { Self.key($0.method, $0.pattern) })
        return (registered.subtracting(operations.keys).sorted(), Set(operations.keys).subtracting(registered).sorted())
    }

    /// The document for the routes registered (each documented operation among them).
    public func rendered(for routes: [(method: String, pattern: String)]) -> JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        for route in routes {
            guard let operation = operations[Self.key(route.method, route.pattern)] else { continue }
            let segments = route.pattern.split(separator: "/").map(String.init)
            let path = "/" + segments.map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : $0 }.joined(separator: "/")
            var parameters: [JSONValue] = segments.filter { $0.hasPrefix(":") }.map { segment in
                let name = String(segment.dropFirst())
                let known = pathParameters[name] ?? (.object(["type": .string("string")]), name)
                return .object(["name": .string(name), "in": .string("path"), "required": .bool(true), "schema": known.schema, "description": .string(known.description)])
            }
            parameters += operation.query.map { parameter in
                .object(["name": .string(parameter.name), "in": .string("query"), "required": .bool(parameter.required), "schema": parameter.schema,
                         "description": .string(parameter.description)])
            }
            parameters += operation.headers.map { parameter in
                .object(["name": .string(parameter.name), "in": .string("header"), "required": .bool(parameter.required), "schema": parameter.schema,
                         "description": .string(parameter.description)])
            }
            var fields: [String: JSONValue] = [
                "summary": .string(operation.summary),
                "operationId": .string(Self.operationID(route.method, route.pattern)),
                "responses": .object(Dictionary(uniqueKeysWithValues: operation.answers.map { answer in
                    var response: [String: JSONValue] = ["description": .string(answer.description)]
                    if let content = Self.content([answer.content]) { response["content"] = content }
                    if !answer.links.isEmpty {
                        response["links"] = .object(answer.links.mapValues { link in
                            .object(["operationId": .string(Self.operationID(link.operation)),
                                     "parameters": .object(link.parameters.mapValues { .string($0) })])
                        })
                    }
                    if !answer.headers.isEmpty {
                        response["headers"] = .object(answer.headers.mapValues { .object(["description": .string($0), "schema": .object(["type": .string("string")])]) })
                    }
                    return (String(answer.status), .object(response))
                })),
            ]
            if !operation.tags.isEmpty { fields["tags"] = .array(operation.tags.map { .string($0) }) }
            if !parameters.isEmpty { fields["parameters"] = .array(parameters) }
            if let body = operation.body, let content = Self.content(body.content) {
                fields["requestBody"] = .object(["description": .string(body.description), "required": .bool(body.required), "content": content])
            }
            paths[path, default: [:]][route.method.lowercased()] = .object(fields)
        }
        var document: [String: JSONValue] = [
            "openapi": .string("3.1.0"),
            "info": .object(["title": .string(title), "version": .string(version), "description": .string(description)]),
            "servers": .array([.object(["url": .string("/")])]),
            "paths": .object(paths.mapValues { .object($0) }),
            "components": .object(["schemas": .object(schemas)]),
        ]
        // A route without a description, or a description without a route, is named here
        // (and the route coverage test fails).
        let (undocumented, unrouted) = coverage(of: routes)
        if !undocumented.isEmpty || !unrouted.isEmpty {
            document["x-coverage"] = .object(["undocumented": .array(undocumented.map { .string($0) }), "unrouted": .array(unrouted.map { .string($0) })])
        }
        return .object(document)
    }

    private static func content(_ contents: [Content]) -> JSONValue? {
        var media: [String: JSONValue] = [:]
        for content in contents {
            switch content {
            case .json(let schema): media["application/json"] = .object(["schema": schema])
            case .media(let type, let schema): media[type] = .object(["schema": schema])
            case .empty: break
            }
        }
        return media.isEmpty ? nil : .object(media)
    }

    /// The operation ID of a route key ("GET /clusters/:id").
    public static func operationID(_ key: String) -> String {
        let parts = key.split(separator: " ", maxSplits: 1).map(String.init)
        return operationID(parts[0], parts.count > 1 ? parts[1] : "/")
    }

    /// `getClustersByIdStats` from `GET /clusters/:id/stats`.
    public static func operationID(_ method: String, _ pattern: String) -> String {
        var result = method.lowercased()
        for segment in pattern.split(separator: "/") {
            let word = segment.hasPrefix(":") ? "By" + segment.dropFirst().prefix(1).uppercased() + segment.dropFirst(2) : segment.prefix(1).uppercased() + segment.dropFirst()
            result += word.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        }
        return pattern == "/" ? result + "Root" : result
    }
}

/// Building JSON Schemas tersely.
public enum Schema {
    public static let string: JSONValue = .object(["type": .string("string")])
    public static let integer: JSONValue = .object(["type": .string("integer")])
    public static let number: JSONValue = .object(["type": .string("number")])
    public static let boolean: JSONValue = .object(["type": .string("boolean")])
    /// Any JSON value.
    public static let any: JSONValue = .object([:])

    public static func ref(_ name: String) -> JSONValue { .object(["$ref": .string("#/components/schemas/" + name)]) }
    public static func array(_ items: JSONValue) -> JSONValue { .object(["type": .string("array"), "items": items]) }
    public static func nullable(_ schema: JSONValue) -> JSONValue { .object(["anyOf": .array([schema, .object(["type": .string("null")])])]) }
    public static func oneOf(_ schemas: JSONValue...) -> JSONValue { .object(["oneOf": .array(schemas)]) }
    public static func anyOf(_ schemas: JSONValue...) -> JSONValue { .object(["anyOf": .array(schemas)]) }
    public static func enumeration(_ values: [String]) -> JSONValue { .object(["type": .string("string"), "enum": .array(values.map { .string($0) })]) }
    public static func integer(_ range: ClosedRange<Int>) -> JSONValue {
        .object(["type": .string("integer"), "minimum": .number(Double(range.lowerBound)), "maximum": .number(Double(range.upperBound))])
    }
    /// An object whose keys are free and whose values follow `values`.
    public static func map(_ values: JSONValue) -> JSONValue { .object(["type": .string("object"), "additionalProperties": values]) }

    /// An object with these properties; those in `required` are always present. Other
    /// properties are allowed unless `closed`.
    /// A property not required may also be null: decoding takes null for absent, and
    /// encoding leaves absent values out.
    public static func object(_ properties: [String: JSONValue], required: [String] = [], closed: Bool = false, description: String? = nil) -> JSONValue {
        let optional = properties.map { name, schema in (name, required.contains(name) || schema == any ? schema : nullable(schema)) }
        var fields: [String: JSONValue] = ["type": .string("object"), "properties": .object(Dictionary(uniqueKeysWithValues: optional))]
        if !required.isEmpty { fields["required"] = .array(required.map { .string($0) }) }
        if closed { fields["additionalProperties"] = .bool(false) }
        if let description { fields["description"] = .string(description) }
        return .object(fields)
    }
}

extension Router {
    /// Adds `GET /openapi.json`, serving `document` rendered for every route registered so
    /// far (call it after the others). Rendered once, compact and `?pretty`.
    public mutating func serveOpenAPI(_ document: OpenAPIDocument) {
        let routes = registered + [(method: "GET", pattern: "/openapi.json")]
        let rendered = document.rendered(for: routes)
        let compact = (try? JSONBody.encode(rendered)) ?? []
        let pretty = (try? JSONBody.encode(rendered, pretty: true)) ?? []
        add("GET", "/openapi.json") { request in
            // Any origin may read the document (a Swagger UI served elsewhere); the API's other
            // routes send no CORS headers, so no page elsewhere can drive them.
            HTTPResponse(headers: HTTPHeaders([("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*")]),
                         body: request.wantsPrettyJSON ? pretty : compact)
        }
    }
}

/// What every API description (the node's, the orchestrator's) writes with: the operation
/// types and the answers and parameters every route shares.
public protocol APIDescription {}

extension APIDescription {
    public typealias Operation = OpenAPIDocument.Operation
    public typealias Answer = OpenAPIDocument.Answer
    public typealias Body = OpenAPIDocument.Body
    public typealias Parameter = OpenAPIDocument.Parameter

    /// `{"error": ...}`, every error answer's body.
    public static var error: JSONValue { Schema.ref("Error") }
    public static func fail(_ status: Int, _ why: String) -> Answer { Answer(status, why, .json(error)) }
    public static var retryAfter: [String: String] { ["Retry-After": "Seconds to wait before retrying."] }
    public static var tooLarge: Answer { fail(413, "The body exceeds the server's limit.") }
    public static var pretty: Parameter { Parameter("pretty", Schema.anyOf(Schema.string, Schema.boolean), "Indent the JSON answer (any value but false or 0).") }
    public static var uint: JSONValue { .object(["type": .string("integer"), "minimum": .number(0)]) }
}
