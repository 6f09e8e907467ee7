import Foundation
import Testing
@testable import Transport

@Suite struct BriefSpinTests {
    @Test func workInABurstMakesBusyAndSparseWorkNever() {
        var tracker = BusyTracker()
        // An idle node: one piece of work every 50 ms, and two close together (a leader's
        // two followers answering one heartbeat), never busy.
        for step in 0..<20 {
            let at = Double(step) * 0.05
            tracker.noteWork(at: at)
            tracker.noteWork(at: at + 0.000_3)
            #expect(!tracker.isBusy(at: at + 0.000_4), "busy after a pair of pieces at \(at)")
        }
        // Four pieces within the window: busy until the window after the last.
        let start = 10.0
        for piece in 0..<4 { tracker.noteWork(at: start + Double(piece) * 0.000_4) }
        let last = start + 3 * 0.000_4
        #expect(tracker.isBusy(at: last + 0.001))
        #expect(!tracker.isBusy(at: last + BusyTracker.window + 0.000_1))
        // Work that slows down ends the busy spell.
        tracker.noteWork(at: last + 0.01)
        #expect(!tracker.isBusy(at: last + 0.01 + 0.000_1))
    }

    @Test func pollReturnsOnceReadyAndGivesUpWithinItsBudget() {
        var looks = 0
        #expect(BriefSpin.poll {
            looks += 1
            return true
        })
        #expect(looks == 1)
        // Ready at a later look: found then, unless a yield ran another thread (a busy
        // machine), when the poll looks once more and gives up.
        var later = 0
        let found = BriefSpin.poll {
            later += 1
            return later >= 3
        }
        #expect(found == (later == 3), "found \(found) after \(later) looks")
        let started = monotonicSeconds()
        var never = 0
        #expect(!BriefSpin.poll {
            never += 1
            return false
        })
        let took = monotonicSeconds() - started
        #expect(never >= 1)
        // The budget is 100 us; a slow machine may stretch one yield, never by this much.
        #expect(took < 0.05, "polled for \(took) s")
    }

    /// An idle loop sleeps at once; one answering requests back to back looks for the next
    /// before it sleeps.
    @Test func aLoopPollsOnlyWhileRequestsComeInQuickSuccession() throws {
        var router = Router()
        router.addImmediate("GET", "/n") { _ in HTTPResponse(body: Array("n".utf8)) }
        var limits = ServerLimits()
        limits.eventLoops = 1
        let server = HTTPServer(port: 0, limits: limits, router: router)
        try server.start()
        defer { server.stop() }
        let connection = try RawConnection(port: server.port)
        // Sparse: 10 requests 20 ms apart.
        for _ in 0..<10 {
            try connection.send("GET /n HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(connection.readResponses(1).first?.body == "n")
            usleep(20_000)
        }
        #expect(server.eventLoopPolls == 0, "an idle loop polled \(server.eventLoopPolls) times")
        // Back to back: each answer read, the next request sent at once (on a loaded machine
        // a round trip may take longer than usual: up to 10 s of them).
        let deadline = monotonicSeconds() + 10
        var sent = 0
        while server.eventLoopPolls == 0, monotonicSeconds() < deadline {
            try connection.send("GET /n HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(connection.readResponses(1).first?.body == "n")
            sent += 1
        }
        #expect(server.eventLoopPolls > 0, "a loop answering \(sent) requests back to back never polled")
    }
}
