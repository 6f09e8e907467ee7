import Testing
import Transport

/// Items come out in the order they went in, whatever their times; taking from the front
/// stops at the first item the test refuses.
@Suite struct DelayedQueueTests {
    @Test func takesAndDropsFromTheFrontInOrder() {
        var queue = DelayedQueue<Int>()
        queue.append([1, 2], due: 5)
        queue.append([3], due: 1)  // due earlier, still behind 1 and 2
        queue.append([4], due: 9)
        #expect(queue.count == 4 && queue.firstDue == 5)
        #expect(queue.takeDue(now: 4).isEmpty)
        #expect(queue.takeFront { item, _ in item < 2 } == [1])
        #expect(queue.takeDue(now: 5) == [2, 3])
        #expect(queue.takeFront { _, _ in false }.isEmpty)
        #expect(queue.count == 1 && queue.firstDue == 9)
        #expect(queue.takeFront { _, due in due <= 9 } == [4])
        #expect(queue.isEmpty && queue.firstDue == nil)
        queue.append([5], due: 2)
        #expect(queue.takeDue(now: 2) == [5])
    }

    @Test func aBoundDropsTheOldest() {
        var queue = DelayedQueue<Int>()
        #expect(queue.append([1, 2, 3], due: 1, limit: 2) == 1)
        #expect(queue.takeDue(now: 1) == [2, 3])
    }

    @Test func manyTakenFromTheFrontKeepTheRestInOrder() {
        var queue = DelayedQueue<Int>()
        for item in 0..<10_000 { queue.append([item], due: Double(item)) }
        #expect(queue.takeFront { item, _ in item < 5_000 }.count == 5_000)
        #expect(queue.takeDue(now: 5_001) == [5_000, 5_001])
        #expect(queue.count == 4_998 && queue.firstDue == 5_002)
    }
}
