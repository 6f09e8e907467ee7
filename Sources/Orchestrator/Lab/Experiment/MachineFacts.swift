import Foundation

/// The machine an experiment ran on, for the top of its report.
struct MachineFacts: Codable, Sendable {
    var cores: Int
    var memoryGiB: Double
    var cpuModel: String
    var kernel: String
    var hostname: String
    var date: String

    static func current() -> MachineFacts {
        let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuInfo.split(separator: "\n").first { $0.hasPrefix("model name") }.map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown"
        let kernel = ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "unknown").trimmingCharacters(in: .whitespacesAndNewlines)
        return MachineFacts(cores: ProcessInfo.processInfo.activeProcessorCount,
                            memoryGiB: (Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824 * 10).rounded() / 10,
                            cpuModel: model, kernel: kernel, hostname: ProcessInfo.processInfo.hostName,
                            date: ISO8601DateFormatter().string(from: Date()))
    }

    /// All cores' busy and total jiffies from the first line of /proc/stat.
    static func cpuTimes() -> (busy: UInt64, total: UInt64)? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = stat.split(separator: "\n").first else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard fields.count >= 5 else { return nil }
        let idle = fields[3] + fields[4]  // idle and iowait
        let total = fields.reduce(0, +)
        return (total - idle, total)
    }
}
