import CKernels
import Foundation
import Tensor

// MARK: - Graph algorithms

/// A (key, slot) pair; the key is a score or a negated score.
struct Entry {
    var key: Float
    var slot: UInt32
}

/// Raw pointers into an index's storage: the hot loops run on this, possibly on several threads
/// (see the phases in ``HNSWIndex`` for which parts each thread writes).
struct GraphView: @unchecked Sendable {
    let d: Int, m: Int, m0: Int
    let vectors: UnsafeMutablePointer<Float>        // (N, D)
    let links0: UnsafeMutablePointer<UInt32>        // (N, 1 + M0)
    let upper: UnsafeMutablePointer<UInt32>         // (ΣL, 1 + M)
    let upperOffset: UnsafeMutablePointer<Int>      // (N)
    let levels: UnsafeMutablePointer<UInt8>         // (N)
    let deleted: UnsafeMutablePointer<UInt8>        // (N)
    let ids: UnsafeMutablePointer<Int64>            // (N)

    /// The `[count, neighbours...]` record of `slot` on `level` (≤ the node's top layer).
    @inline(__always)
    func links(_ slot: UInt32, _ level: Int) -> UnsafeMutablePointer<UInt32> {
        level == 0 ? links0 + Int(slot) * (1 + m0) : upper + upperOffset[Int(slot)] + (level - 1) * (1 + m)
    }

    @inline(__always) func maxLinks(_ level: Int) -> Int { level == 0 ? m0 : m }

    @inline(__always) func vector(_ slot: UInt32) -> UnsafeMutablePointer<Float> { vectors + Int(slot) * d }

    @inline(__always)
    func score(_ query: UnsafePointer<Float>, _ slot: UInt32) -> Float { dotProduct(query, vector(slot), count: d) }

    /// A live node the filter admits.
    @inline(__always)
    func admitted(_ slot: UInt32, _ filter: IDFilter?) -> Bool {
        deleted[Int(slot)] == 0 && (filter.map { $0(ids[Int(slot)]) } ?? true)
    }

    // MARK: Layer search

    /// Greedy walk on an upper layer (ef = 1): move to the best neighbour until none improves.
    func greedy(query: UnsafePointer<Float>, from start: Entry, level: Int) -> Entry {
        var best = start, changed = true
        while changed {
            changed = false
            let list = links(best.slot, level)
            for j in 0..<Int(list[0]) {
                let s = score(query, list[1 + j])
                if s > best.key { best = Entry(key: s, slot: list[1 + j]); changed = true }
            }
        }
        return best
    }

    /// Best-first search of one layer (the paper's Algorithm 2) with an admission filter.
    ///
    /// Candidates are every visited node; results only admitted live ones, at most `ef`. Stops
    /// when `ef` results exist and the best candidate is worse than the worst result, when
    /// candidates run out, or after `budget` distance evaluations.
    func searchLayer(query: UnsafePointer<Float>, entries: [Entry], level: Int, ef: Int, visited: VisitedList,
                     filter: IDFilter?, budget: Int) -> (results: ScoreHeap, budgetExceeded: Bool) {
        visited.reset()
        var candidates = ScoreHeap()    // key −score: the root is the best candidate
        var results = ScoreHeap()       // key score: the root is the worst result
        for e in entries where visited.visit(e.slot) {
            candidates.push(Entry(key: -e.key, slot: e.slot))
            if admitted(e.slot, filter) { results.push(e) }
        }
        var visits = 0
        // The unvisited neighbours of a candidate are scored in one gather, which prefetches
        // each vector while the one before it is multiplied.
        let fresh = UnsafeMutablePointer<UInt32>.allocate(capacity: maxLinks(level))
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: maxLinks(level))
        defer { fresh.deallocate(); scores.deallocate() }
        while let c = candidates.pop() {
            if results.count >= ef && -c.key < results.top.key { break }
            let list = links(c.slot, level)
            var count = 0
            for j in 0..<Int(list[0]) where visited.visit(list[1 + j]) {
                fresh[count] = list[1 + j]
                count += 1
            }
            ck_dot_gather(query, vectors, d, fresh, count, scores)
            visits += count
            for j in 0..<count {
                let n = fresh[j], s = scores[j]
                if results.count < ef || s > results.top.key {
                    candidates.push(Entry(key: -s, slot: n))
                    if admitted(n, filter) {
                        results.push(Entry(key: s, slot: n))
                        if results.count > ef { _ = results.pop() }
                    }
                }
            }
            if visits > budget { return (results, true) }
        }
        return (results, false)
    }

    // MARK: Neighbour selection

    /// The paper's heuristic (Algorithm 4, hnswlib's `getNeighborsByHeuristic2`): walking the
    /// candidates best first, keep one only if it is closer to the base than to every node kept
    /// so far — `dot(c, base) ≥ dot(c, kept)` — which spreads links over directions instead of
    /// spending them all inside one cluster.
    /// - Parameters:
    ///   - candidates: `(score with base, slot)`, sorted by score descending.
    ///   - maxCount: M or M0.
    ///   - list: the `[count, neighbours...]` record to write.
    func selectNeighbours(_ candidates: [Entry], maxCount: Int, into list: UnsafeMutablePointer<UInt32>) {
        var kept = 0
        for c in candidates {
            if kept >= maxCount { break }
            let v = vector(c.slot)
            var good = true
            for j in 0..<kept where dotProduct(v, vector(list[1 + j]), count: d) > c.key {
                good = false
                break
            }
            if good { list[1 + kept] = c.slot; kept += 1 }
        }
        list[0] = UInt32(kept)
    }

    // MARK: Insertion phases

    /// Phase 1 for one new node: search the pre-batch graph from `entryPoint` down, add the
    /// batch members (exact scores from the Gram row), pick neighbours per layer.
    ///
    /// Reads only pre-batch nodes' lists (unchanged during this phase) and writes only this node's.
    func linkNewNode(slot: UInt32, batchFirst: Int, batchCount: Int, gramRow: UnsafePointer<Float>,
                     entryPoint: Int, maxLevel: Int, efConstruction: Int, visited: VisitedList) {
        let top = Int(levels[Int(slot)]), q = vector(slot)
        var found = [[Entry]](repeating: [], count: top + 1)    // per layer, (score, slot)
        if entryPoint >= 0 {
            var entry = Entry(key: score(q, UInt32(entryPoint)), slot: UInt32(entryPoint))
            for level in stride(from: maxLevel, to: top, by: -1) { entry = greedy(query: q, from: entry, level: level) }
            var entries = [entry]
            for level in stride(from: min(top, maxLevel), through: 0, by: -1) {
                let r = searchLayer(query: q, entries: entries, level: level, ef: efConstruction,
                                    visited: visited, filter: nil, budget: .max)
                found[level] = r.results.entries
                if !found[level].isEmpty { entries = found[level] }
            }
        }
        for level in 0...top {
            for j in 0..<batchCount where batchFirst + j != Int(slot) && Int(levels[batchFirst + j]) >= level {
                found[level].append(Entry(key: gramRow[j], slot: UInt32(batchFirst + j)))
            }
            found[level].sort { $0.key > $1.key || ($0.key == $1.key && $0.slot < $1.slot) }
            if found[level].count > efConstruction { found[level].removeLast(found[level].count - efConstruction) }
            // New nodes keep M links on every layer (hnswlib); layer 0 has room for 2M.
            selectNeighbours(found[level], maxCount: m, into: links(slot, level))
        }
    }

    /// Phase 3 for one (target, layer): append the new nodes that linked to `target`; when the
    /// list overflows, re-select from old ∪ new with the heuristic. Writes only `target`'s list.
    func addReverseLinks(target: UInt32, level: Int, sources: [UInt32]) {
        let list = links(target, level), capacity = maxLinks(level)
        var merged = (0..<Int(list[0])).map { list[1 + $0] }
        for s in sources where s != target && !merged.contains(s) { merged.append(s) }
        if merged.count <= capacity {
            for (j, s) in merged.enumerated() { list[1 + j] = s }
            list[0] = UInt32(merged.count)
            return
        }
        let t = vector(target)
        var candidates = merged.map { Entry(key: dotProduct(t, vector($0), count: d), slot: $0) }
        candidates.sort { $0.key > $1.key || ($0.key == $1.key && $0.slot < $1.slot) }
        selectNeighbours(candidates, maxCount: capacity, into: list)
    }

    // MARK: Repair

    /// How far repair looks through chains of tombstones for live replacement neighbours.
    /// One hop left recall after purging 30% at 0.946 (fresh build of the rest: 0.964); two
    /// hops give 0.963 for about 5× the (small) repair time.
    static let repairHops = 2

    /// Re-selects the neighbours of live node `v` on `level` if any of them is a tombstone,
    /// from its live neighbours plus the live nodes reached from its tombstones through at most
    /// ``repairHops`` tombstones. Writes only `v`'s list and reads only its own and tombstones'
    /// lists, so live nodes can be repaired in parallel.
    func repairLinks(of v: UInt32, level: Int, visited: VisitedList) {
        let list = links(v, level)
        let n = Int(list[0])
        guard (0..<n).contains(where: { deleted[Int(list[1 + $0])] != 0 }) else { return }
        visited.reset()
        _ = visited.visit(v)
        var pool: [UInt32] = [], tombs: [UInt32] = []
        func take(_ u: UInt32) {
            guard visited.visit(u) else { return }
            if deleted[Int(u)] == 0 { pool.append(u) } else { tombs.append(u) }
        }
        for j in 0..<n { take(list[1 + j]) }
        for _ in 0..<Self.repairHops {
            let frontier = tombs
            tombs.removeAll(keepingCapacity: true)
            for u in frontier {
                let far = links(u, level)
                for i in 0..<Int(far[0]) { take(far[1 + i]) }
            }
        }
        let base = vector(v)
        var candidates = pool.map { Entry(key: dotProduct(base, vector($0), count: d), slot: $0) }
        candidates.sort { $0.key > $1.key || ($0.key == $1.key && $0.slot < $1.slot) }
        selectNeighbours(candidates, maxCount: maxLinks(level), into: list)
    }
}
