import Raft

/// Entries of the given terms at indexes `first`, `first + 1`, ... (one byte of data each).
func entries(terms: [UInt64], startingAt first: UInt64 = 1) -> [Entry] {
    terms.enumerated().map { Entry(term: Term($0.element), index: LogIndex(first + UInt64($0.offset)), data: [UInt8($0.offset & 0xFF)]) }
}
