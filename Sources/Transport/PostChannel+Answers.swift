/// Reading the answers to pipelined posts out of what the connection received.
extension PostChannel {
    /// Takes one whole answer off the front of `buffer`: its status, and whether it closes
    /// the connection. Nil while the answer is incomplete.
    static func takeAnswer(from buffer: inout [UInt8]) -> (status: Int, closes: Bool)? {
        guard let end = headEnd(buffer) else { return nil }
        let headText = String(decoding: buffer[..<end], as: UTF8.self)
        var length = 0
        var closes = false
        for line in headText.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingASCIISpaces()
            if name == "content-length" { length = Int(value) ?? 0 }
            if name == "connection", value.lowercased() == "close" { closes = true }
        }
        guard buffer.count >= end + length else { return nil }
        let status = headText.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        buffer.removeFirst(end + length)
        return (status, closes)
    }

    private static func headEnd(_ buffer: [UInt8]) -> Int? {
        guard buffer.count >= 4 else { return nil }
        for position in 0...(buffer.count - 4)
        where buffer[position] == 13 && buffer[position + 1] == 10 && buffer[position + 2] == 13 && buffer[position + 3] == 10 {
            return position + 4
        }
        return nil
    }
}
