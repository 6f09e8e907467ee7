@testable import Orchestrator
import Testing

@Suite struct CommandLineArgumentsTests {
    private func parse(_ words: [String]) throws -> CommandLineArguments {
        try CommandLineArguments.parse(words, options: ["port", "nodes"], flags: ["json"])
    }

    @Test func separatesPositionalOptionsAndFlags() throws {
        let arguments = try parse(["node", "--port", "8001", "--json", "--nodes=5", "extra"])
        #expect(arguments.positional == ["node", "extra"])
        #expect(arguments.options == ["port": "8001", "nodes": "5"])
        #expect(arguments.has("json"))
    }

    @Test func lastValueWins() throws {
        #expect(try parse(["--port", "1", "--port", "2"]).options["port"] == "2")
    }

    @Test(arguments: [
        (["--prot", "1"], "unknown option --prot"),
        (["--port"], "--port needs a value"),
        (["--port", "--json"], "--port needs a value"),
        (["--json=yes"], "--json takes no value"),
    ])
    func refusesMistakesWithAMessageNamingThem(words: [String], message: String) {
        #expect(throws: CommandLineArguments.Problem.self) { try parse(words) }
        do {
            _ = try parse(words)
        } catch {
            #expect("\(error)".hasPrefix(message))
        }
    }

    @Test func integersAreCheckedForFormAndRange() throws {
        let arguments = try parse(["--port", "80x", "--nodes", "12"])
        #expect(throws: CommandLineArguments.Problem(description: "--port must be a whole number, got \"80x\"")) {
            try arguments.integer("port", default: 8000, in: 1...65535)
        }
        #expect(throws: CommandLineArguments.Problem(description: "--nodes must be between 1 and 9, got 12")) {
            try arguments.integer("nodes", default: 5, in: 1...9)
        }
        #expect(try parse([]).integer("nodes", default: 5, in: 1...9) == 5)
    }
}
