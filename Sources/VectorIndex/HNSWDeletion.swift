import Foundation
import Tensor

// Deleting from an HNSW graph: tombstones, repair and compaction (see ``HNSWIndex``).
// Dimension letters as in HNSWIndex.swift: N nodes, D dimension, M / M0 links.

extension HNSWIndex {
    // MARK: Removing

    /// Marks `id` removed (a tombstone that still routes); may trigger ``purgeDeleted()``.
    public func remove(id: Int64) throws {
        guard let s = slotOf.removeValue(forKey: id) else { throw VectorIndexError.unknownID(id) }
        deleted[Int(s)] = 1
        tombstones += 1
        if slotOf.isEmpty {
            removeAllNodes()
        } else if Double(tombstones) > parameters.purgeFraction * Double(ids.count) {
            purgeDeleted()
        }
    }

    func removeAllNodes() {
        vectors.removeAll()
        links0.removeAll()
        upperOffset.removeAll()
        upper.removeAll()
        levels.removeAll()
        deleted.removeAll()
        ids.removeAll()
        entryPoint = -1
        maxLevel = -1
        tombstones = 0
    }

    /// Repairs the lists that point at tombstones, then drops the tombstones and compacts storage.
    ///
    /// Each live node with a tombstone among its neighbours on a layer re-selects (heuristic,
    /// up to M or M0) from its live neighbours plus the live nodes reached through its
    /// tombstones on that layer (``GraphView/repairHops``). Runs on all cores; O(N·M) plus the
    /// repaired lists' distance work.
    public func purgeDeleted() {
        guard tombstones > 0 else { return }
        let g = graph, n = ids.count, pool = visitedPool
        Parallel.forEach(0..<n, chunks: Parallel.coreCount * 4) { range in
            let visited = pool.acquire(nodeCount: n)
            defer { pool.release(visited) }
            for v in range where g.deleted[v] == 0 {
                for level in 0...Int(g.levels[v]) { g.repairLinks(of: UInt32(v), level: level, visited: visited) }
            }
        }
        compact()
    }

    /// Renumbers the live nodes 0..<count in slot order and rebuilds every buffer without
    /// tombstones (briefly holding the old copy too: peak memory ≈ 2× the index).
    func compact() {
        let g = graph, n = ids.count, d = dimension
        var newSlot = [UInt32](repeating: .max, count: n)
        var live = 0
        for s in 0..<n where g.deleted[s] == 0 { newSlot[s] = UInt32(live); live += 1 }
        let old = (vectors: vectors.copy(), links0: links0.copy(), upperOffset: upperOffset.copy(),
                   upper: upper.copy(), levels: levels.copy(), ids: ids.copy())
        removeAllNodes()
        reserve(nodes: live)
        slotOf.removeAll(keepingCapacity: true)
        for s in 0..<n where newSlot[s] != .max {
            let level = Int(old.levels[s])
            vectors.append(UnsafeBufferPointer(start: old.vectors.base + s * d, count: d))
            upperOffset.append(repeating: upper.count, count: 1)
            for l in 0...level {
                let list = l == 0 ? old.links0.base + s * (1 + m0) : old.upper.base + old.upperOffset[s] + (l - 1) * (1 + m)
                var record = [UInt32](repeating: 0, count: 1 + (l == 0 ? m0 : m))
                for j in 0..<Int(list[0]) where newSlot[Int(list[1 + j])] != .max {
                    record[0] += 1
                    record[Int(record[0])] = newSlot[Int(list[1 + j])]
                }
                record.withUnsafeBufferPointer { (l == 0 ? links0 : upper).append($0) }
            }
            levels.append(repeating: UInt8(level), count: 1)
            deleted.append(repeating: 0, count: 1)
            ids.append(repeating: old.ids[s], count: 1)
            slotOf[old.ids[s]] = newSlot[s]
        }
        // The entry point is the first node on the highest remaining layer.
        for s in 0..<ids.count where Int(levels[s]) > maxLevel {
            maxLevel = Int(levels[s])
            entryPoint = s
        }
    }
}
