/// Majority arithmetic over a set of voters (§5.2, §5.3).
public enum Quorum {
    /// How many of `voterCount` voters make a majority: the one place this is counted.
    public static func majority(of voterCount: Int) -> Int { voterCount / 2 + 1 }

    /// The largest index that a majority of `voters` have, given each voter's match index
    /// (a voter missing from `matchIndexes` counts as 0).
    public static func committedIndex(voters: Set<NodeID>, matchIndexes: [NodeID: LogIndex]) -> LogIndex {
        committedIndex(voters: voters) { matchIndexes[$0] ?? 0 }
    }

    /// The same, with each voter's match index given by `matchIndex`: the indexes are sorted
    /// in a buffer on the stack (a leader asks after every acknowledgement; a dictionary and
    /// an array for it were allocated each time).
    public static func committedIndex(voters: Set<NodeID>, matchIndex: (NodeID) -> LogIndex) -> LogIndex {
        guard !voters.isEmpty else { return 0 }
        return withUnsafeTemporaryAllocation(of: LogIndex.self, capacity: voters.count) { buffer in
            var count = 0
            for voter in voters {
                buffer.initializeElement(at: count, to: matchIndex(voter))
                count += 1
            }
            var indexes = UnsafeMutableBufferPointer(rebasing: buffer[..<count])
            indexes.sort(by: >)
            // Sorted high to low, the majority-th index is held by a majority.
            return indexes[majority(of: count) - 1]
        }
    }

    /// The outcome of an election so far.
    public enum VoteResult: Equatable, Sendable {
        case won, lost, pending
    }

    /// Tallies `votes` (true = granted) of `voters`; votes from non-voters do not count.
    public static func voteResult(voters: Set<NodeID>, votes: [NodeID: Bool]) -> VoteResult {
        let majority = majority(of: voters.count)
        var granted = 0
        var refused = 0
        for voter in voters {
            switch votes[voter] {
            case true?: granted += 1
            case false?: refused += 1
            case nil: break
            }
        }
        if granted >= majority { return .won }
        if voters.count - refused < majority { return .lost }
        return .pending
    }
}
