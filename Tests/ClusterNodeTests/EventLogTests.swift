import ClusterNode
import Foundation
import Testing

@Suite struct EventLogTests {
    @Test func linesAreTimestampedAppendedAcrossOpensAndRotated() throws {
        let path = NSTemporaryDirectory() + "event-log-\(UUID().uuidString).log"
        defer { for suffix in ["", ".1", ".2", ".3"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let first = try EventLog(path: path, maxBytes: 400, takesStandardStreams: false)
        first.write("first run\nwith a newline")
        let reopened = try EventLog(path: path, maxBytes: 400, takesStandardStreams: false)
        reopened.write("second run")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].hasSuffix(" first run with a newline") && lines[1].hasSuffix(" second run"))
        // RFC 3339 in UTC with milliseconds, then the message.
        #expect(lines[0].range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "#, options: .regularExpression) != nil, "\(lines[0])")
        for index in 0..<40 { reopened.write("event \(index) " + String(repeating: "x", count: 40)) }
        let current = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        #expect(current <= 400)
        #expect(FileManager.default.fileExists(atPath: path + ".1") && FileManager.default.fileExists(atPath: path + ".2"))
        #expect(!FileManager.default.fileExists(atPath: path + ".3"))
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("event 39"))
    }
}
