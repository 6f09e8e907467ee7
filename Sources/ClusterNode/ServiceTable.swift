/// The cluster's services by ID, in chunks of 1,024 slots.
///
/// IDs are handed out in order (`ClusterState.nextServiceID`), so a lookup is two array
/// indexings and iteration goes in ID order. What a dictionary did on the round thread, this
/// does not:
/// - growing never rehashes: a new chunk is added (a dictionary of 46,000 services took 70
///   to 120 ms to grow, and every request waiting on that round waited with it);
/// - a change copies at most the one chunk it touches when a snapshot still shares the
///   table (the snapshot's copy of a dictionary made the next change copy all of it: about
///   70 ms at 35,000 services).
/// A chunk whose services were all deleted is released.
public struct ServiceTable: Sendable {
    private static let chunkBits = 10
    private static let chunkSize = 1 << chunkBits
    private var chunks: [[ServiceRecord?]] = []
    /// Services held in each chunk (an empty chunk's storage is released).
    private var chunkCounts: [Int] = []
    /// How many services there are.
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    private static func position(of id: Int) -> (chunk: Int, slot: Int) { (id >> chunkBits, id & (chunkSize - 1)) }

    /// The service with `id`, if there is one; setting nil deletes it.
    public subscript(id: Int) -> ServiceRecord? {
        get {
            guard id >= 0 else { return nil }
            let (chunk, slot) = Self.position(of: id)
            guard chunk < chunks.count, chunkCounts[chunk] > 0 else { return nil }
            return chunks[chunk][slot]
        }
        set {
            if let newValue { insert(newValue, at: id) } else { removeValue(forKey: id) }
        }
    }

    private mutating func insert(_ record: ServiceRecord, at id: Int) {
        precondition(id >= 0, "service IDs are not negative: \(id)")
        let (chunk, slot) = Self.position(of: id)
        while chunks.count <= chunk {
            chunks.append([])
            chunkCounts.append(0)
        }
        if chunkCounts[chunk] == 0 { chunks[chunk] = Array(repeating: nil, count: Self.chunkSize) }
        if chunks[chunk][slot] == nil {
            chunkCounts[chunk] += 1
            count += 1
        }
        chunks[chunk][slot] = record
    }

    /// Deletes the service with `id`; returns it, or nil when there was none.
    @discardableResult
    public mutating func removeValue(forKey id: Int) -> ServiceRecord? {
        guard let removed = self[id] else { return nil }
        let (chunk, slot) = Self.position(of: id)
        chunkCounts[chunk] -= 1
        count -= 1
        if chunkCounts[chunk] == 0 { chunks[chunk] = [] } else { chunks[chunk][slot] = nil }
        return removed
    }

    /// Every service, in ID order.
    public var values: Values { Values(chunks: chunks) }

    /// The service with the highest ID.
    public var last: ServiceRecord? {
        for chunk in chunks.indices.reversed() where chunkCounts[chunk] > 0 {
            if let record = chunks[chunk].last(where: { $0 != nil }) { return record }
        }
        return nil
    }

    /// Every service's ID, in order.
    public var keys: LazyMapSequence<Values, Int> { values.lazy.map(\.id) }

    /// The services in ID order, read from the chunks as they were when it was made.
    public struct Values: Sequence, Sendable {
        fileprivate let chunks: [[ServiceRecord?]]

        public func makeIterator() -> Iterator { Iterator(chunks: chunks) }

        public struct Iterator: IteratorProtocol {
            fileprivate let chunks: [[ServiceRecord?]]
            private var chunk = 0
            /// The chunk being read (held, not fetched again for every record).
            private var records: [ServiceRecord?] = []
            private var slot = 0

            fileprivate init(chunks: [[ServiceRecord?]]) {
                self.chunks = chunks
                records = chunks.first ?? []
            }

            public mutating func next() -> ServiceRecord? {
                while true {
                    while slot < records.count {
                        defer { slot += 1 }
                        if let record = records[slot] { return record }
                    }
                    chunk += 1
                    guard chunk < chunks.count else { return nil }
                    records = chunks[chunk]
                    slot = 0
                }
            }
        }
    }
}

extension ServiceTable: Equatable {
    /// The same services (however the chunks came to be laid out).
    public static func == (lhs: ServiceTable, rhs: ServiceTable) -> Bool {
        lhs.count == rhs.count && lhs.values.elementsEqual(rhs.values)
    }
}
