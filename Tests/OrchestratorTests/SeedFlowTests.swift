import Foundation
import Testing
import Transport

/// Seed 000's services with published ports and desired-state file, and seed 004's node
/// agent, on real processes.
@Suite(.serialized) struct SeedFlowTests {
    /// Polls `read` until `done` holds of its value (at most `seconds`); returns the last value.
    private func eventually<T>(within seconds: Double = 10, _ read: () throws -> T, until done: (T) -> Bool) throws -> T {
        let deadline = Date().addingTimeInterval(seconds)
        var value = try read()
        while !done(value), Date() < deadline {
            usleep(50_000)
            value = try read()
        }
        return value
    }

    private func services(_ body: Any?) -> [[String: Any]] { (body as? [String: Any])?["services"] as? [[String: Any]] ?? [] }

    @Test func publishedServicesAndTheDesiredStateFile() throws {
        let file = NSTemporaryDirectory() + "desired-\(UUID().uuidString).json"
        try #"{"services": [{"name": "gateway", "image": "nginx:1.27", "replicas": 2, "publish": 8080}, {"name": "db", "image": "postgres:16"}]}"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let orchestrator = try OrchestratorHarness(nodes: 3, extraArguments: ["--desired-state", file])
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()

        // The file's vital services are created by the leader's reconcile loop.
        let kept = try eventually({ try orchestrator.json("GET", "/clusters/0/desired-state").body }) { body in
            services(body).count == 2 && services(body).allSatisfy { $0["status"] as? String == "kept" && $0["placed"] as? Int == $0["replicas"] as? Int }
        }
        let gateway = try #require(services(kept).first { $0["name"] as? String == "gateway" }, "\(String(describing: kept))")
        let gatewayID = try #require(gateway["serviceId"] as? Int)

        // Seed 000's create: 201 (not 400), a free port picked and reported.
        let any = try orchestrator.json("POST", "/clusters/0/services", #"{"image": "nginx", "publish": true}"#)
        #expect(any.status == 201, "\(any.text)")
        let anyService = try #require(any.body as? [String: Any])
        #expect(anyService["publishedPort"] as? Int == 30_000 && anyService["vital"] as? Bool == false)
        // Port 8080 is the gateway's on two of the three nodes: one replica fits, on the third.
        let taken = try orchestrator.json("POST", "/clusters/0/services", #"{"image": "redis", "publish": 8080, "replicas": 3}"#)
        #expect(taken.status == 201, "\(taken.text)")
        let takenService = try #require(taken.body as? [String: Any])
        let gatewayPlacement = (try orchestrator.json("GET", "/clusters/0/services/\(gatewayID)").body as? [String: Any])?["placement"] as? [String: Int]
        let gatewayNodes = Set((gatewayPlacement ?? [:]).keys)
        let redisNodes = Set((takenService["placement"] as? [String: Int] ?? [:]).keys)
        #expect(redisNodes.count == 1 && redisNodes.isDisjoint(with: gatewayNodes) && takenService["pending"] as? Int == 2)
        let bad = try orchestrator.json("POST", "/clusters/0/services", #"{"image": "x", "publish": "yes"}"#)
        #expect(bad.status == 400 && bad.text.contains("publish"))
        let running = try orchestrator.json("GET", "/clusters/0/services/running")
        #expect(((running.body as? [String: Any])?["results"] as? [[String: Any]])?.count == 4, "\(running.text)")

        // A vital service deleted is put back; services created through the API stay. (Redis
        // goes first: with two replicas pending on port 8080, it would take the freed nodes.)
        let redisID = try #require(takenService["id"] as? Int)
        #expect(try orchestrator.json("DELETE", "/clusters/0/services/\(redisID)").status == 204)
        #expect(try orchestrator.json("DELETE", "/clusters/0/services/\(gatewayID)").status == 204)
        let back = try eventually({ try orchestrator.json("GET", "/clusters/0/desired-state").body }) { body in
            services(body).first { $0["name"] as? String == "gateway" }.map { $0["status"] as? String == "kept" && $0["placed"] as? Int == 2 } ?? false
        }
        let newGateway = services(back).first { $0["name"] as? String == "gateway" }
        #expect(newGateway?["serviceId"] as? Int != gatewayID && newGateway?["placed"] as? Int == 2, "\(String(describing: back))")
        let anyID = try #require(anyService["id"] as? Int)
        #expect(try orchestrator.json("GET", "/clusters/0/services/\(anyID)").status == 200)
        // Scaled by a client, it is scaled back to the file's count.
        let dbID = try #require(services(back).first { $0["name"] as? String == "db" }?["serviceId"] as? Int)
        #expect(try orchestrator.json("PATCH", "/clusters/0/services/\(dbID)", #"{"replicas": 3}"#).status == 200)
        let scaledBack = try eventually({ try orchestrator.json("GET", "/clusters/0/services/\(dbID)").body as? [String: Any] }) { $0?["replicas"] as? Int == 1 }
        #expect(scaledBack?["replicas"] as? Int == 1)
    }

    @Test func theNodeAgentCreatesListsAndRemovesContainersOnItsNode() throws {
        let orchestrator = try OrchestratorHarness(nodes: 3)
        defer { orchestrator.stop() }
        try orchestrator.waitForLeader()
        let follower = try #require(try orchestrator.nodes().first { $0.state == "follower" }?.port)

        // Form fields as seed 004 takes them, on a follower: created on that node, 201, Docker's shape.
        let form = try orchestrator.client.send("POST", host: "127.0.0.1", port: follower, path: "/containers",
                                                headers: HTTPHeaders([("Content-Type", "application/x-www-form-urlencoded")]),
                                                body: Array("image=nginx&service=web&port=9000".utf8))
        #expect(form.status.rawValue == 201, "\(form.bodyText)")
        let created = try #require(try JSONSerialization.jsonObject(with: Data(form.body)) as? [String: Any])
        let id = try #require(created["Id"] as? String)
        let bindings = ((created["NetworkSettings"] as? [String: Any])?["Ports"] as? [String: [[String: String]]])?["80/tcp"]
        #expect(bindings?.first?["HostPort"] == "9000")
        // The same port again on that node: a conflict naming the holder.
        let clash = try orchestrator.json("POST", "/containers", #"{"image": "nginx", "port": 9000}"#, port: follower)
        #expect(clash.status == 409 && clash.text.contains("port 9000"), "\(clash.text)")
        // JSON without a port: one is allocated.
        let json = try orchestrator.json("POST", "/containers", #"{"image": "redis", "service": "web"}"#, port: follower)
        #expect(json.status == 201, "\(json.text)")
        #expect(try orchestrator.json("POST", "/containers", #"{"service": "web"}"#, port: follower).status == 400)

        // The list, filtered by service, in Docker's shape (the follower applies shortly after the commit).
        let listed = try eventually({ try orchestrator.json("GET", "/containers?service=web", port: follower).body as? [[String: Any]] ?? [] }) { $0.count == 2 }
        #expect(listed.count == 2)
        for container in listed {
            let ports = try #require(container["Ports"] as? [[String: Any]])
            #expect(ports.count == 1 && PortRange.contains(ports[0]["PublicPort"] as? Int ?? 0))
            #expect(container["Status"] as? String == "Up" && abs(Double(container["Created"] as? Int ?? 0) - Date().timeIntervalSince1970) < 60)
        }
        let status = try #require(try orchestrator.json("GET", "/container/\(id)/status", port: follower).body as? [String: Any])
        #expect(status["cpu"] != nil && status["memory"] as? Int == 64 * 1_024 && status["net"] is [String: Int])
        let host = try #require(try orchestrator.json("GET", "/status", port: follower).body as? [String: Any])
        #expect((host["cpus"] as? [String: Int])?["cpu0"] != nil && host["nb_containers"] as? Int == 2)
        #expect((host["memory"] as? Int ?? 0) - (host["free_memory"] as? Int ?? 0) == 2 * 64 * 1_024)
        #expect(((host["net"] as? [String: Any])?["eth0"] as? [String: Int])?["rx"] != nil)
        let missing = try orchestrator.json("GET", "/container/nope", port: follower)
        #expect(missing.status == 404 && missing.text == #"{"error":"not found"}"#)

        // Delete: 204, then gone from the node and from the cluster.
        #expect(try orchestrator.json("DELETE", "/container/\(id)", port: follower).status == 204)
        let gone = try eventually({ try orchestrator.json("GET", "/container/\(id)", port: follower).status }) { $0 == 404 }
        #expect(gone == 404)
        let remaining = (try orchestrator.json("GET", "/clusters/0/containers").body as? [String: Any])?["results"] as? [[String: Any]]
        #expect(remaining?.count == 1)

        // A service replica is a container too: deleting it leaves the service one replica fewer.
        let service = try orchestrator.json("POST", "/clusters/0/service", #"{"container": {"id": 1, "replicas": 6}}"#)
        #expect(service.status == 201)
        let before = try #require((try orchestrator.json("GET", "/clusters/0/services/1").body as? [String: Any])?["placement"] as? [String: Int])
        let here = try #require(before["localhost:\(follower)"], "six replicas on three nodes leave none on \(follower): \(before)")
        let replicas = try eventually({ try orchestrator.json("GET", "/containers", port: follower).body as? [[String: Any]] ?? [] }) { list in
            list.filter { ($0["Labels"] as? [String: String])?["serviceId"] == "1" }.count == here
        }
        let replica = try #require(replicas.first { ($0["Labels"] as? [String: String])?["serviceId"] == "1" }?["Id"] as? String)
        #expect(try orchestrator.json("DELETE", "/container/\(replica)", port: follower).status == 204)
        let after = try orchestrator.json("GET", "/clusters/0/services/1").body as? [String: Any]
        #expect(after?["replicas"] as? Int == 5 && (after?["placement"] as? [String: Int])?["localhost:\(follower)"] ?? 0 == here - 1)
        // The node remembers the replica that left as exited, with when; the default list shows running ones only.
        let all = try eventually({ try orchestrator.json("GET", "/containers?all=1", port: follower).body as? [[String: Any]] ?? [] }) { list in
            list.contains { $0["State"] as? String == "exited" }
        }
        let exited = try #require(all.first { $0["State"] as? String == "exited" }?["Id"] as? String)
        #expect(exited == replica, "the container deleted is the one that exited")
        let running = try orchestrator.json("GET", "/containers", port: follower).body as? [[String: Any]] ?? []
        #expect(!running.contains { $0["Id"] as? String == exited })
        let inspected = try orchestrator.json("GET", "/container/\(exited)", port: follower).body as? [String: Any]
        #expect(((inspected?["State"] as? [String: Any])?["FinishedAt"] as? Double ?? 0) > 0, "\(String(describing: inspected))")
    }

    private let PortRange = 9_000...32_767
}
