import Raft

/// A broken safety or liveness property, with what was seen.
public struct PropertyViolation: Error, CustomStringConvertible, Sendable {
    public let property: String
    public let detail: String
    public var description: String { "\(property) violated: \(detail)" }
}

/// Checks Raft's safety properties (Figure 3) over every server, as events happen.
///
/// Log Matching is checked through prefix hashes: every (index, term) seen anywhere must
/// always come with the same hash of the whole log prefix up to it.
struct SafetyChecker {
    /// Election Safety: at most one leader per term.
    private var leaderOfTerm: [Term: NodeID] = [:]
    /// Log Matching: the prefix hash first seen for each (index, term).
    private var prefixHashOf: [LogIndex: [Term: UInt64]] = [:]
    /// Every entry known committed, by index, with the lowest term in which it was seen committed.
    private(set) var committed: [Entry] = []
    private(set) var commitTerms: [Term] = []
    /// The fingerprint of the state machine after each committed entry, as the first server
    /// to apply it found (`ClusterState.fingerprint(ofServices:)` over the services the entry
    /// touched; index 0 = empty state): every other server must find the same.
    private(set) var stateFingerprints: [UInt64] = [0]
    /// The bytes' hash of every snapshot taken, by index: two servers' states at one index
    /// must encode alike, and a snapshot installed must be one a server took.
    private(set) var snapshotHashes: [UInt64: UInt64] = [:]
    /// Per server: prefix hashes of its in-memory log from `base` on (the first is the hash at `base`).
    private var prefixHashes: [NodeID: (base: Int, hashes: [UInt64])] = [:]
    /// Per server while leading: the term and last index at the end of its previous step.
    private var leaderTail: [NodeID: (term: Term, lastIndex: LogIndex)] = [:]

    mutating func leaderElected(_ node: NodeID, term: Term, log: RaftLog) throws(PropertyViolation) {
        if let other = leaderOfTerm[term], other != node {
            throw PropertyViolation(property: "Election Safety", detail: "\(other) and \(node) both leaders of term \(term)")
        }
        leaderOfTerm[term] = node
        // Leader Completeness: a leader holds every entry committed in an earlier term.
        for (position, entry) in committed.enumerated() where commitTerms[position] < term {
            guard entry.index > log.snapshotIndex else { continue }
            guard log.term(at: entry.index) == entry.term else {
                throw PropertyViolation(property: "Leader Completeness",
                                        detail: "leader \(node) of term \(term) lacks committed entry \(entry.index) of term \(entry.term) (has \(String(describing: log.term(at: entry.index))))")
            }
        }
    }

    /// Records a change of `node`'s in-memory log from `firstIndex` on and checks Log Matching.
    mutating func logChanged(_ node: NodeID, log: RaftLog, from firstIndex: LogIndex) throws(PropertyViolation) {
        var tracked = prefixHashes[node]
        if let known = tracked, known.base > Int(log.snapshotIndex.rawValue) || Int(log.lastIndex.rawValue) < known.base {
            tracked = nil  // the log was replaced: track it afresh below
        }
        if let known = tracked, Int(firstIndex.rawValue) > known.base + known.hashes.count, log.snapshotIndex > 0 {
            // Entries after the tracked end were compacted into a snapshot before their change
            // was registered (changes count once durable): track afresh from the snapshot.
            tracked = nil
        }
        var (base, hashes) = tracked ?? (0, [0])
        if tracked == nil, log.snapshotIndex > 0 {
            // A log that starts at a snapshot: its prefix there is the one of the snapshot's entry.
            guard let known = prefixHashOf[log.snapshotIndex]?[log.snapshotTerm] else {
                throw PropertyViolation(property: "Log Matching",
                                        detail: "\(node) holds a snapshot at \(log.snapshotIndex) of term \(log.snapshotTerm) that matches no log ever seen")
            }
            (base, hashes) = (Int(log.snapshotIndex.rawValue), [known])
        }
        let keep = min(max(1, Int(firstIndex.rawValue) - base), hashes.count)
        hashes.removeSubrange(keep...)
        var index = LogIndex(UInt64(base + keep))
        while index <= log.lastIndex {
            guard let entry = log.entry(at: index) else { break }
            let hash = Self.mix(hashes[hashes.count - 1], entry)
            hashes.append(hash)
            if let known = prefixHashOf[index]?[entry.term] {
                guard known == hash else {
                    throw PropertyViolation(property: "Log Matching",
                                            detail: "\(node) holds entry \(index) of term \(entry.term) after a prefix that differs from another server's")
                }
            } else {
                prefixHashOf[index, default: [:]][entry.term] = hash
            }
            index += 1
        }
        prefixHashes[node] = (base, hashes)
    }

    /// Forgets the tracked log of a server whose log a snapshot just replaced.
    mutating func logReplaced(_ node: NodeID) {
        prefixHashes[node] = nil
    }

    /// Leader Append-Only: a leader never removes or rewrites entries during its term.
    mutating func checkLeaderAppendOnly(_ node: NodeID, role: RaftNode.Role, term: Term, log: RaftLog,
                                        firstWrittenIndex: LogIndex?) throws(PropertyViolation)
    {
        guard role == .leader else {
            leaderTail[node] = nil
            return
        }
        if let previous = leaderTail[node], previous.term == term {
            if log.lastIndex < previous.lastIndex || (firstWrittenIndex.map { $0 <= previous.lastIndex } ?? false) {
                throw PropertyViolation(property: "Leader Append-Only",
                                        detail: "leader \(node) of term \(term) rewrote its log from \(String(describing: firstWrittenIndex)) (last index was \(previous.lastIndex), now \(log.lastIndex))")
            }
        }
        leaderTail[node] = (term, log.lastIndex)
    }

    /// State Machine Safety: every server applies the same entry at each index.
    mutating func applied(_ entry: Entry, by node: NodeID, inTerm term: Term) throws(PropertyViolation) {
        let position = Int(entry.index.rawValue) - 1
        if position < committed.count {
            guard committed[position] == entry else {
                throw PropertyViolation(property: "State Machine Safety",
                                        detail: "\(node) applied entry \(entry.index) of term \(entry.term), but entry of term \(committed[position].term) was applied there before")
            }
            commitTerms[position] = min(commitTerms[position], term)
        } else {
            guard position == committed.count else {
                throw PropertyViolation(property: "State Machine Safety",
                                        detail: "\(node) applied \(entry.index) beyond the committed history (\(committed.count) entries)")
            }
            committed.append(entry)
            commitTerms.append(term)
        }
    }

    /// The committed entry at `index`, if any.
    func committedEntry(at index: LogIndex) -> Entry? {
        let position = Int(index.rawValue) - 1
        return position >= 0 && position < committed.count ? committed[position] : nil
    }

    /// Forgets a crashed server's in-memory log (it restarts from its durable one).
    mutating func crashed(_ node: NodeID) {
        prefixHashes[node] = nil
        leaderTail[node] = nil
    }

    /// The hash of a log prefix extended by `entry`.
    static func mix(_ previous: UInt64, _ entry: Entry) -> UInt64 {
        var hash = previous ^ 0xCBF2_9CE4_8422_2325
        func add(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        for shift in stride(from: 0, to: 64, by: 8) { add(UInt8(truncatingIfNeeded: entry.term.rawValue >> UInt64(shift))) }
        add(entry.kind.rawValue)
        for byte in entry.data { add(byte) }
        return hash
    }

    /// State machine agreement: after applying the entry at `index`, every server's state
    /// has the same fingerprint.
    mutating func stateReached(_ index: LogIndex, fingerprint: UInt64, by node: NodeID) throws(PropertyViolation) {
        let position = Int(index.rawValue)
        if position < stateFingerprints.count {
            guard stateFingerprints[position] == fingerprint else {
                throw PropertyViolation(property: "State machine agreement",
                                        detail: "\(node)'s state after applying \(index) differs from the state another server reached there")
            }
        } else {
            guard position == stateFingerprints.count else {
                throw PropertyViolation(property: "State machine agreement",
                                        detail: "\(node) reached state \(index) beyond the committed history (\(stateFingerprints.count - 1) entries)")
            }
            stateFingerprints.append(fingerprint)
        }
    }

    /// A snapshot taken at `index` whose bytes hash to `hash`: equal to any other taken there.
    mutating func snapshotTaken(at index: LogIndex, hash: UInt64, by node: NodeID) throws(PropertyViolation) {
        if let earlier = snapshotHashes[index.rawValue], earlier != hash {
            throw PropertyViolation(property: "State machine agreement",
                                    detail: "\(node)'s snapshot at \(index) holds another state than a snapshot taken there before")
        }
        snapshotHashes[index.rawValue] = hash
    }

    /// A snapshot installed from a leader must hold a state some server reached (and took).
    func snapshotInstalled(at index: LogIndex, hash: UInt64, by node: NodeID) throws(PropertyViolation) {
        guard snapshotHashes[index.rawValue] == hash else {
            throw PropertyViolation(property: "State Machine Safety",
                                    detail: "\(node) installed a snapshot at \(index) that no server took at that index")
        }
    }
}
