import Foundation

/// Typed JSON bodies: decoding with errors that name the bad field (400), and encoding
/// answers (sorted keys; pretty-printed on `?pretty`).
public enum JSONBody {
    /// Decodes the request body as `T`, or throws a 400 naming the field and what is wrong
    /// (an unknown field is wrong too: API.md).
    public static func decode<T: Decodable>(_ type: T.Type, from request: HTTPRequest) throws(HTTPError) -> T {
        try decodeStrictly(type, from: request.body)
    }

    /// Decodes a client's `bytes` as `T`: a 400 naming every unknown field, a field of the
    /// wrong type with the value given, or the syntax error's position.
    public static func decodeStrictly<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(HTTPError) -> T {
        guard !bytes.isEmpty else { throw HTTPError(.badRequest, "request body is empty; expected JSON") }
        do {
            return try StrictJSONDecoder.decode(type, from: bytes)
        } catch {
            throw HTTPError(.badRequest, error.description)
        }
    }

    /// Decodes `bytes` (an answer from one of our own servers) as `T`, ignoring fields it does
    /// not know, or throws a 400 naming the field and what is wrong.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(HTTPError) -> T {
        guard !bytes.isEmpty else { throw HTTPError(.badRequest, "request body is empty; expected JSON") }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .secondsSince1970
            return try decoder.decode(T.self, from: Data(bytes))
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
               (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
            {
                // Foundation reports some type mismatches (a fraction for a whole number) as
                // invalid JSON, with no path; the body itself parses, so say what is likely wrong.
                throw HTTPError(.badRequest, "a field has a value of the wrong type (a fraction where a whole number belongs, or a number out of range)")
            }
            throw HTTPError(.badRequest, describe(error))
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError(.badRequest, "invalid JSON body: \(error)")
        }
    }

    /// Encodes `value` as a JSON answer with the given status.
    public static func response<T: Encodable>(_ value: T, status: HTTPStatus = .ok, pretty: Bool = false,
                                              headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse
    {
        var headers = headers
        headers.set("Content-Type", "application/json")
        do {
            return HTTPResponse(status: status, headers: headers, body: try encode(value, pretty: pretty))
        } catch {
            return .error(.internalServerError, "could not encode the answer: \(error)")
        }
    }

    /// Encodes `value` as a JSON answer, pretty-printed when the request asked for it.
    public static func response<T: Encodable>(_ value: T, status: HTTPStatus = .ok, for request: HTTPRequest,
                                              headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse
    {
        response(value, status: status, pretty: request.wantsPrettyJSON, headers: headers)
    }

    /// The JSON bytes of `value` (sorted keys, so output is stable). Compact answers are
    /// written by `CompactJSONEncoder` (the same bytes, much cheaper), pretty ones by Foundation.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> [UInt8] {
        if !pretty, let writable = value as? any JSONWritable { return try writable.jsonBytes() }
        guard pretty else { return try CompactJSONEncoder.encode(value) }
        let encoder = JSONEncoder()
        // One time base in every answer (API.md): a Date is Unix seconds, never Foundation's 2001 epoch.
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    /// A field path such as `containers[1].replicas`.
    static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text.isEmpty ? "body" : text
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "missing field \(key.stringValue)\(parent)"
        case .typeMismatch(let type, let context):
            if context.debugDescription.hasPrefix("expected ") { return "field \(path(context.codingPath)): \(context.debugDescription)" }
            return "field \(path(context.codingPath)): expected \(describe(type))"
        case .valueNotFound(let type, let context):
            return "field \(path(context.codingPath)): expected \(describe(type)), got null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return "invalid JSON body" + (context.underlyingError.map { ": \(underlyingMessage($0))" } ?? "")
            }
            return "field \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "invalid JSON body"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type, is UInt64.Type, is UInt16.Type, is Int32.Type, is UInt.Type: "a whole number"
        case is Double.Type, is Float.Type: "a number"
        case is Bool.Type: "true or false"
        case is [Any].Type: "an array"
        default:
            "\(type)".hasPrefix("Array") ? "an array" : (("\(type)".hasPrefix("Dictionary")) ? "an object" : "an object (\(type))")
        }
    }

    private static func underlyingMessage(_ error: any Error) -> String {
        let text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
        return text ?? "\(error)"
    }
}
