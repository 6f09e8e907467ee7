/// A priority queue of timed events; equal times come out in insertion order, so a
/// run is fully determined by its seed.
///
/// The heap orders plain keys (time, sequence, slot); the events themselves wait in slots
/// and never move, so sifting copies no event (an envelope with its entries would cost a
/// retain and a release per field at every swap).
struct EventQueue<Event> {
    private struct Key {
        var time: UInt64
        var sequence: UInt64
        var slot: Int

        func isEarlier(than other: Key) -> Bool {
            time != other.time ? time < other.time : sequence < other.sequence
        }
    }

    private var heap: [Key] = []
    private var slots: [Event?] = []
    private var freeSlots: [Int] = []
    private var nextSequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func schedule(_ event: Event, at time: UInt64) {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = event
        } else {
            slot = slots.count
            slots.append(event)
        }
        heap.append(Key(time: time, sequence: nextSequence, slot: slot))
        nextSequence += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].isEarlier(than: heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popFirst() -> (time: UInt64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let first = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].isEarlier(than: heap[smallest]) { smallest = left }
            if right < heap.count, heap[right].isEarlier(than: heap[smallest]) { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        let event = slots[first.slot].take()!
        freeSlots.append(first.slot)
        return (first.time, event)
    }
}
