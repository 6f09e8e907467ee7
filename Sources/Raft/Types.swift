/// A Raft term (§5.1): a logical clock that only grows.
public struct Term: RawRepresentable, Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral,
    CustomStringConvertible
{
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }
    public init(_ value: UInt64) { self.rawValue = value }
    public static func < (lhs: Term, rhs: Term) -> Bool { lhs.rawValue < rhs.rawValue }
    /// The term after this one.
    public var next: Term { Term(rawValue + 1) }
    public var description: String { String(rawValue) }
}

/// The position of an entry in the replicated log; the first entry has index 1 and
/// index 0 stands for "before the first entry".
public struct LogIndex: RawRepresentable, Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral,
    CustomStringConvertible, Strideable
{
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }
    public init(_ value: UInt64) { self.rawValue = value }
    public static func < (lhs: LogIndex, rhs: LogIndex) -> Bool { lhs.rawValue < rhs.rawValue }
    public func distance(to other: LogIndex) -> Int { Int(other.rawValue) - Int(rawValue) }
    public func advanced(by n: Int) -> LogIndex { LogIndex(UInt64(Int(rawValue) + n)) }
    public var description: String { String(rawValue) }
}

/// The identity of a Raft server. Nodes of this project use their HTTP port.
public struct NodeID: RawRepresentable, Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral,
    CustomStringConvertible
{
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }
    public init(_ value: UInt64) { self.rawValue = value }
    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }
}

/// What an entry carries: an application command, the no-op a new leader appends (§8),
/// or a membership change.
public enum EntryKind: UInt8, Sendable, Hashable {
    case command = 0
    case noop = 1
    case membership = 2

    /// How views and log comparisons name it.
    public var name: String {
        switch self {
        case .command: "command"
        case .noop: "noop"
        case .membership: "membership"
        }
    }
}

/// One entry of the replicated log.
public struct Entry: Hashable, Sendable {
    public var term: Term
    public var index: LogIndex
    public var kind: EntryKind
    public var data: [UInt8]

    public init(term: Term, index: LogIndex, kind: EntryKind = .command, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }

    /// Bytes this entry costs in a message or on disk, for batching limits.
    public var sizeInBytes: Int { data.count + 24 }
}

/// The state that must be on disk before the node answers anything that depends on it
/// (Figure 2, "persistent state on all servers"), plus the commit index as a hint.
public struct HardState: Hashable, Sendable {
    public var currentTerm: Term
    public var votedFor: NodeID?
    public var commitIndex: LogIndex

    public init(currentTerm: Term = 0, votedFor: NodeID? = nil, commitIndex: LogIndex = 0) {
        self.currentTerm = currentTerm
        self.votedFor = votedFor
        self.commitIndex = commitIndex
    }
}

/// The servers of a cluster: voters decide elections and commits; learners only receive
/// the log (they catch up before being promoted).
public struct Membership: Hashable, Sendable {
    public var voters: Set<NodeID>
    public var learners: Set<NodeID>

    public init(voters: Set<NodeID>, learners: Set<NodeID> = []) {
        precondition(voters.isDisjoint(with: learners), "a server is a voter or a learner, not both: \(voters) \(learners)")
        self.voters = voters
        self.learners = learners
    }

    /// Every server that receives the log.
    public var members: Set<NodeID> { voters.union(learners) }
    /// How many voters make a majority.
    public var quorum: Int { Quorum.majority(of: voters.count) }
}

/// A caller-chosen identifier for a proposal, echoed in its outcome.
public typealias ProposalID = UInt64
/// A caller-chosen identifier for a linearizable read, echoed in its outcome.
public typealias ReadID = UInt64
