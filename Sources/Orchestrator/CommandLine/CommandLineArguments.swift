/// A parsed command line: positional words, `--name value` options and `--flag` switches.
///
/// `--name=value` also works. A name given twice keeps the last value. Unknown names are
/// refused, so a typo is an error and not a silently ignored setting.
struct CommandLineArguments: Equatable {
    var positional: [String] = []
    var options: [String: String] = [:]
    var flags: Set<String> = []

    /// Why a command line was refused, in words for the user.
    struct Problem: Error, CustomStringConvertible, Equatable {
        let description: String
    }

    /// Parses `words` given which option names take a value and which are switches.
    static func parse(_ words: [String], options optionNames: Set<String>, flags flagNames: Set<String>) throws(Problem) -> CommandLineArguments {
        var result = CommandLineArguments()
        var position = 0
        while position < words.count {
            let word = words[position]
            position += 1
            guard word.hasPrefix("--"), word.count > 2 else {
                result.positional.append(word)
                continue
            }
            var name = String(word.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if flagNames.contains(name) {
                guard inlineValue == nil else { throw Problem(description: "--\(name) takes no value") }
                result.flags.insert(name)
            } else if optionNames.contains(name) {
                if let inlineValue {
                    result.options[name] = inlineValue
                } else {
                    guard position < words.count, !words[position].hasPrefix("--") else {
                        throw Problem(description: "--\(name) needs a value")
                    }
                    result.options[name] = words[position]
                    position += 1
                }
            } else {
                let known = (optionNames.union(flagNames)).sorted().map { "--" + $0 }.joined(separator: ", ")
                throw Problem(description: "unknown option --\(name)" + (known.isEmpty ? "" : " (known: \(known))"))
            }
        }
        return result
    }

    /// The integer value of option `name`, or `defaultValue`; refuses non-numbers and values
    /// outside `range`.
    func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(Problem) -> Int {
        guard let text = options[name] else { return defaultValue }
        guard let value = Int(text) else { throw Problem(description: "--\(name) must be a whole number, got \"\(text)\"") }
        guard range.contains(value) else {
            throw Problem(description: "--\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    /// The unsigned integer value of option `name`, if given.
    func unsigned(_ name: String) throws(Problem) -> UInt64? {
        guard let text = options[name] else { return nil }
        guard let value = UInt64(text) else { throw Problem(description: "--\(name) must be a non-negative whole number, got \"\(text)\"") }
        return value
    }

    /// True when switch `name` was given.
    func has(_ name: String) -> Bool { flags.contains(name) }
}
