/// The in-memory replicated log of one server: the entries after the last snapshot.
///
/// Entries are contiguous and their terms never decrease; both are checked on every
/// change. Index 0 (or the snapshot's last index) has a known term and no entry.
public struct RaftLog: Sendable {
    /// The last index covered by a snapshot (0 when there is none).
    public private(set) var snapshotIndex: LogIndex
    /// The term of the entry at `snapshotIndex`.
    public private(set) var snapshotTerm: Term
    /// The entries after `snapshotIndex`, in order.
    public private(set) var entries: [Entry]

    /// Creates a log holding `entries`, which must start right after `snapshotIndex`.
    public init(snapshotIndex: LogIndex = 0, snapshotTerm: Term = 0, entries: [Entry] = []) {
        self.snapshotIndex = snapshotIndex
        self.snapshotTerm = snapshotTerm
        self.entries = []
        append(entries)
    }

    /// The index of the first entry held.
    public var firstIndex: LogIndex { snapshotIndex + 1 }
    /// The index of the last entry (or of the snapshot when no entry follows it).
    public var lastIndex: LogIndex { snapshotIndex.advanced(by: entries.count) }
    /// The term of the last entry.
    public var lastTerm: Term { entries.last?.term ?? snapshotTerm }

    /// The term of the entry at `index`, or nil when the index is compacted or beyond the end.
    public func term(at index: LogIndex) -> Term? {
        if index == snapshotIndex { return snapshotTerm }
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[position(of: index)].term
    }

    /// The entry at `index`, or nil when it is compacted or beyond the end.
    public func entry(at index: LogIndex) -> Entry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[position(of: index)]
    }

    /// True when this log holds an entry at `index` with `term` (§5.3 consistency check).
    public func matches(index: LogIndex, term: Term) -> Bool {
        self.term(at: index) == term
    }

    /// §5.4.1: a candidate's log is at least as up-to-date as this one when its last term
    /// is greater, or the last terms are equal and its log is at least as long. The last
    /// term decides first; length only breaks a tie.
    public func isUpToDate(lastIndex candidateIndex: LogIndex, lastTerm candidateTerm: Term) -> Bool {
        if candidateTerm != lastTerm { return candidateTerm > lastTerm }
        return candidateIndex >= lastIndex
    }

    /// Entries from `index` on, at most `maxCount` of them and at most `maxBytes` in total
    /// (but always at least one when any exists, so a large entry cannot stall replication).
    public func entries(from index: LogIndex, maxCount: Int, maxBytes: Int) -> [Entry] {
        precondition(index > snapshotIndex, "entries from \(index) are compacted (snapshot at \(snapshotIndex))")
        guard index <= lastIndex else { return [] }
        let start = position(of: index)
        var end = start
        var bytes = 0
        while end < entries.count, end - start < maxCount {
            bytes += entries[end].sizeInBytes
            if bytes > maxBytes, end > start { break }
            end += 1
        }
        return Array(entries[start..<end])
    }

    /// Entries in `range`, which must be held.
    public func entries(in range: ClosedRange<LogIndex>) -> ArraySlice<Entry> {
        precondition(range.lowerBound > snapshotIndex && range.upperBound <= lastIndex,
                     "entries \(range) not held (snapshot \(snapshotIndex), last \(lastIndex))")
        return entries[position(of: range.lowerBound)...position(of: range.upperBound)]
    }

    /// The first index among `newEntries` whose term differs from this log's entry at the
    /// same index, or which this log does not hold yet; nil when all already match.
    public func firstConflict(in newEntries: [Entry]) -> LogIndex? {
        for entry in newEntries where !matches(index: entry.index, term: entry.term) {
            return entry.index
        }
        return nil
    }

    /// The largest index at or below `index` whose term is at most `term`: where the
    /// leader should probe next after a rejection carrying that hint (§5.3 optimization).
    /// When even the snapshot's term is greater, the answer lies in the compacted part: the
    /// index before the snapshot's (so a leader sends its snapshot instead of probing again).
    public func lastIndex(atOrBelow index: LogIndex, withTermAtMost term: Term) -> LogIndex {
        var candidate = min(index, lastIndex)
        while candidate > snapshotIndex {
            if let candidateTerm = self.term(at: candidate), candidateTerm <= term { return candidate }
            candidate -= 1
        }
        if candidate == snapshotIndex, snapshotIndex > 0, snapshotTerm > term { return candidate - 1 }
        return candidate
    }

    /// Appends entries that continue this log exactly.
    public mutating func append<S: Sequence>(_ newEntries: S) where S.Element == Entry {
        for entry in newEntries {
            precondition(entry.index == lastIndex + 1,
                         "entry index \(entry.index) does not follow last index \(lastIndex)")
            precondition(entry.term >= lastTerm,
                         "entry term \(entry.term) at \(entry.index) below last term \(lastTerm)")
            entries.append(entry)
        }
    }

    /// Removes every entry from `index` on. Used only for uncommitted conflicting entries.
    public mutating func truncate(from index: LogIndex) {
        precondition(index > snapshotIndex, "cannot truncate at \(index): snapshot covers \(snapshotIndex)")
        guard index <= lastIndex else { return }
        entries.removeSubrange(position(of: index)...)
    }

    /// Drops the entries up to and including `index`, which a snapshot now covers.
    /// §7, the one rule for a log meeting a snapshot (the core installing one from the
    /// leader, the write-ahead log recovering one): a log that holds the snapshot's last
    /// entry keeps what follows it; any other log is discarded. Returns whether it kept it.
    @discardableResult
    public mutating func install(snapshotAt index: LogIndex, term: Term) -> Bool {
        let keepsSuffix = matches(index: index, term: term)
        if keepsSuffix {
            compact(through: index, term: term)
        } else {
            self = RaftLog(snapshotIndex: index, snapshotTerm: term)
        }
        return keepsSuffix
    }

    public mutating func compact(through index: LogIndex, term: Term) {
        if index >= lastIndex {
            entries.removeAll()
        } else if index > snapshotIndex {
            precondition(self.term(at: index) == term, "compacting at \(index): term \(String(describing: self.term(at: index))) is not \(term)")
            entries.removeSubrange(..<(position(of: index) + 1))
        }
        snapshotIndex = max(snapshotIndex, index)
        if snapshotIndex == index { snapshotTerm = term }
    }

    private func position(of index: LogIndex) -> Int {
        Int(index.rawValue - snapshotIndex.rawValue - 1)
    }
}

extension LogIndex {
    public static func + (lhs: LogIndex, rhs: Int) -> LogIndex { lhs.advanced(by: rhs) }
    public static func - (lhs: LogIndex, rhs: Int) -> LogIndex { lhs.advanced(by: -rhs) }
    public static func += (lhs: inout LogIndex, rhs: Int) { lhs = lhs.advanced(by: rhs) }
    public static func -= (lhs: inout LogIndex, rhs: Int) { lhs = lhs.advanced(by: -rhs) }
}
