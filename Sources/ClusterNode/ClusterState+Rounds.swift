import Raft

/// The state machine's side of a replica's round, shared by the node's cluster-service layer
/// and the simulation: what a durable output does to the state, and fingerprints of the
/// state for the simulation's check that every node reaches the same state at every index.
extension ClusterState {
    /// One change a round's output made.
    public enum Change {
        /// The leader's snapshot replaced the state; `previous` is what it replaced.
        case restored(previous: ClusterState)
        /// A committed entry was applied: its command (nil when it holds none or none that
        /// decodes) and what applying it did.
        case applied(Entry, ClusterCommand?, Outcome)
    }

    /// A leader's snapshot whose bytes hold no state.
    public struct InvalidSnapshot: Error, CustomStringConvertible {
        public let index: LogIndex
        public let problem: ClusterCommandCodec.Malformed
        public var description: String { "the snapshot at index \(index) holds no valid state: \(problem)" }
    }

    /// Carries one output of a round (durable, its messages sent) to the state machine: a
    /// snapshot from the leader replaces the state, then the committed entries after the
    /// applied index are applied in order. `decode` gives an entry's command when the caller
    /// decoded it already (nil: decoded here); `each` sees every change as it is made, with
    /// the state right after it (the caller's own copy is being written meanwhile).
    public mutating func apply(_ output: Output, decode: (Entry) -> ClusterCommand?,
                               each: (Change, borrowing ClusterState) -> Void) throws(InvalidSnapshot) {
        if let snapshot = output.snapshot {
            let restored: ClusterState
            do {
                restored = try ClusterState(snapshotData: snapshot.data)
            } catch {
                throw InvalidSnapshot(index: snapshot.metadata.index, problem: error)
            }
            let previous = self
            self = restored
            each(.restored(previous: previous), self)
        }
        for entry in output.committed where entry.index.rawValue > appliedIndex {
            let command = entry.kind == .command ? (decode(entry) ?? (try? ClusterCommandCodec.decode(entry.data))) : nil
            let outcome = apply(entry, decoded: command)
            each(.applied(entry, command, outcome), self)
        }
    }

    /// A 64-bit fingerprint of the state's scalars, capacity and node health, and of the
    /// named services' and containers' records (an absent one counts as absent). Two nodes at
    /// the same applied index with different fingerprints for the same names have diverged.
    public func fingerprint(ofServices serviceIDs: some Sequence<Int>, containers containerIDs: [Int] = []) -> UInt64 {
        var writer = ByteWriter(capacity: 256)
        writer.write(appliedIndex)
        writer.write(UInt64(nextServiceID))
        writer.write(UInt64(nextContainerID))
        for id in containerIDs {
            writer.write(UInt64(id))
            if let record = containers[id] { writer.write(record) } else { writer.write(UInt8(0)) }
        }
        // (Capacity and health enter as order-free sums: no sorting, no allocation.)
        writer.write(UInt64(capacity.count))
        writer.write(capacity.keys.reduce(0) { $0 &+ Self.scramble($1) })
        writer.write(UInt8(0xff))
        writer.write(UInt64(unhealthyNodes.count))
        writer.write(unhealthyNodes.reduce(0) { $0 &+ Self.scramble($1) })
        writer.write(UInt8(0xfe))
        var ids = Array(serviceIDs)
        if ids.count > 1 { ids = Set(ids).sorted() }
        for id in ids {
            writer.write(UInt64(id))
            if let service = services[id] { writer.write(service) } else { writer.write(UInt8(0)) }
        }
        return FNV1a.hash(writer.bytes)
    }
}

extension ClusterState {
    /// SplitMix64's finalizer: a sum of scrambled members identifies a set (a plain sum
    /// would confuse {1, 4} with {2, 3}).
    static func scramble(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The 64-bit FNV-1a hash: cheap, stable across processes and platforms (unlike `Hasher`).
public enum FNV1a {
    public static func hash(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
