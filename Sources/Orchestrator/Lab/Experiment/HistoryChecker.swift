import Foundation

/// Checks a history: per service, the replica counts written and read are linearizable
/// (a Wing & Gong search, as Knossos does: operations whose outcome is unknown may have
/// happened at any point after they were invoked, or never); every term had at most one
/// leader. A failing service comes with a minimal sub-history that still fails.
enum HistoryChecker {
    struct Verdict: Codable, Sendable {
        var passed: Bool
        var problems: [String]
        /// Services checked, and how many of them the search could not decide within its budget.
        var servicesChecked: Int
        var undecided: Int
        /// The smallest failing sub-history found, when a service failed.
        var counterexample: [History.Operation]?
    }

    /// The register a service is, for the search: its replica count, or nil once deleted.
    typealias State = Int?

    /// Checks one cluster's operations and the leaders its nodes reported.
    static func check(_ operations: [History.Operation], leadersByTerm: [String: Set<String>], budget: Int = 200_000) -> Verdict {
        var problems: [String] = []
        for (term, leaders) in leadersByTerm.sorted(by: { (UInt64($0.key) ?? 0) < (UInt64($1.key) ?? 0) }) where leaders.count > 1 {
            problems.append("term \(term) had more than one leader: \(leaders.sorted().joined(separator: ", "))")
        }
        var counterexample: [History.Operation]?
        var undecided = 0
        let byService = Dictionary(grouping: operations.filter { $0.service != nil && $0.outcome != .failed }, by: { $0.service! })
        for (service, history) in byService.sorted(by: { $0.key < $1.key }) {
            switch linearizable(history, budget: budget) {
            case true?: continue
            case nil: undecided += 1
            case false?:
                problems.append("service \(service): the replica counts written and read are not linearizable")
                if counterexample == nil { counterexample = shrink(history, budget: budget) }
            }
        }
        return Verdict(passed: problems.isEmpty, problems: problems, servicesChecked: byService.count, undecided: undecided, counterexample: counterexample)
    }

    /// Whether one service's operations are linearizable (nil: undecided within `budget` steps).
    /// The create comes first (no other operation knew the service before it was answered).
    static func linearizable(_ operations: [History.Operation], budget: Int) -> Bool? {
        guard let create = operations.first(where: { $0.kind == "create" && $0.outcome == .ok }) else { return true }
        let rest = operations.filter { !($0.kind == "create" && $0.outcome == .ok) }.sorted { $0.invokeMs < $1.invokeMs }
        var search = Search(operations: rest, budget: budget)
        return search.run(from: create.value)
    }

    /// The Wing & Gong search with a memo of (operations linearized, state) already explored.
    struct Search {
        let operations: [History.Operation]
        var budget: Int
        var seen = Set<Key>()

        struct Key: Hashable {
            var done: [UInt64]
            var state: State
        }

        init(operations: [History.Operation], budget: Int) {
            self.operations = operations
            self.budget = budget
        }

        mutating func run(from state: State) -> Bool? {
            var done = [UInt64](repeating: 0, count: (operations.count + 63) / 64)
            return explore(&done, state)
        }

        private func isDone(_ done: [UInt64], _ index: Int) -> Bool { done[index / 64] & (1 << UInt64(index % 64)) != 0 }

        private mutating func explore(_ done: inout [UInt64], _ state: State) -> Bool? {
            // Finished when every operation that was answered is linearized (unknown ones may never have happened).
            let pending = operations.indices.filter { !isDone(done, $0) }
            guard pending.contains(where: { operations[$0].outcome == .ok }) else { return true }
            budget -= 1
            guard budget > 0 else { return nil }
            guard seen.insert(Key(done: done, state: state)).inserted else { return false }
            // Candidates: invoked before every pending answered operation completed.
            let horizon = pending.compactMap { operations[$0].outcome == .ok ? operations[$0].completeMs : nil }.min() ?? .infinity
            var undecided = false
            for index in pending where operations[index].invokeMs <= horizon {
                guard let next = step(operations[index], state) else { continue }
                done[index / 64] |= 1 << UInt64(index % 64)
                let result = explore(&done, next)
                done[index / 64] &= ~(1 << UInt64(index % 64))
                if result == true { return true }
                if result == nil { undecided = true }
            }
            return undecided ? nil : false
        }

        /// The state after `operation` when its recorded result fits `state`; nil when it cannot.
        private func step(_ operation: History.Operation, _ state: State) -> State? {
            let known = operation.outcome == .ok
            switch operation.kind {
            case "scale":
                if state == nil { return (!known || operation.absent) ? .some(nil) : nil }
                return (!known || !operation.absent) ? .some(operation.value) : nil
            case "read":
                guard known else { return .some(state) }
                if operation.absent { return state == nil ? .some(nil) : nil }
                return state == operation.value ? .some(state) : nil
            case "delete":
                if state == nil { return (!known || operation.absent) ? .some(nil) : nil }
                return (!known || !operation.absent) ? .some(nil) : nil
            default:
                return .some(state)
            }
        }
    }

    /// A smallest sub-history (by removing one operation at a time) that still fails.
    static func shrink(_ operations: [History.Operation], budget: Int) -> [History.Operation] {
        var current = operations
        var index = 0
        while index < current.count {
            if current[index].kind == "create" {
                index += 1
                continue
            }
            var candidate = current
            candidate.remove(at: index)
            if linearizable(candidate, budget: budget) == false { current = candidate } else { index += 1 }
        }
        return current
    }
}
