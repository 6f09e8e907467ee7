#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// Reading the answers to pipelined posts, or to a stream's switch of protocols, out of what
/// the connection received (on the loop's thread or a sender's, under the channel's lock).
extension PostChannel {
    /// Reads what arrived without blocking and counts the answers; the peer closing its end,
    /// an answer that closes or one to nothing ends the connection.
    func readAnswers(now: Double) {
        while state == .open {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                answers.append(contentsOf: chunk[0..<count])
                lastProgress = now
                if upgradeRequest != nil {
                    guard takeSwitchAnswer() else { return endConnection() }
                    continue
                }
                while let answer = Self.takeAnswer(from: &answers) {
                    guard answer.status >= 200 else { continue }  // an interim answer
                    guard inFlightHead < inFlight.count else { return endConnection() }
                    if answer.status >= 300 { unreportedRejected += inFlight[inFlightHead] }
                    inFlightHead += 1
                    if answer.closes { return endConnection() }
                }
                if inFlightHead == inFlight.count {
                    inFlight.removeAll(keepingCapacity: true)
                    inFlightHead = 0
                }
                if answers.count > 64 * 1024 { return endConnection() }  // not answers of ours
                continue
            }
            let code = errno
            if count < 0 && code == EINTR { continue }
            if count < 0 && (code == EAGAIN || code == EWOULDBLOCK) { return }
            return endConnection()  // closed by the peer, or failed
        }
    }

    /// Streamed: takes the `101` from what arrived; false when the peer refused (counting the
    /// messages written as rejected) or said anything after it.
    private func takeSwitchAnswer() -> Bool {
        while !isUpgraded, let answer = Self.takeAnswer(from: &answers) {
            if answer.status == HTTPStatus.switchingProtocols.rawValue {
                isUpgraded = true
            } else if answer.status >= 200 {
                unreportedRejected += sentOnConnection
                sentOnConnection = 0
                return false
            }
        }
        return !(isUpgraded && !answers.isEmpty) && answers.count <= 64 * 1024
    }

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
