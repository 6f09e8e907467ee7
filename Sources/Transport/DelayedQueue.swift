/// Messages held back until a time each, kept in the order they were added (a message never
/// overtakes one added before it, whatever their times), within a bound: beyond it the
/// oldest go. `PostChannel`'s delayed links.
struct DelayedQueue<Message> {
    private var items: [(message: Message, due: Double)] = []
    private var head = 0

    var count: Int { items.count - head }
    var isEmpty: Bool { head == items.count }
    /// When the first one is due (nil: none waits).
    var firstDue: Double? { isEmpty ? nil : items[head].due }

    /// Adds `messages` due at `due`; returns how many of the oldest were dropped to keep at
    /// most `limit`.
    mutating func append(_ messages: [Message], due: Double, limit: Int) -> Int {
        for message in messages { items.append((message, due)) }
        let excess = max(0, count - limit)
        head += excess
        return excess
    }

    /// Takes the ones due by `now` from the front (in order; one not yet due holds back
    /// those behind it).
    mutating func takeDue(now: Double) -> [Message] {
        var due: [Message] = []
        while head < items.count && items[head].due <= now {
            due.append(items[head].message)
            head += 1
        }
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 4_096 {
            items.removeFirst(head)
            head = 0
        }
        return due
    }

    mutating func removeAll() {
        items.removeAll()
        head = 0
    }
}
