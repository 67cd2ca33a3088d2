import Foundation
import Tensor

// MARK: - Small containers

/// A binary min-heap of entries by key.
struct ScoreHeap {
    private(set) var entries: [Entry] = []

    var count: Int { entries.count }
    /// The smallest key (the heap must not be empty).
    var top: Entry { entries[0] }

    mutating func push(_ e: Entry) {
        entries.append(e)
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) >> 1
            guard entries[i].key < entries[parent].key else { break }
            entries.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let last = entries.popLast() else { return nil }
        guard !entries.isEmpty else { return last }
        let result = entries[0]
        entries[0] = last
        var i = 0
        let n = entries.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < n && entries[l].key < entries[smallest].key { smallest = l }
            if r < n && entries[r].key < entries[smallest].key { smallest = r }
            if smallest == i { break }
            entries.swapAt(i, smallest)
            i = smallest
        }
        return result
    }
}

/// Per-search "visited" marks: a tag per slot, equal to the current generation when visited,
/// so resetting is a counter increment rather than clearing N entries.
final class VisitedList {
    private var tags: UnsafeMutablePointer<UInt16>
    private(set) var capacity: Int
    private var generation: UInt16 = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        tags = .allocate(capacity: self.capacity)
        tags.initialize(repeating: 0, count: self.capacity)
    }

    deinit { tags.deallocate() }

    /// Forgets all marks.
    func reset() {
        generation &+= 1
        if generation == 0 {
            tags.update(repeating: 0, count: capacity)
            generation = 1
        }
    }

    /// Marks `slot`; returns `true` if it was not marked yet.
    @inline(__always)
    func visit(_ slot: UInt32) -> Bool {
        if tags[Int(slot)] == generation { return false }
        tags[Int(slot)] = generation
        return true
    }
}

/// Visited lists shared by concurrent searches (hnswlib's `VisitedListPool`).
final class VisitedPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [VisitedList] = []

    /// A list with room for `nodeCount` slots.
    func acquire(nodeCount: Int) -> VisitedList {
        lock.lock()
        let list = free.popLast()
        lock.unlock()
        if let list, list.capacity >= nodeCount { return list }
        return VisitedList(capacity: max(nodeCount, 1024) + nodeCount / 4)
    }

    func release(_ list: VisitedList) {
        lock.lock()
        free.append(list)
        lock.unlock()
    }
}

/// A growable array of plain values with a stable pointer between growths, owned by one index
/// and freed in `deinit`.
final class NodeBuffer<Element: BitwiseCopyable> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int = 16) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    subscript(i: Int) -> Element {
        get { base[i] }
        set { base[i] = newValue }
    }

    /// Ensures room for `n` elements (doubling, so appends are amortised O(1)).
    func reserve(_ n: Int) {
        guard n > capacity else { return }
        let newCapacity = max(n, capacity * 2)
        let newBase = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        newBase.moveInitialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    func append(repeating value: Element, count n: Int) {
        reserve(count + n)
        (base + count).initialize(repeating: value, count: n)
        count += n
    }

    func append(_ values: UnsafeBufferPointer<Element>) {
        reserve(count + values.count)
        if let source = values.baseAddress { (base + count).initialize(from: source, count: values.count) }
        count += values.count
    }

    /// Empties the buffer, keeping a small allocation.
    func removeAll() {
        base.deallocate()
        capacity = 16
        base = .allocate(capacity: capacity)
        count = 0
    }

    func copy() -> NodeBuffer<Element> {
        let c = NodeBuffer(capacity: max(count, 1))
        c.append(UnsafeBufferPointer(start: base, count: count))
        return c
    }
}

// MARK: - Random numbers

