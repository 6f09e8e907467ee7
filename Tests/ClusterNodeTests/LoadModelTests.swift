import ClusterNode
import Raft
import Testing

@Suite struct LoadModelTests {
    @Test func patternsGiveTheirValuesOverTime() {
        #expect(LoadPattern.constant(700).millicores(atElapsedMs: 123_456) == 700)
        let step = LoadPattern.step(from: 200, to: 1_200, atMs: 1_000)
        #expect(step.millicores(atElapsedMs: 999) == 200)
        #expect(step.millicores(atElapsedMs: 1_000) == 1_200)
        let ramp = LoadPattern.ramp(from: 100, to: 1_100, periodMs: 1_000)
        #expect(ramp.millicores(atElapsedMs: 0) == 100)
        #expect(ramp.millicores(atElapsedMs: 500) == 600)
        #expect(ramp.millicores(atElapsedMs: 5_000) == 1_100)
        let sine = LoadPattern.sine(mean: 600, amplitude: 400, periodMs: 1_000)
        #expect(sine.millicores(atElapsedMs: 0) == 600)
        #expect(sine.millicores(atElapsedMs: 250) == 1_000)
        #expect(sine.millicores(atElapsedMs: 750) == 200)
        #expect(sine.millicores(atElapsedMs: 1_250) == 1_000)
        #expect(LoadPattern.sine(mean: 100, amplitude: 400, periodMs: 1_000).millicores(atElapsedMs: 750) == 0)
        let spike = LoadPattern.spike(base: 100, peak: 3_000, periodMs: 1_000, durationMs: 100)
        #expect(spike.millicores(atElapsedMs: 50) == 3_000)
        #expect(spike.millicores(atElapsedMs: 150) == 100)
        #expect(spike.millicores(atElapsedMs: 1_050) == 3_000)
        // Before the pattern was set: its start.
        #expect(ramp.millicores(atElapsedMs: -10) == 100)
    }

    @Test func aContainerTakesItsShareOfTheOfferedLoad() {
        let spec = ServiceSpec(replicas: 2, cpu: 100, memory: 64)
        let one = ContainerLoad(spec: spec, offered: 300, running: 2)
        #expect(one.cpuMillicores == 150)
        #expect(one.cpuPercent == 150)
        #expect(one.memoryMB == 64 + 24)  // request plus a quarter of it per unit of utilisation (1.5)
        #expect(one.rxBytesPerSecond == 150_000)
        #expect(one.txBytesPerSecond == 37_500)
        // Memory grows with load only up to half again the request.
        #expect(ContainerLoad(spec: spec, offered: 10_000, running: 2).memoryMB == 96)
        #expect(ContainerLoad(spec: spec, offered: 300, running: 0) == .zero)
    }

    @Test(arguments: [
        (#"{"pattern": "sine", "mean": 600, "amplitude": 400, "periodMs": 60000}"#, LoadPattern.sine(mean: 600, amplitude: 400, periodMs: 60_000)),
        (#"{"pattern": "constant", "millicores": 800, "requestId": "k1"}"#, LoadPattern.constant(800)),
        (#"{"pattern": "spike", "base": 1, "peak": 2, "periodMs": 10, "durationMs": 10}"#, LoadPattern.spike(base: 1, peak: 2, periodMs: 10, durationMs: 10)),
    ])
    func validPatternsParse(body: String, expected: LoadPattern) throws {
        #expect(try LoadPattern.parse(Array(body.utf8)).pattern == expected)
    }

    @Test(arguments: [
        (#"{"millicores": 800}"#, "missing field pattern"),
        (#"{"pattern": "square", "millicores": 800}"#, #"pattern must be constant, step, ramp, sine or spike, got "square""#),
        (#"{"pattern": "sine", "mean": 600, "periodMs": 60000}"#, "missing field amplitude for pattern sine"),
        (#"{"pattern": "ramp", "from": 0, "to": 10, "periodMs": 0}"#, "periodMs must be a whole number from 1"),
        (#"{"pattern": "constant", "millicores": -5}"#, "millicores must be a whole number from 0"),
        (#"{"pattern": "constant", "millicores": 1.5}"#, "millicores must be a whole number"),
        (#"{"pattern": "constant", "millicores": 5, "periodMs": 10}"#, "unknown field periodMs for pattern constant"),
        (#"{"pattern": "spike", "base": 1, "peak": 2, "periodMs": 10, "durationMs": 11}"#, "durationMs must be a whole number from 0 to 10"),
        (#"[1]"#, "expected an object"),
    ])
    func invalidPatternsNameTheProblem(body: String, message: String) {
        #expect { _ = try LoadPattern.parse(Array(body.utf8)) } throws: { error in
            guard case .invalid(let text)? = error as? NodeError else { return false }
            return text.hasPrefix(message)
        }
    }

    static func entry(_ index: UInt64, _ command: ClusterCommand) -> Entry {
        Entry(term: 1, index: LogIndex(index), data: ClusterCommandCodec.encode(command))
    }

    @Test func aLoadIsReplicatedStateThatSurvivesSnapshotsAndRetries() throws {
        var state = ClusterState(members: [8001, 8002], nodeResources: .standard(slots: 10))
        let created = ClusterCommand.createServices(requestID: "c", services: [PlannedService(spec: ServiceSpec(replicas: 2),
                                                    decision: Placement.Decision(replicas: [8001: 1, 8002: 1], pending: 0, pendingReason: nil))])
        _ = state.apply(Self.entry(1, created))
        let load = ServiceLoad(pattern: .sine(mean: 600, amplitude: 400, periodMs: 60_000), sinceMs: 1_700_000_000_000)
        let command = ClusterCommand.setServiceLoad(requestID: "l", serviceID: 1, load: load)
        #expect(try ClusterCommandCodec.decode(ClusterCommandCodec.encode(command)) == command)
        #expect(state.apply(Self.entry(2, command)) == .services([1]))
        #expect(state.services[1]?.load == load)
        #expect(state.services[1]?.updatedIndex == 2)
        // A retry with another start time is the same request: applied once, the first start kept.
        var later = load
        later.sinceMs += 5_000
        _ = state.apply(Self.entry(3, .setServiceLoad(requestID: "l", serviceID: 1, load: later)))
        #expect(state.services[1]?.load == load)
        // Another pattern under the same key is another request.
        guard case .rejected = state.apply(Self.entry(4, .setServiceLoad(requestID: "l", serviceID: 1, load: ServiceLoad(pattern: .constant(1), sinceMs: 0)))) else {
            Issue.record("a reused key with another pattern was applied")
            return
        }
        let restored = try ClusterState(snapshotData: state.snapshotData())
        #expect(restored.services[1]?.load == load)
        #expect(restored.snapshotData() == state.snapshotData())
        guard case .rejected = state.apply(Self.entry(5, .setServiceLoad(requestID: "m", serviceID: 9, load: load))) else {
            Issue.record("a load for a service that does not exist was applied")
            return
        }
    }

    @Test func everyNodeComputesTheSameFiguresForTheSameMoment() throws {
        let load = ServiceLoad(pattern: .spike(base: 100, peak: 3_000, periodMs: 1_000, durationMs: 100), sinceMs: 1_000)
        var state = ClusterState(members: [8001, 8002], nodeResources: .standard(slots: 10))
        _ = state.apply(Self.entry(1, .createServices(requestID: "c", services: [PlannedService(spec: ServiceSpec(replicas: 3, cpu: 250),
                                       decision: Placement.Decision(replicas: [8001: 2, 8002: 1], pending: 0, pendingReason: nil))])))
        _ = state.apply(Self.entry(2, .setServiceLoad(requestID: "l", serviceID: 1, load: load)))
        let record = try #require(state.services[1])
        let view = ServiceView(record, nowMs: 2_050)
        #expect(view.load?.offeredMillicores == 3_000)
        #expect(view.load?.perReplica.cpuMillicores == 1_000)
        #expect(view.load?.perReplica.cpuPercent == 400)
        #expect(ServiceView(record, nowMs: 2_050).load?.perReplica == view.load?.perReplica)
    }

    @Test func newReplicasGoWhereTheCPUIsActuallyFree() throws {
        // Two nodes with equal reservations; service 1's two replicas are busy, on 8001 only.
        var state = ClusterState(members: [8001, 8002], nodeResources: .standard(slots: 20))
        _ = state.apply(Self.entry(1, .createServices(requestID: "a", services: [PlannedService(spec: ServiceSpec(replicas: 2, cpu: 100),
                                       decision: Placement.Decision(replicas: [8001: 2], pending: 0, pendingReason: nil))])))
        _ = state.apply(Self.entry(2, .createServices(requestID: "b", services: [PlannedService(spec: ServiceSpec(replicas: 2, cpu: 100),
                                       decision: Placement.Decision(replicas: [8002: 2], pending: 0, pendingReason: nil))])))
        _ = state.apply(Self.entry(3, .setServiceLoad(requestID: "l", serviceID: 1, load: ServiceLoad(pattern: .constant(3_000), sinceMs: 0))))
        let inUse = state.cpuInUse(atMs: 1_000)
        #expect(inUse == [8001: 3_000])
        var usage = state.usage()
        let capacity = state.capacity
        // By reservations alone the nodes tie and the lower ID wins; by use, 8002 is freer.
        var tie = usage
        #expect(Placement.place(count: 1, demand: ServiceSpec(replicas: 1).demand, capacity: capacity, usage: &tie, healthy: [8001, 8002]).replicas == [8001: 1])
        let placed = Placement.place(count: 1, demand: ServiceSpec(replicas: 1).demand, capacity: capacity, usage: &usage,
                                     healthy: [8001, 8002], cpuInUse: inUse)
        #expect(placed.replicas == [8002: 1])
    }
}
