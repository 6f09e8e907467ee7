import Foundation

// orchestrator [command] [options]: parse, dispatch, run.
Signals.install()  // before any thread exists
let words = Array(CommandLine.arguments.dropFirst())
do {
    let status: Int32
    switch words.first {
    case "node": status = try NodeCommand.run(Array(words.dropFirst()))
    case "nemesis": status = try NemesisCommand.run(Array(words.dropFirst()))
    case "simulate": status = try SimulateCommand.run(Array(words.dropFirst()))
    case "bench": status = try BenchCommand.run(Array(words.dropFirst()))
    case "experiment": status = try ExperimentCommand.run(Array(words.dropFirst()))
    case "help", "--help", "-h": print(Usage.text); status = 0
    case nil, "serve": status = try ServeCommand.run(Array(words.dropFirst(words.first == "serve" ? 1 : 0)))
    default:
        if words.first?.hasPrefix("--") == true {
            status = try ServeCommand.run(words)
        } else {
            FileHandle.standardError.write(Data("orchestrator: unknown command \(words[0])\n\n\(Usage.text)\n".utf8))
            status = 2
        }
    }
    exit(status)
} catch {
    FileHandle.standardError.write(Data("orchestrator: \(error)\n".utf8))
    exit(2)
}
