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

/// xoshiro256** (Blackman & Vigna), seeded through SplitMix64: a small, fast generator whose
/// whole state is four words, so it is serialized with the index and a reloaded index draws
/// the same levels as the original would have.
struct Xoshiro256: Equatable {
    var state: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    init(state: (UInt64, UInt64, UInt64, UInt64)) { self.state = state }

    static func == (a: Xoshiro256, b: Xoshiro256) -> Bool {
        a.state.0 == b.state.0 && a.state.1 == b.state.1 && a.state.2 == b.state.2 && a.state.3 == b.state.3
    }

    mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// Uniform in (0, 1] (never 0, so −ln u is finite).
    mutating func nextUnitInterval() -> Double { (Double(next() >> 11) + 1) * 0x1p-53 }
}
