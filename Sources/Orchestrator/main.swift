import Foundation

// orchestrator [command] [options]: parse, dispatch, run.
let words = Array(CommandLine.arguments.dropFirst())
do {
    let status: Int32
    switch words.first {
    case "simulate": status = try SimulateCommand.run(Array(words.dropFirst()))
    case "bench": status = try BenchCommand.run(Array(words.dropFirst()))
    case "help", "--help", "-h": print(Usage.text); status = 0
    default: print(Usage.text); status = 2
    }
    exit(status)
} catch {
    FileHandle.standardError.write(Data("orchestrator: \(error)\n".utf8))
    exit(2)
}
