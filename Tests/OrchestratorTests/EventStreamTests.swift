#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
@testable import Orchestrator
import Testing
@testable import Transport

/// The live event stream on its own: order, resuming, and readers that fall behind.
@Suite struct EventStreamTests {
    @Test func eventsComeInOrderAndAReaderResumesAfterItsLastID() {
        let hub = EventHub(capacity: 100)
        for number in 1...10 { hub.publish("test", cluster: number % 2 == 0 ? "a" : "b", ["n": number]) }
        let all = hub.events(after: 3, cluster: nil, waitingUpTo: 0)
        #expect(all.events.map(\.id) == Array(4...10) && all.missed == 0 && all.last == 10)
        let onlyA = hub.events(after: 0, cluster: "a", waitingUpTo: 0)
        #expect(onlyA.events.map(\.id) == [2, 4, 6, 8, 10] && onlyA.last == 10)
        #expect(onlyA.events.allSatisfy { $0.json.contains("\"cluster\":\"a\"") && $0.json.contains("\"id\":\($0.id)") })
        // Nothing newer: the reader waits (here at most 50 ms) and gets nothing.
        let started = Date()
        #expect(hub.events(after: 10, cluster: nil, waitingUpTo: 0.05).events.isEmpty && Date().timeIntervalSince(started) >= 0.04)
    }

    @Test func aReaderThatFellBehindTheRingIsToldWhatItMissedAndMemoryStaysBounded() {
        let hub = EventHub(capacity: 100)
        for number in 1...1_000 { hub.publish("test", cluster: nil, ["n": number]) }
        let behind = hub.events(after: 0, cluster: nil, waitingUpTo: 0)
        #expect(behind.missed > 0 && behind.events.first.map { $0.id == behind.missed + 1 } == true)
        #expect(behind.events.count <= 125 && behind.last == 1_000)
    }

    @Test func aStalledSubscriberNeverSlowsThePublisherOrOtherSubscribers() throws {
        let hub = EventHub(capacity: 1_000)
        var router = Router()
        router.add("GET", "/events") { request in try hub.response(for: request, cluster: nil) }
        // A long write timeout: a publisher that waited on the stalled subscriber would take at
        // least that long, so the bound below tells coupling from a slow machine.
        var limits = ServerLimits()
        limits.writeTimeoutSeconds = 60
        let server = HTTPServer(port: OrchestratorHarness.freePortRun(1), limits: limits, router: router)
        try server.start()
        defer { server.stop(graceSeconds: 0) }
        // A subscriber that never reads: its socket buffers fill, then its writes time out.
        let stalled = try Socket.connect(host: "127.0.0.1", port: server.port, timeoutSeconds: 2)
        defer { close(stalled) }
        var small: Int32 = 4_096
        setsockopt(stalled, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        try Socket.sendAll(stalled, Array("GET /events HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        // A subscriber that reads, resuming from the start.
        let reader = try Socket.connect(host: "127.0.0.1", port: server.port, timeoutSeconds: 2)
        defer { close(reader) }
        try Socket.sendAll(reader, Array("GET /events?since=0 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        usleep(100_000)
        let padding = String(repeating: "x", count: 2_000)
        let started = Date()
        for number in 1...5_000 { hub.publish("test", cluster: nil, ["n": number, "padding": padding]) }
        let publishing = Date().timeIntervalSince(started)
        #expect(publishing < 30, "publishing took \(publishing) s with a stalled subscriber")
        // The reader sees the newest event (skipping what left the ring while it read).
        var received = ""
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let deadline = Date().addingTimeInterval(10)
        while !received.contains("\"n\":5000"), Date() < deadline {
            Socket.setTimeout(reader, option: SO_RCVTIMEO, seconds: 1)
            guard let count = try? Socket.receive(reader, into: &chunk), count > 0 else { continue }
            received += String(decoding: chunk[0..<count], as: UTF8.self)
            if received.count > 200_000 { received = String(received.suffix(20_000)) }
        }
        #expect(received.contains("\"n\":5000"))
        #expect(hub.events(after: 0, cluster: nil, waitingUpTo: 0).missed >= 3_750)  // the ring kept at most capacity and a quarter
    }

    @Test func aLeaderKilledThroughTheAPIShowsAsAFaultThenANewLeader() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let leader = try #require((summary["leader"] as? String)?.split(separator: ":").last.flatMap { Int($0) })
        let stream = try Socket.connect(host: "127.0.0.1", port: orchestrator.port, timeoutSeconds: 2)
        defer { close(stream) }
        try Socket.sendAll(stream, Array("GET /clusters/0/events HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        var received = ""
        var chunk = [UInt8](repeating: 0, count: 65_536)
        func read(until done: (String) -> Bool, seconds: Double) {
            let deadline = Date().addingTimeInterval(seconds)
            while !done(received), Date() < deadline {
                Socket.setTimeout(stream, option: SO_RCVTIMEO, seconds: 0.5)
                guard let count = try? Socket.receive(stream, into: &chunk), count > 0 else { continue }
                received += String(decoding: chunk[0..<count], as: UTF8.self)
            }
        }
        // The first poll reports every node's role, the leader among them.
        read(until: { $0.contains("event: leader") }, seconds: 5)
        #expect(received.hasPrefix("HTTP/1.1 200") && received.contains("text/event-stream"), "\(received.prefix(300))")
        #expect(try orchestrator.json("POST", "/clusters/0/nodes/\(leader)/kill").status == 200)
        let killedAt = Date()
        read(until: { text in
            guard let fault = text.range(of: "\"action\":\"kill\"") else { return false }
            return text[fault.upperBound...].contains("event: leader")
        }, seconds: 5)
        let afterKill = received[(received.range(of: "\"action\":\"kill\"")?.upperBound ?? received.endIndex)...]
        #expect(afterKill.contains("event: leader") && Date().timeIntervalSince(killedAt) < 3, "\(received)")
        #expect(!afterKill.contains("\"leader\":\"localhost:\(leader)\",\"time\""), "the killed node is not the new leader")
        // Ids increase one by one.
        let ids = received.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap { UInt64($0.dropFirst(4)) }
        #expect(!ids.isEmpty && ids == Array(ids.first!...ids.last!).filter { ids.contains($0) } && ids == ids.sorted())
    }
}
