/// What a snapshot covers: the log up to `index` (whose entry has `term`), and the
/// servers of the cluster as of that index.
public struct SnapshotMetadata: Hashable, Sendable {
    public var index: LogIndex
    public var term: Term
    public var membership: Membership

    public init(index: LogIndex, term: Term, membership: Membership) {
        self.index = index
        self.term = term
        self.membership = membership
    }
}

/// The state machine's state after applying every entry up to `metadata.index`, as the
/// application serialized it. The core treats `data` as opaque bytes.
public struct Snapshot: Hashable, Sendable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }

    /// CRC32C of the data: a follower checks a transferred snapshot against it.
    public var checksum: UInt32 { CRC32C.checksum(data) }
}

/// A single-server membership change (thesis §4.1): new servers join as learners and are
/// promoted once they have caught up; any server (a voter or a learner) can be removed.
public enum MembershipChange: Hashable, Sendable, CustomStringConvertible {
    case addLearner(NodeID)
    case promote(NodeID)
    case remove(NodeID)

    /// The membership after applying this change to `current`, or why it cannot be applied.
    public func applied(to current: Membership) -> Result<Membership, MembershipChangeError> {
        var voters = current.voters
        var learners = current.learners
        switch self {
        case .addLearner(let node):
            guard !current.members.contains(node) else {
                return .failure(MembershipChangeError("\(node) is already a member"))
            }
            learners.insert(node)
        case .promote(let node):
            guard learners.contains(node) else {
                return .failure(MembershipChangeError(current.voters.contains(node) ? "\(node) is already a voter" : "\(node) is not a learner (add it as a learner first)"))
            }
            learners.remove(node)
            voters.insert(node)
        case .remove(let node):
            guard current.members.contains(node) else {
                return .failure(MembershipChangeError("\(node) is not a member"))
            }
            guard current.voters != [node] else {
                return .failure(MembershipChangeError("\(node) is the last voter"))
            }
            voters.remove(node)
            learners.remove(node)
        }
        return .success(Membership(voters: voters, learners: learners))
    }

    public var description: String {
        switch self {
        case .addLearner(let node): "add learner \(node)"
        case .promote(let node): "promote \(node)"
        case .remove(let node): "remove \(node)"
        }
    }
}

/// A membership change that does not apply to the current membership.
public struct MembershipChangeError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension ByteWriter {
    /// A membership: voter count u32, voters u64..., learner count u32, learners u64..., sorted.
    public mutating func write(_ membership: Membership) {
        write(UInt32(membership.voters.count))
        for voter in membership.voters.sorted() { write(voter.rawValue) }
        write(UInt32(membership.learners.count))
        for learner in membership.learners.sorted() { write(learner.rawValue) }
    }

    /// Snapshot metadata: index u64, term u64, membership.
    public mutating func write(_ metadata: SnapshotMetadata) {
        write(metadata.index.rawValue)
        write(metadata.term.rawValue)
        write(metadata.membership)
    }
}

extension ByteReader {
    /// Servers in a membership a reader accepts: far above any real cluster.
    static let maxMembers = 10_000

    public mutating func readMembership() throws(OutOfBounds) -> Membership {
        func readIDs(_ reader: inout ByteReader) throws(OutOfBounds) -> Set<NodeID> {
            let count = Int(try reader.readUInt32())
            guard count <= Self.maxMembers else { throw OutOfBounds() }
            var ids = Set<NodeID>()
            for _ in 0..<count { ids.insert(NodeID(try reader.readUInt64())) }
            return ids
        }
        let voters = try readIDs(&self)
        let learners = try readIDs(&self)
        guard voters.isDisjoint(with: learners) else { throw OutOfBounds() }
        return Membership(voters: voters, learners: learners)
    }

    public mutating func readSnapshotMetadata() throws(OutOfBounds) -> SnapshotMetadata {
        let index = LogIndex(try readUInt64())
        let term = Term(try readUInt64())
        return SnapshotMetadata(index: index, term: term, membership: try readMembership())
    }
}

extension Membership {
    /// The bytes of a membership entry's data.
    public var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.write(self)
        return writer.bytes
    }

    /// Decodes a membership entry's data; nil when malformed.
    public init?(encoded bytes: [UInt8]) {
        var reader = ByteReader(bytes[...])
        guard let membership = try? reader.readMembership(), reader.isAtEnd else { return nil }
        self = membership
    }
}
