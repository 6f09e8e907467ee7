import Foundation
@testable import Transport
import Testing

@Suite struct RequestParserTests {
    private func parseAll(_ text: String, limits: ServerLimits = ServerLimits(), endOfInput: Bool = true) throws(HTTPError) -> [HTTPRequest] {
        try parseAll(Array(text.utf8), limits: limits, endOfInput: endOfInput)
    }

    private func parseAll(_ bytes: [UInt8], limits: ServerLimits = ServerLimits(), endOfInput: Bool = true) throws(HTTPError) -> [HTTPRequest] {
        var parser = RequestParser(limits: limits)
        var offset = 0
        var requests: [HTTPRequest] = []
        while true {
            switch try parser.next(bytes, offset: &offset, isEndOfInput: endOfInput) {
            case .request(let request): requests.append(request)
            case .continueExpected: continue
            case .needMoreData: return requests
            }
        }
    }

    /// Feeds `bytes` one more byte at a time, as a slow network would deliver them.
    private func parseByteByByte(_ bytes: [UInt8], limits: ServerLimits = ServerLimits()) throws(HTTPError) -> [HTTPRequest] {
        var parser = RequestParser(limits: limits)
        var buffer: [UInt8] = []
        var offset = 0
        var requests: [HTTPRequest] = []
        for byte in bytes {
            buffer.append(byte)
            var more = true
            while more {
                switch try parser.next(buffer, offset: &offset, isEndOfInput: false) {
                case .request(let request): requests.append(request)
                case .continueExpected: break
                case .needMoreData: more = false
                }
            }
        }
        return requests
    }

    @Test func parsesGetWithQueryAndHeaders() throws {
        let requests = try parseAll("GET /clusters/0/stats?pretty&x=a%20b HTTP/1.1\r\nHost: localhost\r\nX-Thing:  v  \r\n\r\n")
        #expect(requests.count == 1)
        let request = try #require(requests.first)
        #expect(request.method == "GET" && request.path == "/clusters/0/stats")
        #expect(request.query == ["pretty": "", "x": "a b"] && request.wantsPrettyJSON)
        #expect(request.headers["x-thing"] == "v" && request.wantsKeepAlive)
    }

    @Test func parsesContentLengthAndChunkedBodies() throws {
        let fixed = try parseAll("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
        #expect(fixed.first?.body == Array("hello".utf8))
        let chunked = try parseAll("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
        #expect(chunked.first?.body == Array("hello world".utf8))
        // Repeated lengths that agree are one length (RFC 9112 §6.3), in a list or in fields.
        let listed = try parseAll("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello")
        #expect(listed.first?.body == Array("hello".utf8))
        let repeated = try parseAll("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
        #expect(repeated.first?.body == Array("hello".utf8))
    }

    @Test func http10ClosesUnlessKeepAliveAndNeedsNoHost() throws {
        let plain = try parseAll("GET / HTTP/1.0\r\n\r\n")
        #expect(plain.first?.wantsKeepAlive == false)
        let kept = try parseAll("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(kept.first?.wantsKeepAlive == true)
    }

    @Test func acceptsBareLineFeeds() throws {
        let requests = try parseAll("GET /a HTTP/1.1\nHost: h\n\n")
        #expect(requests.first?.path == "/a")
    }

    private var pipelined: [UInt8] {
        Array(("GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
            + "POST /three HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
            + "GET /four HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").utf8)
    }

    @Test func pipelinedRequestsComeOutInOrder() throws {
        let requests = try parseAll(pipelined)
        #expect(requests.map(\.path) == ["/one", "/two", "/three", "/four"])
        #expect(requests.map(\.body) == [[], Array("abc".utf8), Array("xy".utf8), []])
    }

    @Test func pipelinedRequestsSplitAtEveryByteParseTheSame() throws {
        let whole = try parseAll(pipelined)
        let bytes = pipelined
        for split in 1..<bytes.count {
            var parser = RequestParser(limits: ServerLimits())
            var buffer = Array(bytes[..<split])
            var offset = 0
            var requests: [HTTPRequest] = []
            func drain(_ end: Bool) throws {
                while true {
                    switch try parser.next(buffer, offset: &offset, isEndOfInput: end) {
                    case .request(let request): requests.append(request)
                    case .continueExpected: continue
                    case .needMoreData: return
                    }
                }
            }
            try drain(false)
            buffer += bytes[split...]
            try drain(true)
            #expect(requests.map(\.path) == whole.map(\.path), "split at \(split)")
            #expect(requests.map(\.body) == whole.map(\.body), "split at \(split)")
        }
        #expect(try parseByteByByte(bytes).map(\.path) == whole.map(\.path))
    }

    @Test func expectContinueIsSignalledBeforeTheBody() throws {
        var parser = RequestParser(limits: ServerLimits())
        let head = Array("POST /s HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".utf8)
        var offset = 0
        guard case .continueExpected = try parser.next(head, offset: &offset, isEndOfInput: false) else {
            Issue.record("expected continueExpected")
            return
        }
        guard case .request(let request) = try parser.next(head + Array("ok".utf8), offset: &offset, isEndOfInput: false) else {
            Issue.record("expected the request")
            return
        }
        #expect(request.body == Array("ok".utf8))
    }

    @Test(arguments: [
        ("GARBAGE\r\n\r\n", 400),
        ("GET /\r\nHost: h\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
        ("GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET nopath HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),                                              // missing Host
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\nab", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1234567890abcdef0\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nNoColonHere\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nName : x\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{0}b\r\n\r\n", 400),
        ("GET /caf\u{e9} HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nNam\u{e9}: x\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nshort", 400),            // body shorter than declared
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 400),   // chunked body cut off
        ("GET / HTTP/1.1\r\nHost: h\r\nX-Partial", 400),                                       // head cut off
    ] as [(String, Int)])
    func malformedRequestIsRefusedWithStatus(text: String, status: Int) {
        #expect {
            _ = try parseAll(text)
        } throws: { error in
            (error as? HTTPError)?.status.rawValue == status
        }
    }

    @Test func headerValuesMayCarryObsText() throws {
        let requests = try parseAll(Array("GET / HTTP/1.1\r\nHost: h\r\nX: caf".utf8) + [0xC3, 0xA9] + Array("\r\n\r\n".utf8))
        #expect(requests.first?.headers["x"] == "café")
    }

    @Test func limitsAnswer431And413() {
        var limits = ServerLimits()
        limits.maxHeaderCount = 10
        limits.maxHeaderBytes = 512
        limits.maxBodyBytes = 8
        let manyHeaders = "GET / HTTP/1.1\r\nHost: h\r\n" + (0..<11).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        #expect { _ = try parseAll(manyHeaders, limits: limits) } throws: { ($0 as? HTTPError)?.status == .headerFieldsTooLarge }
        let hugeHeader = "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 600)
        #expect { _ = try parseAll(hugeHeader, limits: limits, endOfInput: false) } throws: { ($0 as? HTTPError)?.status == .headerFieldsTooLarge }
        let bigBody = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\n"
        #expect { _ = try parseAll(bigBody, limits: limits, endOfInput: false) } throws: { ($0 as? HTTPError)?.status == .payloadTooLarge }
        let bigChunks = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\naaaaa\r\n5\r\n"
        #expect { _ = try parseAll(bigChunks, limits: limits, endOfInput: false) } throws: { ($0 as? HTTPError)?.status == .payloadTooLarge }
    }

    @Test func largeHeadArrivingOneByteAtATimeParses() throws {
        let head = "GET / HTTP/1.1\r\nHost: h\r\n" + (0..<300).map { "X-\($0): \(String(repeating: "v", count: 30))\r\n" }.joined() + "\r\n"
        var limits = ServerLimits()
        limits.maxHeaderCount = 400
        let requests = try parseByteByByte(Array(head.utf8), limits: limits)
        #expect(requests.count == 1 && requests.first?.headers.fields.count == 301)
    }
}

@Suite struct RouterTests {
    private var router: Router {
        var router = Router()
        router.add("GET", "/clusters/:id/stats") { request in
            HTTPResponse(body: Array("stats of \(try request.parameter("id"))".utf8))
        }
        router.add("POST", "/clusters/:id/service") { _ in throw HTTPError(.serviceUnavailable, "no leader") }
        router.add("GET", "/boom") { _ in
            struct Boom: Error {}
            throw Boom()
        }
        router.add("POST", "/connections") { _ in HTTPResponse(status: .ok) }
        return router
    }

    @Test func bindsParametersAndToleratesSlashes() {
        #expect(router.respond(to: HTTPRequest(method: "GET", target: "/clusters/0/stats")).bodyText == "stats of 0")
        #expect(router.respond(to: HTTPRequest(method: "GET", target: "/clusters/a%20b/stats/")).bodyText == "stats of a b")
        #expect(router.respond(to: HTTPRequest(method: "POST", target: "/connections/")).status == .ok)
        #expect(router.respond(to: HTTPRequest(method: "HEAD", target: "/clusters/0/stats")).status == .ok)
    }

    @Test func unknownPathIs404AndWrongMethod405WithAllow() {
        let missing = router.respond(to: HTTPRequest(method: "GET", target: "/nowhere"))
        #expect(missing.status == .notFound && missing.bodyText.hasPrefix(#"{"error":"#))
        let wrong = router.respond(to: HTTPRequest(method: "DELETE", target: "/clusters/0/stats"))
        #expect(wrong.status == .methodNotAllowed)
        #expect(wrong.headers["Allow"] == "GET, HEAD")
        #expect(wrong.headers["Content-Type"] == "application/json")
    }

    @Test func thrownErrorsBecomeJSONAnswers() {
        let unavailable = router.respond(to: HTTPRequest(method: "POST", target: "/clusters/0/service"))
        #expect(unavailable.status == .serviceUnavailable && unavailable.bodyText == #"{"error":"no leader"}"#)
        let crashed = router.respond(to: HTTPRequest(method: "GET", target: "/boom"))
        #expect(crashed.status == .internalServerError && crashed.bodyText.hasPrefix(#"{"error":"internal error"#))
    }
}

@Suite struct JSONBodyTests {
    struct Container: Codable { var description: String?; var replicas: Int }
    struct Service: Codable { var containers: [Container] }

    private func decodeError(_ text: String) -> String? {
        do {
            _ = try JSONBody.decode(Service.self, from: Array(text.utf8))
            return nil
        } catch {
            #expect(error.status == .badRequest)
            return error.message
        }
    }

    @Test func errorsNameTheFieldAndTheProblem() {
        #expect(decodeError(#"{"containers": [{"replicas": 1}, {"replicas": "ten"}]}"#) == "field containers[1].replicas: expected a whole number")
        #expect(decodeError(#"{"containers": [{"description": "x"}]}"#) == "missing field replicas in containers[0]")
        #expect(decodeError(#"{}"#) == "missing field containers")
        #expect(decodeError(#"{"containers": 5}"#) == "field containers: expected an array")
        #expect(decodeError("{nope")?.hasPrefix("invalid JSON body") == true)
        #expect(decodeError("") == "request body is empty; expected JSON")
    }

    @Test func answersAreSortedAndPrettyOnRequest() throws {
        let compact = JSONBody.response(["b": 1, "a": 2])
        #expect(compact.bodyText == #"{"a":2,"b":1}"#)
        let pretty = JSONBody.response(["a": 1], for: HTTPRequest(method: "GET", target: "/?pretty"))
        #expect(pretty.bodyText.contains("\n"))
    }
}

/// The strict decoder behind every request body: unknown fields and number mismatches are
/// errors naming the field, and the JSON grammar is RFC 8259's.
@Suite struct StrictJSONDecoderTests {
    struct Inner: Decodable, Equatable { var count: Int; var label: String? }
    struct Outer: Decodable, Equatable { var inner: Inner; var items: [Inner]?; var ratio: Double?; var flag: Bool?; var table: [String: Int]? }

    private func problem(_ text: String) -> String? {
        do {
            _ = try StrictJSONDecoder.decode(Outer.self, from: Array(text.utf8))
            return nil
        } catch {
            return error.description
        }
    }

    @Test func validBodiesDecodeLikeFoundation() throws {
        let text = #"{"inner": {"count": 3, "label": "a\"\u00e9\ud83d\ude00"}, "items": [{"count": -1}], "ratio": 1e-3, "flag": false, "table": {"x": 1, "y": 2}}"#
        let decoded = try StrictJSONDecoder.decode(Outer.self, from: Array(text.utf8))
        let foundation = try JSONDecoder().decode(Outer.self, from: Data(text.utf8))
        #expect(decoded == foundation)
        #expect(decoded.inner.label == "a\"é😀")
        #expect(try StrictJSONDecoder.decode(Inner.self, from: Array(#"{"count": 5.0, "label": null}"#.utf8)) == Inner(count: 5, label: nil))
    }

    /// Duplicates are found by looking through a few fields and through a set beyond 16.
    @Test func duplicateFieldsAreFoundInObjectsOfAnySize() throws {
        for size in [2, 15, 16, 17, 40] {
            let fields = (0..<size).map { #""k\#($0)": \#($0)"# }
            let valid = "{\"inner\": {\"count\": 1}, \"table\": {" + fields.joined(separator: ", ") + "}}"
            #expect(try StrictJSONDecoder.decode(Outer.self, from: Array(valid.utf8)).table?.count == size)
            for duplicate in [0, size / 2, size - 1] {
                let text = "{\"inner\": {\"count\": 1}, \"table\": {" + (fields + [#""k\#(duplicate)": 0"#]).joined(separator: ", ") + "}}"
                #expect(problem(text)?.hasPrefix("invalid JSON body: duplicate field \"k\(duplicate)\"") == true, "\(size) fields, k\(duplicate) again")
            }
        }
    }

    @Test(arguments: [
        (#"{"inner": {"count": 1}, "bogus": 1}"#, "unknown field bogus"),
        (#"{"inner": {"count": 1, "port": 1, "basePort": 2}}"#, "unknown fields inner.port, inner.basePort"),
        (#"{"inner": {"count": 1}, "items": [{"count": 1}, {"count": 2, "x": 0}]}"#, "unknown field items[1].x"),
        (#"{"inner": {"count": 2.5}}"#, "field inner.count: expected a whole number, got 2.5"),
        (#"{"inner": {"count": 99999999999999999999999}}"#, "field inner.count: expected a whole number from -9223372036854775808 to 9223372036854775807, got 99999999999999999999999"),
        (#"{"inner": {"count": "3"}}"#, "field inner.count: expected a whole number, got a string"),
        (#"{"inner": {"count": 1}, "flag": 1}"#, "field flag: expected true or false, got 1"),
        (#"{"inner": {"count": 1}, "ratio": "x"}"#, "field ratio: expected a number, got a string"),
        (#"{"inner": {}}"#, "missing field count in inner"),
        (#"{"inner": {"count": 01}}"#, "invalid JSON body: invalid number (leading zero)"),
        (#"{"inner": {"count": 1},}"#, "invalid JSON body: expected a field name in quotes"),
        (#"{"inner": {"count": 1}} {}"#, "invalid JSON body: unexpected text after the JSON value"),
        (#"{"inner": {"count": 1}, "inner": {"count": 2}}"#, "invalid JSON body: duplicate field \"inner\""),
        ("{\"inner\": {\"count\": 1, \"label\": \"a\u{01}\"}}", "invalid JSON body: a control character inside a string"),
        (#"{"inner": {"count": 1, "label": "\ud800"}}"#, "invalid JSON body: an unpaired surrogate"),
        (String(repeating: "[", count: 100), "invalid JSON body: nested deeper than 64 levels"),
    ])
    func badBodiesNameWhatIsWrong(body: String, message: String) {
        let found = problem(body)
        #expect(found?.hasPrefix(message) == true, "\(found ?? "decoded")")
    }
}
