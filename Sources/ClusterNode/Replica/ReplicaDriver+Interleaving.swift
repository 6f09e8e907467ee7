import Raft

/// The order in which a round steps the inputs queued for it and the ticks that passed.
extension ReplicaDriver {
    /// `ticks` ticks with the queued `inputs` among them: each run of inputs after the ticks
    /// that had passed when it came (`arrivals`, counted of `ticksPassed`; scaled when the
    /// ticks were capped to fewer), the remaining ticks last. It matters after a round
    /// thread's long fdatasync, when many ticks and the messages that came meanwhile are
    /// stepped in one round. With every tick first (the order before session 21), a leader's
    /// check that it heard from a majority within each election timeout (thesis §6.2) ran
    /// with its followers' answers from that timeout still unread, and it stepped down and
    /// campaigned again with no fault anywhere (likely what a comparison run's leader did:
    /// after such a stall it alone campaigned, in term 2, and won); and a follower ran out
    /// its election timeout with its leader's heartbeats from that time unread, and started a
    /// pre-vote. Either order is safe (ticks only drive timeouts); this one is what happened.
    static func interleaving(_ inputs: [RaftNode.Input], arrivals: [(end: Int, ticksBefore: Int)], ticks: Int,
                             ticksPassed: Int) -> [RaftNode.Input] {
        var batch: [RaftNode.Input] = []
        batch.reserveCapacity(ticks + inputs.count)
        var delivered = 0
        var start = 0
        for arrival in arrivals {
            let before = ticksPassed > ticks ? arrival.ticksBefore * ticks / ticksPassed : min(arrival.ticksBefore, ticks)
            while delivered < before {
                batch.append(.tick)
                delivered += 1
            }
            batch.append(contentsOf: inputs[start..<arrival.end])
            start = arrival.end
        }
        batch.append(contentsOf: inputs[start...])
        while delivered < ticks {
            batch.append(.tick)
            delivered += 1
        }
        return batch
    }
}
