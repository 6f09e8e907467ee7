/// Why a benchmark or the nemesis could not go on (a cluster without a leader, a write that
/// never committed): printed by the command, which then exits non-zero.
struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
