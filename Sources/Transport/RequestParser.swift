/// Parses HTTP/1.0 and 1.1 requests incrementally from a byte buffer, several per buffer
/// when they are pipelined. It is strict where a lenient reading would let two parties
/// frame a message differently (request smuggling) and refuses with the right status.
struct RequestParser {
    /// What the parser can say after looking at the buffer.
    enum Event {
        /// More bytes are needed.
        case needMoreData
        /// A head asked `Expect: 100-continue` and its body may be sent.
        case continueExpected
        /// A whole request; the offset has moved past it.
        case request(HTTPRequest)
    }

    private enum BodyFraming {
        case none
        case length(Int)
        case chunked
    }

    private struct Head {
        var request: HTTPRequest
        var framing: BodyFraming
        var isContinueAnswered = false
    }

    private enum ChunkState {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers
    }

    let limits: ServerLimits
    private var head: Head?
    private var chunkState = ChunkState.size
    private var chunkedBody: [UInt8] = []
    /// Where to resume looking for the end of the head, so byte-at-a-time input stays linear.
    private var headScanFrom = 0

    init(limits: ServerLimits) { self.limits = limits }

    /// True while a request has started arriving (for choosing header vs idle timeout).
    var isMidRequest: Bool { head != nil }

    /// The most body bytes the request whose head was parsed may still bring into memory:
    /// its Content-Length, or its route's limit when chunked; 0 when none is being read.
    var bodyBytesToReserve: Int {
        switch head?.framing {
        case .length(let length)?: length
        case .chunked?: limits.maxBodyBytes(forPath: head?.request.path ?? "")
        case .none?, nil: 0
        }
    }

    /// Parses from `buffer[offset...]`. `isEndOfInput` says the peer will send no more.
    mutating func next(_ buffer: [UInt8], offset: inout Int, isEndOfInput: Bool) throws(HTTPError) -> Event {
        if head == nil {
            guard let parsed = try parseHead(buffer, offset: &offset, isEndOfInput: isEndOfInput) else { return .needMoreData }
            head = parsed
            chunkState = .size
            chunkedBody = []
        }
        guard var current = head else { return .needMoreData }
        if current.request.headers["expect"]?.lowercased() == "100-continue", !current.isContinueAnswered, current.request.isHTTP11 {
            current.isContinueAnswered = true
            head = current
            if case .length(let length) = current.framing, offset + length > buffer.count { return .continueExpected }
            if case .chunked = current.framing, offset >= buffer.count { return .continueExpected }
        }
        switch current.framing {
        case .none:
            head = nil
            return .request(current.request)
        case .length(let length):
            guard buffer.count - offset >= length else {
                if isEndOfInput { throw HTTPError(.badRequest, "body shorter than its Content-Length of \(length) bytes") }
                return .needMoreData
            }
            current.request.body = Array(buffer[offset..<(offset + length)])
            offset += length
            head = nil
            return .request(current.request)
        case .chunked:
            guard try parseChunks(buffer, offset: &offset) else {
                if isEndOfInput { throw HTTPError(.badRequest, "chunked body ended before its last chunk") }
                return .needMoreData
            }
            current.request.body = chunkedBody
            chunkedBody = []
            head = nil
            return .request(current.request)
        }
    }

    // MARK: - Head

    private mutating func parseHead(_ buffer: [UInt8], offset: inout Int, isEndOfInput: Bool) throws(HTTPError) -> Head? {
        // Tolerate empty lines before a request (RFC 9112 §2.2).
        while offset < buffer.count, buffer[offset] == 0x0D || buffer[offset] == 0x0A { offset += 1 }
        guard offset < buffer.count else { return nil }
        guard let end = findHeadEnd(buffer, from: offset) else {
            if buffer.count - offset > limits.maxHeaderBytes {
                throw HTTPError(.headerFieldsTooLarge, "request line and headers exceed \(limits.maxHeaderBytes) bytes")
            }
            if isEndOfInput { throw HTTPError(.badRequest, "connection closed in the middle of the request head") }
            return nil
        }
        guard end.headEnd - offset <= limits.maxHeaderBytes else {
            throw HTTPError(.headerFieldsTooLarge, "request line and headers exceed \(limits.maxHeaderBytes) bytes")
        }
        let lines = splitLines(buffer, from: offset, to: end.headEnd)
        offset = end.bodyStart
        headScanFrom = 0
        guard let requestLine = lines.first else { throw HTTPError(.badRequest, "empty request") }
        var request = try parseRequestLine(buffer, requestLine)
        guard lines.count - 1 <= limits.maxHeaderCount else {
            throw HTTPError(.headerFieldsTooLarge, "more than \(limits.maxHeaderCount) header fields")
        }
        request.headers.reserveCapacity(lines.count - 1)
        for line in lines.dropFirst() {
            let (name, value) = try parseHeaderLine(buffer, line)
            request.headers.add(name, value)
        }
        if request.isHTTP11 && request.headers["host"] == nil {
            throw HTTPError(.badRequest, "HTTP/1.1 request without a Host header")
        }
        return Head(request: request, framing: try framing(of: request.headers, limit: limits.maxBodyBytes(forPath: request.path)))
    }

    /// The index just past the head's last line break, and where the body starts.
    private mutating func findHeadEnd(_ buffer: [UInt8], from start: Int) -> (headEnd: Int, bodyStart: Int)? {
        var position = max(start, headScanFrom)
        while position < buffer.count {
            if buffer[position] == 0x0A {
                var next = position + 1
                if next < buffer.count, buffer[next] == 0x0D { next += 1 }
                if next < buffer.count, buffer[next] == 0x0A { return (position + 1, next + 1) }
                if next >= buffer.count { headScanFrom = position; return nil }
            }
            position += 1
        }
        headScanFrom = max(start, buffer.count - 1)
        return nil
    }

    /// Lines between `from` and `to` (each without its CRLF or LF).
    private func splitLines(_ buffer: [UInt8], from: Int, to: Int) -> [Range<Int>] {
        var lines: [Range<Int>] = []
        lines.reserveCapacity(16)  // a request line and a few fields: one allocation, not one per doubling
        var lineStart = from
        var position = from
        while position < to {
            if buffer[position] == 0x0A {
                var lineEnd = position
                if lineEnd > lineStart, buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                lines.append(lineStart..<lineEnd)
                lineStart = position + 1
            }
            position += 1
        }
        return lines
    }

    private func parseRequestLine(_ buffer: [UInt8], _ line: Range<Int>) throws(HTTPError) -> HTTPRequest {
        // METHOD SP target SP version: exactly two spaces, none at either end of a part.
        guard let firstSpace = buffer[line].firstIndex(of: 0x20),
              let secondSpace = buffer[(firstSpace + 1)..<line.upperBound].firstIndex(of: 0x20),
              !buffer[(secondSpace + 1)..<line.upperBound].contains(0x20),
              firstSpace > line.lowerBound, secondSpace > firstSpace + 1
        else {
            throw HTTPError(.badRequest, "malformed request line (expected: METHOD target HTTP/1.1)")
        }
        // Three slices, not an array of them (one allocation per request).
        let method = buffer[line.lowerBound..<firstSpace], targetBytes = buffer[(firstSpace + 1)..<secondSpace]
        let versionBytes = buffer[(secondSpace + 1)..<line.upperBound]
        guard method.allSatisfy(isTokenByte) else { throw HTTPError(.badRequest, "malformed method") }
        guard targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTPError(.badRequest, "request target contains spaces, control or non-ASCII bytes")
        }
        let version = String(decoding: versionBytes, as: UTF8.self)
        let isHTTP11: Bool
        switch version {
        case "HTTP/1.1": isHTTP11 = true
        case "HTTP/1.0": isHTTP11 = false
        default:
            if version.hasPrefix("HTTP/") && version.count == 8 {
                throw HTTPError(.versionNotSupported, "HTTP version \(version.dropFirst(5)) is not supported (use 1.1 or 1.0)")
            }
            throw HTTPError(.badRequest, "malformed HTTP version")
        }
        let target = String(decoding: targetBytes, as: UTF8.self)
        guard target.hasPrefix("/") || target == "*" else { throw HTTPError(.badRequest, "request target must start with /") }
        return HTTPRequest(method: String(decoding: method, as: UTF8.self), target: target, isHTTP11: isHTTP11)
    }

    private func parseHeaderLine(_ buffer: [UInt8], _ line: Range<Int>) throws(HTTPError) -> (String, String) {
        let bytes = buffer[line]
        guard let colon = bytes.firstIndex(of: 0x3A) else { throw HTTPError(.badRequest, "header line without a colon") }
        let name = bytes[bytes.startIndex..<colon]
        guard !name.isEmpty else { throw HTTPError(.badRequest, "header with an empty name") }
        guard name.allSatisfy(isTokenByte) else {
            // Includes whitespace before the colon and obsolete line folding, both refused by RFC 9112 §5.
            throw HTTPError(.badRequest, "invalid header name \(JSONText.quote(String(decoding: name, as: UTF8.self)))")
        }
        var value = bytes[(colon + 1)...]
        while let first = value.first, first == 0x20 || first == 0x09 { value.removeFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value.removeLast() }
        // Field values may hold visible ASCII, spaces, tabs and obs-text (RFC 9110 §5.5), never
        // NUL, CR, LF or other control bytes.
        guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else {
            throw HTTPError(.badRequest, "header \(String(decoding: name, as: UTF8.self)) contains control bytes")
        }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
    }

    private func framing(of headers: HTTPHeaders, limit: Int) throws(HTTPError) -> BodyFraming {
        var encodings: [String] = []
        // The first Content-Length; every one of them only when there are several (a list
        // for the one that nearly every request has cost an allocation).
        var firstLength: String?
        var lengths: [String] = []
        for field in headers.fields {
            if field.name.caseInsensitiveEquals("content-length") {
                if let firstLength {
                    if lengths.isEmpty { lengths.append(firstLength) }
                    lengths.append(field.value)
                } else {
                    firstLength = field.value
                }
            } else if field.name.caseInsensitiveEquals("transfer-encoding") {
                encodings.append(field.value)
            }
        }
        if !encodings.isEmpty {
            guard firstLength == nil else {
                throw HTTPError(.badRequest, "both Content-Length and Transfer-Encoding given; send one")
            }
            let codings = encodings.flatMap { $0.split(separator: ",") }.map { $0.trimmingASCIISpaces().lowercased() }
            guard codings == ["chunked"] else {
                throw HTTPError(.notImplemented, "Transfer-Encoding \(encodings.joined(separator: ", ")) is not supported (only chunked)")
            }
            return .chunked
        }
        guard let first = firstLength else { return .none }
        func isDigits(_ text: some StringProtocol) -> Bool { !text.isEmpty && text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        // One plain number (nearly every request) needs no list split and merged.
        let text: String?
        if lengths.isEmpty && isDigits(first) {
            text = first
        } else {
            let values = Set((lengths.isEmpty ? [first] : lengths).flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map { $0.trimmingASCIISpaces() })
            text = values.count == 1 ? values.first : nil
        }
        guard let text, isDigits(text), text.utf8.count <= 18, let length = Int(text) else {
            throw HTTPError(.badRequest, !lengths.isEmpty || first.contains(",") ? "conflicting Content-Length values" : "invalid Content-Length \(JSONText.quote(first))")
        }
        guard length <= limit else {
            throw HTTPError(.payloadTooLarge, "body of \(length) bytes exceeds this route's limit of \(limit)")
        }
        return length == 0 ? .none : .length(length)
    }

    // MARK: - Chunked bodies (RFC 9112 §7.1)

    /// Consumes chunks; returns true once the last chunk and trailers are read.
    private mutating func parseChunks(_ buffer: [UInt8], offset: inout Int) throws(HTTPError) -> Bool {
        while true {
            switch chunkState {
            case .size:
                guard let lineEnd = lineEnd(buffer, from: offset) else {
                    if buffer.count - offset > 1024 { throw HTTPError(.badRequest, "chunk size line too long") }
                    return false
                }
                var sizeBytes = buffer[offset..<lineEnd.contentEnd]
                if let semicolon = sizeBytes.firstIndex(of: 0x3B) { sizeBytes = sizeBytes[..<semicolon] }
                while let last = sizeBytes.last, last == 0x20 || last == 0x09 { sizeBytes.removeLast() }
                guard !sizeBytes.isEmpty, sizeBytes.count <= 15, sizeBytes.allSatisfy({ hexValue($0) != nil }) else {
                    throw HTTPError(.badRequest, "invalid chunk size")
                }
                let size = sizeBytes.reduce(0) { $0 << 4 | Int(hexValue($1)!) }
                let limit = limits.maxBodyBytes(forPath: head?.request.path ?? "")
                guard chunkedBody.count + size <= limit else {
                    throw HTTPError(.payloadTooLarge, "chunked body exceeds this route's limit of \(limit) bytes")
                }
                offset = lineEnd.next
                chunkState = size == 0 ? .trailers : .data(remaining: size)
            case .data(let remaining):
                let available = min(remaining, buffer.count - offset)
                chunkedBody.append(contentsOf: buffer[offset..<(offset + available)])
                offset += available
                guard available == remaining else {
                    chunkState = .data(remaining: remaining - available)
                    return false
                }
                chunkState = .dataEnd
            case .dataEnd:
                guard let lineEnd = lineEnd(buffer, from: offset) else {
                    if buffer.count - offset >= 2 { throw HTTPError(.badRequest, "chunk data longer than its size") }
                    return false
                }
                guard lineEnd.contentEnd == offset else { throw HTTPError(.badRequest, "chunk data longer than its size") }
                offset = lineEnd.next
                chunkState = .size
            case .trailers:
                guard let lineEnd = lineEnd(buffer, from: offset) else {
                    if buffer.count - offset > limits.maxHeaderBytes { throw HTTPError(.headerFieldsTooLarge, "chunked trailers too large") }
                    return false
                }
                let isEmptyLine = lineEnd.contentEnd == offset
                offset = lineEnd.next
                if isEmptyLine { return true }
            }
        }
    }

    private func lineEnd(_ buffer: [UInt8], from start: Int) -> (contentEnd: Int, next: Int)? {
        guard let newline = buffer[start...].firstIndex(of: 0x0A) else { return nil }
        let contentEnd = newline > start && buffer[newline - 1] == 0x0D ? newline - 1 : newline
        return (contentEnd, newline + 1)
    }
}

/// RFC 9110 token characters (method and header names).
func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
         UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
         UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        true
    default:
        false
    }
}

extension StringProtocol {
    func trimmingASCIISpaces() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }
}

extension HTTPRequest {
    /// Parses the first whole request in `bytes` (head and body), as the server would; nil
    /// when `bytes` end before it does. For tools and benchmarks.
    public static func parse(_ bytes: [UInt8], limits: ServerLimits = ServerLimits()) throws(HTTPError) -> HTTPRequest? {
        var parser = RequestParser(limits: limits)
        var offset = 0
        while true {
            switch try parser.next(bytes, offset: &offset, isEndOfInput: true) {
            case .request(let request): return request
            case .continueExpected: continue
            case .needMoreData: return nil
            }
        }
    }
}
