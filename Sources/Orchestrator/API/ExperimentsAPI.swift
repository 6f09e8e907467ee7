import ClusterNode
import Foundation
import Transport

/// `POST /experiments` (an experiment file as the body) starts one in the background: 202
/// with its id; `GET /experiments/:eid` shows its progress and, once done, the verdict and
/// where the report is (`GET /experiments/:eid/report` serves the page); `DELETE` cancels
/// (it still heals, checks and reports what was recorded). One runs at a time: the clusters
/// of two would share two cores and distort each other's timings.
final class ExperimentRegistry: @unchecked Sendable {
    struct Entry {
        let id: String
        let runner: ExperimentRunner
        let startedAt: Date
        var error: String?
        var finished = false
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var order: [String] = []
    private var nextNumber = 1
    /// Finished experiments remembered.
    static let kept = 20

    struct View: Codable {
        var id: String
        var name: String
        var startedAt: Double
        var progress: ExperimentRunner.Progress
        var report: String?
    }

    func start(_ plan: ExperimentPlan, supervisor: ClusterSupervisor, searchFrom: Int) throws -> View {
        let entry = try lock.withLock { () throws -> Entry in
            if let running = entries.values.first(where: { !$0.finished }) {
                throw HTTPError(.conflict, "experiment \(running.id) is still running; one runs at a time (DELETE /experiments/\(running.id) cancels it)")
            }
            let id = "\(nextNumber)"
            nextNumber += 1
            let output = URL(fileURLWithPath: "experiments/\(plan.name)-\(id)").standardizedFileURL.path
            let runner = ExperimentRunner(plan: plan, supervisor: supervisor, outputDirectory: output, searchFrom: searchFrom) { line in
                supervisor.log.write("experiment \(id): \(line.trimmingCharacters(in: .whitespaces))")
            }
            let entry = Entry(id: id, runner: runner, startedAt: Date())
            entries[id] = entry
            order.append(id)
            while order.count > Self.kept, let oldest = order.first, entries[oldest]?.finished == true {
                entries[oldest] = nil
                order.removeFirst()
            }
            return entry
        }
        startNamedThread("experiment \(entry.id)") { [self] in
            var failure: String?
            do {
                _ = try entry.runner.run()
            } catch {
                failure = "\(error)"
            }
            lock.withLock {
                entries[entry.id]?.finished = true
                entries[entry.id]?.error = failure
            }
        }
        return view(entry)
    }

    private func view(_ entry: Entry) -> View {
        var progress = entry.runner.currentProgress
        if let error = entry.error {
            progress.state = "failed"
            progress.error = error
        }
        let report = progress.verdict == nil ? nil : entry.runner.outputDirectory + "/report.html"
        return View(id: entry.id, name: entry.runner.plan.name, startedAt: entry.startedAt.timeIntervalSince1970, progress: progress, report: report)
    }

    func all() -> [View] { lock.withLock { order.compactMap { entries[$0] } }.map(view) }

    func find(_ id: String) throws(HTTPError) -> (View, ExperimentRunner) {
        guard let entry = lock.withLock({ entries[id] }) else { throw HTTPError(.notFound, "unknown experiment \(id)") }
        return (view(entry), entry.runner)
    }
}

extension OrchestratorAPI {
    func addExperimentRoutes(_ router: inout Router) {
        router.add("POST", "/experiments") { request in
            let plan: ExperimentPlan
            do {
                plan = try ExperimentPlan.parse(request.body)
            } catch let error as LabError {
                throw HTTPError(.badRequest, error.description)
            }
            let highest = supervisor.highestUsedPort ?? searchFrom - 1
            return JSONBody.response(try experiments.start(plan, supervisor: supervisor, searchFrom: max(searchFrom, highest + 1)), status: .accepted, for: request)
        }
        router.add("GET", "/experiments") { request in JSONBody.response(ListEnvelope(experiments.all()), for: request) }
        router.add("GET", "/experiments/:eid") { request in JSONBody.response(try experiments.find(try request.parameter("eid")).0, for: request) }
        router.add("GET", "/experiments/:eid/report") { request in
            let (view, _) = try experiments.find(try request.parameter("eid"))
            guard let path = view.report, let page = FileManager.default.contents(atPath: path) else {
                throw HTTPError(.notFound, "experiment \(view.id) has no report yet (\(view.progress.state))")
            }
            return HTTPResponse(headers: HTTPHeaders([("Content-Type", "text/html; charset=utf-8")]), body: Array(page))
        }
        router.add("DELETE", "/experiments/:eid") { request in
            let (_, runner) = try experiments.find(try request.parameter("eid"))
            runner.cancel()
            return JSONBody.response(try experiments.find(try request.parameter("eid")).0, status: .accepted, for: request)
        }
    }
}
