import Raft

/// Throughput of the Raft core alone: a 3-node cluster in one process, messages handed
/// over in memory, no disk, committing 100-byte proposals in batches. It measures the
/// consensus logic (stepping, batching, log handling, invariant checks), nothing else.
public struct CoreBenchmark {
    public struct Result: Sendable {
        public var batchSize: Int
        public var committedEntries: Int
        public var seconds: Double
        public var steps: Int
        public var entriesPerSecond: Double { Double(committedEntries) / seconds }
        public var stepsPerSecond: Double { Double(steps) / seconds }
    }

    public let nodeCount: Int
    public let payloadBytes: Int

    public init(nodeCount: Int = 3, payloadBytes: Int = 100) {
        self.nodeCount = nodeCount
        self.payloadBytes = payloadBytes
    }

    /// Commits at least `entries` proposals, `batchSize` per proposal call, with up to
    /// `pipelineDepth` batches proposed before the previous ones are acknowledged.
    public func run(entries: Int, batchSize: Int, pipelineDepth: Int = 4) -> Result {
        let ids = (1...nodeCount).map { NodeID(UInt64($0)) }
        var settings = RaftSettings(electionTicks: 10, heartbeatTicks: 1)
        settings.maxEntriesPerAppend = max(512, batchSize)
        settings.maxBytesPerAppend = 4 * 1024 * 1024
        var nodes = ids.map { RaftNode(id: $0, membership: Membership(voters: Set(ids)), settings: settings, randomSeed: 1) }
        var queue: [Envelope] = []
        var steps = 0
        var committedOnLeader = 0

        func deliver(_ output: Output) {
            queue.append(contentsOf: output.messages)
        }
        // Elect node 1.
        while !nodes[0].isLeader {
            deliver(nodes[0].step(.tick))
            steps += 1
            while !queue.isEmpty {
                let envelope = queue.removeFirst()
                deliver(nodes[Int(envelope.to.rawValue) - 1].step(.receive(envelope)))
                steps += 1
            }
        }
        let payload = [UInt8](repeating: 0x61, count: payloadBytes)
        var nextID: ProposalID = 1
        let clock = ContinuousClock()
        let start = clock.now
        var head = 0
        while committedOnLeader < entries {
            for _ in 0..<pipelineDepth {
                var batch: [RaftNode.Proposal] = []
                batch.reserveCapacity(batchSize)
                for _ in 0..<batchSize {
                    batch.append(RaftNode.Proposal(id: nextID, data: payload))
                    nextID += 1
                }
                let output = nodes[0].step(.propose(batch))
                steps += 1
                committedOnLeader += Self.committedCount(output)
                deliver(output)
            }
            while head < queue.count {
                let envelope = queue[head]
                head += 1
                let output = nodes[Int(envelope.to.rawValue) - 1].step(.receive(envelope))
                steps += 1
                if envelope.to == 1 { committedOnLeader += Self.committedCount(output) }
                deliver(output)
            }
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Result(batchSize: batchSize, committedEntries: committedOnLeader, seconds: seconds, steps: steps)
    }

    private static func committedCount(_ output: Output) -> Int {
        output.proposals.reduce(0) { count, outcome in
            if case .committed = outcome { count + 1 } else { count }
        }
    }
}
