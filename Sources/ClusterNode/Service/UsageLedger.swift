/// Resources that changes not yet applied will take, per change, with their sum per node
/// kept as changes come and go: placing a request adds the sum to the applied usage, and that
/// costs the nodes, not the changes in flight (at 128 clients every request summed 128
/// proposals' deltas, and the log's unapplied entries besides, under the lock).
struct UsageLedger<Key: Hashable> {
    /// Each change's resources by node.
    private(set) var deltas: [Key: [UInt64: NodeResources]] = [:]
    /// The sum of `deltas` by node (nodes that sum to nothing are left out).
    private(set) var total: [UInt64: NodeResources] = [:]

    subscript(key: Key) -> [UInt64: NodeResources]? {
        get { deltas[key] }
        set {
            if let old = deltas.removeValue(forKey: key) { add(old, times: -1) }
            if let newValue {
                deltas[key] = newValue
                add(newValue, times: 1)
            }
        }
    }

    /// Forgets the changes whose keys satisfy `isGone`.
    mutating func removeAll(where isGone: (Key) -> Bool) {
        for key in deltas.keys where isGone(key) { self[key] = nil }
    }

    private mutating func add(_ delta: [UInt64: NodeResources], times sign: Int) {
        for (node, resources) in delta {
            let sum = (total[node] ?? .zero) + resources * sign
            total[node] = sum == .zero ? nil : sum
        }
    }
}
