@testable import Orchestrator
import Testing

/// The experiment checker on hand-made histories.
@Suite struct HistoryCheckerTests {
    typealias Operation = History.Operation

    static func op(_ kind: String, _ value: Int?, _ invoke: Double, _ complete: Double?, _ outcome: Operation.Outcome = .ok, absent: Bool = false) -> Operation {
        Operation(cluster: "a", client: 0, kind: kind, service: 1, value: value, absent: absent, invokeMs: invoke, completeMs: complete, outcome: outcome)
    }

    @Test func aLinearizableHistoryPasses() {
        // Created with 3; a scale to 5 overlaps a read that saw 3 (the read went first) and
        // one that saw 5; an unknown scale to 2 never showed; a delete, then a read of nothing.
        let history = [
            Self.op("create", 3, 0, 10),
            Self.op("scale", 5, 20, 40),
            Self.op("read", 3, 21, 30),
            Self.op("read", 5, 35, 45),
            Self.op("scale", 2, 50, nil, .unknown),
            Self.op("read", 5, 60, 70),
            Self.op("delete", nil, 80, 90),
            Self.op("read", nil, 95, 99, absent: true),
            Self.op("scale", 4, 100, 110, absent: true),
        ]
        let verdict = HistoryChecker.check(history, leadersByTerm: ["1": ["localhost:8001"], "2": ["localhost:8002"]])
        #expect(verdict.passed, "\(verdict.problems)")
        #expect(verdict.servicesChecked == 1 && verdict.undecided == 0)
    }

    @Test func aStaleReadFailsWithAMinimalSubHistory() {
        // The scale to 5 was acknowledged before the read began; the read saw the old 3.
        let history = [
            Self.op("create", 3, 0, 10),
            Self.op("read", 3, 12, 15),
            Self.op("scale", 5, 20, 30),
            Self.op("read", 5, 31, 33),
            Self.op("read", 3, 40, 50),
            Self.op("read", 5, 60, 70),
        ]
        let verdict = HistoryChecker.check(history, leadersByTerm: [:])
        #expect(!verdict.passed)
        let minimal = verdict.counterexample ?? []
        // A sub-history of the original that still fails, and no operation in it can go.
        #expect(!minimal.isEmpty && minimal.allSatisfy { history.contains($0) } && minimal.count <= 3, "\(minimal)")
        #expect(HistoryChecker.linearizable(minimal, budget: 1_000) == false)
        for index in minimal.indices where minimal[index].kind != "create" {
            var smaller = minimal
            smaller.remove(at: index)
            #expect(HistoryChecker.linearizable(smaller, budget: 1_000) == true, "\(smaller) still fails: not minimal")
        }
    }

    @Test func aLostAcknowledgedWriteFails() {
        // Scaled to 4 and acknowledged; every later read sees the count from before, as if the write was lost.
        let history = [
            Self.op("create", 2, 0, 10),
            Self.op("scale", 4, 20, 30),
            Self.op("read", 2, 40, 50),
        ]
        #expect(!HistoryChecker.check(history, leadersByTerm: [:]).passed)
        // The same with the write's outcome unknown is fine: it may never have happened.
        var unknown = history
        unknown[1].outcome = .unknown
        unknown[1].completeMs = nil
        #expect(HistoryChecker.check(unknown, leadersByTerm: [:]).passed)
    }

    @Test func twoLeadersInOneTermFail() {
        let verdict = HistoryChecker.check([], leadersByTerm: ["3": ["localhost:8001", "localhost:8002"]])
        #expect(!verdict.passed && verdict.problems.first?.contains("term 3") == true)
    }

    @Test func experimentFilesNameTheirMistakes() throws {
        let good = #"{"name": "x", "seconds": 5, "clusters": [{"name": "a"}], "faults": [{"at": 1, "action": "kill-leader"}]}"#
        #expect(try ExperimentPlan.parse(Array(good.utf8)).schedule().count == 1)
        let cases = [
            (#"{"name": "x", "seconds": 5, "clusters": [{"name": "a", "nodez": 3}]}"#, "unknown field clusters[0].nodez"),
            (#"{"name": "x", "seconds": 5, "clusters": [{"name": "a", "nodes": 0}]}"#, "clusters[0] (a): nodes must be from 1"),
            (#"{"name": "x", "seconds": 5, "clusters": [{"name": "a"}], "faults": [{"at": 9, "action": "kill-leader"}]}"#, "faults[0].at must be"),
            (#"{"name": "x", "seconds": 5, "clusters": [{"name": "a"}], "faults": [{"at": 1, "action": "explode"}]}"#, "faults[0].action \"explode\" is unknown"),
            (#"{"name": "x", "seconds": 5, "clusters": [{"name": "a", "nodes": 15}, {"name": "b", "nodes": 15}, {"name": "c", "nodes": 15}, {"name": "d", "nodes": 15}]}"#, "60 nodes in all is more than this machine runs"),
            (#"{"name": "x", "seconds": 5, "clusters": [{"name": "a"}], "workload": {"mix": {"write": 1}}}"#, "workload.mix has unknown kind \"write\""),
        ]
        for (text, message) in cases {
            do {
                _ = try ExperimentPlan.parse(Array(text.utf8))
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.description.contains(message), "\(error.description)")
            }
        }
    }
}
