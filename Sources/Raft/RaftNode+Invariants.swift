/// Checks that hold after every step; on in release builds too (a broken one is a bug,
/// and running on with it could lose committed data).
extension RaftNode {
    func checkInvariants() {
        precondition(commitIndex <= log.lastIndex, "\(id): commitIndex \(commitIndex) beyond last index \(log.lastIndex)")
        precondition(commitIndex >= log.snapshotIndex, "\(id): commitIndex \(commitIndex) below snapshot \(log.snapshotIndex)")
        precondition(log.lastTerm <= currentTerm, "\(id): last log term \(log.lastTerm) beyond current term \(currentTerm)")
        precondition(emittedCommitIndex <= commitIndex, "\(id): emitted \(emittedCommitIndex) beyond commit \(commitIndex)")
        precondition(configurations.first?.index == log.snapshotIndex,
                     "\(id): the log's configurations \(configurations) do not start at its snapshot index \(log.snapshotIndex)")
        if let snapshot {
            precondition(snapshot.metadata.index >= log.snapshotIndex && snapshot.metadata.index <= emittedCommitIndex,
                         "\(id): snapshot at \(snapshot.metadata.index) outside compacted \(log.snapshotIndex)...applied \(emittedCommitIndex)")
        } else {
            precondition(log.snapshotIndex == 0, "\(id): log compacted through \(log.snapshotIndex) without a snapshot")
        }
        switch roleState {
        case .leader:
            guard let leader = leaderState else { preconditionFailure("\(id): leader without leader state") }
            precondition(leaderID == id && votedFor == id, "\(id): leader of term \(currentTerm) with leaderID \(String(describing: leaderID)) votedFor \(String(describing: votedFor))")
            precondition(leader.progress[id]?.matchIndex == log.lastIndex, "\(id): own match \(String(describing: leader.progress[id]?.matchIndex)) is not last index \(log.lastIndex)")
            for (peer, progress) in leader.progress {
                precondition((progress.state == .snapshot) == (leader.snapshotTransfers[peer] != nil),
                             "\(id): progress of \(peer) is \(progress.state) but a snapshot transfer is \(leader.snapshotTransfers[peer] == nil ? "not " : "")under way")
                precondition(progress.matchIndex <= log.lastIndex && progress.nextIndex > progress.matchIndex
                                 && progress.nextIndex <= log.lastIndex + 1,
                             "\(id): progress of \(peer) out of range: match \(progress.matchIndex) next \(progress.nextIndex) last \(log.lastIndex)")
            }
        case .candidate:
            precondition(leaderState == nil && leaderID == nil && votedFor == id, "\(id): candidate of term \(currentTerm) with leaderID \(String(describing: leaderID)) votedFor \(String(describing: votedFor))")
        case .preCandidate, .follower:
            precondition(leaderState == nil, "\(id): \(role) holds leader state")
        }
    }
}
