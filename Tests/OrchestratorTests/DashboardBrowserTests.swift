#if canImport(Glibc)
@preconcurrency import Glibc
#endif
import Foundation
import Testing
import Transport

/// Headless Chromium (Debian's `chromium` and `chromium-driver`, driven over WebDriver with
/// our own HTTP client) against a real orchestrator: the dashboard shows the cluster, and
/// clicks cut a link, kill the leader and submit a service.
enum Browser {
    static func find(_ name: String) -> String? { TestTools.find(name) }

    static var isAvailable: Bool { find("chromedriver") != nil && (find("chromium") != nil || find("chromium-browser") != nil) }
}

/// A WebDriver session with chromedriver.
final class WebDriver {
    let process = Process()
    let port: Int
    let client: HTTPClient
    var session = ""

    init() throws {
        port = OrchestratorHarness.freePortRun(1)
        process.executableURL = URL(fileURLWithPath: Browser.find("chromedriver")!)
        process.arguments = ["--port=\(port)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var configuration = HTTPClient.Configuration()
        configuration.requestTimeoutSeconds = 30
        client = HTTPClient(configuration: configuration)
        let deadline = Date().addingTimeInterval(10)
        while (try? client.send("GET", host: "127.0.0.1", port: port, path: "/status"))?.status != .ok {
            guard Date() < deadline else { throw HarnessError("chromedriver did not answer") }
            usleep(50_000)
        }
        let capabilities = #"{"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"}, "goog:chromeOptions": {"args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,1000"]}}}}"#
        let created = try call("POST", "/session", capabilities)
        session = ((created["value"] as? [String: Any])?["sessionId"] as? String) ?? ""
        guard !session.isEmpty else { throw HarnessError("no WebDriver session: \(created)") }
    }

    @discardableResult
    func call(_ method: String, _ path: String, _ body: String? = nil) throws -> [String: Any] {
        let response = try client.send(method, host: "127.0.0.1", port: port, path: path, headers: HTTPHeaders([("Content-Type", "application/json")]),
                                       body: Array((body ?? (method == "POST" ? "{}" : "")).utf8))
        return (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
    }

    func open(_ url: String) throws { try call("POST", "/session/\(session)/url", #"{"url": "\#(url)"}"#) }

    /// Runs `script` in the page and returns its value.
    func run(_ script: String, _ arguments: String...) throws -> Any? {
        let body = try JSONSerialization.data(withJSONObject: ["script": script, "args": arguments])
        return try call("POST", "/session/\(session)/execute/sync", String(decoding: body, as: UTF8.self))["value"]
    }

    /// Waits until `script` returns true; the seconds it took, or nil.
    func wait(_ script: String, seconds: Double) throws -> Double? {
        let started = Date()
        while Date().timeIntervalSince(started) < seconds {
            if try run("return !!(" + script + ")") as? Bool == true { return Date().timeIntervalSince(started) }
            usleep(50_000)
        }
        return nil
    }

    func screenshot(to path: String) throws {
        guard let base64 = try call("GET", "/session/\(session)/screenshot")["value"] as? String, let data = Data(base64Encoded: base64) else { return }
        try data.write(to: URL(fileURLWithPath: path))
    }

    func consoleErrors() throws -> [String] {
        let entries = try call("POST", "/session/\(session)/se/log", #"{"type": "browser"}"#)["value"] as? [[String: Any]] ?? []
        return entries.filter { $0["level"] as? String == "SEVERE" }.compactMap { $0["message"] as? String }
    }

    func quit() {
        _ = try? client.send("DELETE", host: "127.0.0.1", port: port, path: "/session/\(session)", timeoutSeconds: 5)
        kill(process.processIdentifier, SIGKILL)  // chromedriver ends its browser with the session
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { usleep(10_000) }
    }
}

@Suite(.serialized) struct DashboardBrowserTests {
    @Test(.enabled(if: Browser.isAvailable, "needs Debian's chromium and chromium-driver (.ci/run installs them); skipped: not installed here"))
    func theDashboardShowsTheClusterAndClicksBreakIt() throws {
        let orchestrator = try OrchestratorHarness(nodes: 5)
        defer { orchestrator.stop() }
        let summary = try orchestrator.waitForLeader()
        let browser = try WebDriver()
        defer { browser.quit() }
        let shots = NSTemporaryDirectory() + "dashboard-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)
        try browser.open("http://127.0.0.1:\(orchestrator.port)/dashboard")

        // Five nodes, exactly one leader, with the term the API reports.
        #expect(try browser.wait("document.querySelectorAll('.node').length === 5 && document.querySelectorAll('.node.leader').length === 1", seconds: 10) != nil)
        let leader = try #require((summary["leader"] as? String)?.split(separator: ":").last.flatMap { Int($0) })
        let term = try #require(summary["term"] as? Int)
        #expect(try browser.run("return document.querySelector('.node.leader').dataset.node") as? String == String(leader))
        #expect((try browser.run("return document.querySelector('.cluster .leader').textContent") as? String)?.contains("term \(term)") == true)
        try browser.screenshot(to: shots + "/1-cluster.png")

        // Cut the leader's link to one follower by click: that direction shows cut, and the node's table says so.
        let follower = try #require(try orchestrator.nodes().first { $0.port != leader }?.port)
        _ = try browser.run("document.querySelector('td.link[data-from=\"\(leader)\"][data-to=\"\(follower)\"]').click()")
        #expect(try browser.wait("document.querySelector('td.link[data-from=\"\(leader)\"][data-to=\"\(follower)\"]').dataset.state === 'cut'", seconds: 5) != nil)
        let table = try orchestrator.json("GET", "/connections", port: leader).body as? [String: Any]
        #expect(table?["localhost:\(follower)"] as? Int == 0, "\(String(describing: table))")
        #expect(try browser.run("return document.querySelector('td.link[data-from=\"\(follower)\"][data-to=\"\(leader)\"]').dataset.state") as? String == "up")
        try browser.screenshot(to: shots + "/2-link-cut.png")

        // Kill the leader by click: a new leader shows within 3 s, without reloading.
        _ = try browser.run("document.querySelector('.node[data-node=\"\(leader)\"] button[data-action=\"kill\"]').click()")
        let shown = try browser.wait("(() => { const l = document.querySelector('.node.leader'); return l && l.dataset.node !== '\(leader)'; })()", seconds: 3)
        #expect(shown != nil, "no new leader shown within 3 s")
        try browser.screenshot(to: shots + "/3-new-leader.png")

        // Submit a service: its placement shows.
        _ = try browser.run("const i = document.querySelector('.new-replicas'); i.value = '4'; document.querySelector('.submit-service').click();")
        #expect(try browser.wait("[...document.querySelectorAll('tr[data-service] td.placement')].some(td => td.textContent.includes('×'))", seconds: 5) != nil)
        try browser.screenshot(to: shots + "/4-service.png")

        // The timeline shows both leaders' terms and the kill; the commit rate and latency show.
        #expect(try browser.wait("document.querySelectorAll('svg.timeline rect[data-role=\"leader\"]').length >= 2 && document.querySelectorAll('svg.timeline line.fault').length >= 1", seconds: 5) != nil)
        #expect(try browser.wait("document.querySelector('.rate').textContent.includes('commits/s')", seconds: 10) != nil)

        // Partition by groups: two followers in group B are cut from the rest, both ways.
        let living = try orchestrator.nodes().filter { $0.port != leader }.map(\.port)
        let groupB = Array(living.prefix(2))
        for port in groupB {
            _ = try browser.run("const s = document.querySelector('.node[data-node=\"\(port)\"] select.group'); s.value = 'B'; s.dispatchEvent(new Event('change'));")
        }
        _ = try browser.run("document.querySelector('button.partition').click()")
        let other = try #require(living.first { !groupB.contains($0) })
        #expect(try browser.wait("document.querySelector('td.link[data-from=\"\(groupB[0])\"][data-to=\"\(other)\"]').dataset.state === 'cut'", seconds: 5) != nil)
        let cutTable = try orchestrator.json("GET", "/connections", port: groupB[0]).body as? [String: Any]
        #expect(cutTable?["localhost:\(other)"] as? Int == 0 && cutTable?["localhost:\(groupB[1])"] as? Int == 1, "\(String(describing: cutTable))")
        try browser.screenshot(to: shots + "/5-partitioned.png")

        // An experiment started from the page runs, and its report opens from the list.
        let plan = #"{"name": "page", "seconds": 2, "clusters": [{"name": "one", "nodes": 3}], "workload": {"clients": 1}, "faults": []}"#
        _ = try browser.run("document.getElementById('experiments').open = true; document.getElementById('plan').value = arguments[0]; document.getElementById('startExperiment').click();", plan)
        #expect(try browser.wait("!!document.querySelector('#experimentList a[href$=\"/report\"]')", seconds: 40) != nil)
        let href = try browser.run("return document.querySelector('#experimentList a').getAttribute('href')") as? String
        let report = try orchestrator.client.send("GET", host: "127.0.0.1", port: orchestrator.port, path: try #require(href))
        #expect(report.status == .ok && report.bodyText.contains("<svg"))
        try browser.screenshot(to: shots + "/6-experiment.png")

        // Heal, then grow the cluster to six nodes by click (the prompt answered by the test).
        _ = try browser.run("document.querySelector('.cluster h2 button').click()")
        #expect(try browser.wait("document.querySelector('td.link[data-from=\"\(groupB[0])\"][data-to=\"\(other)\"]').dataset.state === 'up'", seconds: 5) != nil)
        // Pause a follower by click: it shows paused (not down), then resumes.
        let pausedNode = groupB[1]
        _ = try browser.run("document.querySelector('.node[data-node=\"\(pausedNode)\"] button[data-action=\"pause\"]').click()")
        #expect(try browser.wait("document.querySelector('.node[data-node=\"\(pausedNode)\"]').dataset.role === 'paused'", seconds: 5) != nil)
        _ = try browser.run("document.querySelector('.node[data-node=\"\(pausedNode)\"] button[data-action=\"resume\"]').click()")
        #expect(try browser.wait("['follower', 'leader', 'candidate'].includes(document.querySelector('.node[data-node=\"\(pausedNode)\"]').dataset.role)", seconds: 5) != nil)
        _ = try browser.run("window.prompt = () => '6'; document.querySelector('button.resize').click();")
        #expect(try browser.wait("document.querySelectorAll('#cluster-0 .node').length === 6 && document.querySelectorAll('#cluster-0 .node.leader').length === 1", seconds: 30) != nil)
        #expect(try orchestrator.nodes().count == 6)
        try browser.screenshot(to: shots + "/7-resized.png")

        let errors = try browser.consoleErrors()
        #expect(errors.isEmpty, "console errors: \(errors)")
        print("dashboard screenshots: \(shots)")
    }
}
