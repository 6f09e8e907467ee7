/// Items held back until a time each, kept in the order they were added (an item never
/// overtakes one added before it, whatever their times), within a bound: beyond it the
/// oldest go. `PostChannel`'s delayed links, and the lanes of waits that give up
/// (`WaitDeadlines`).
public struct DelayedQueue<Message> {
    private var items: [(message: Message, due: Double)] = []
    private var head = 0

    public init() {}

    public var count: Int { items.count - head }
    public var isEmpty: Bool { head == items.count }
    /// When the first one is due (nil: none waits).
    public var firstDue: Double? { isEmpty ? nil : items[head].due }

    /// Adds `messages` due at `due`; returns how many of the oldest were dropped to keep at
    /// most `limit`.
    @discardableResult
    public mutating func append(_ messages: [Message], due: Double, limit: Int = .max) -> Int {
        for message in messages { items.append((message, due)) }
        let excess = max(0, count - limit)
        head += excess
        return excess
    }

    /// Takes the ones due by `now` from the front (in order; one not yet due holds back
    /// those behind it).
    public mutating func takeDue(now: Double) -> [Message] {
        takeFront { _, due in due <= now }
    }

    /// Takes items from the front while `isTaken` says so of the first one left.
    public mutating func takeFront(while isTaken: (Message, Double) -> Bool) -> [Message] {
        var taken: [Message] = []
        while head < items.count && isTaken(items[head].message, items[head].due) {
            taken.append(items[head].message)
            head += 1
        }
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 4_096 {
            items.removeFirst(head)
            head = 0
        }
        return taken
    }

    public mutating func removeAll() {
        items.removeAll()
        head = 0
    }
}
