import Foundation
import Tensor

// Building an HNSW graph: batched insertion (see ``HNSWIndex`` for the algorithm).
// Dimension letters as in HNSWIndex.swift: N nodes, D dimension, M / M0 links, B batch.

extension HNSWIndex {
    // MARK: Adding

    public func add(id: Int64, vector: UnsafeBufferPointer<Float>) throws {
        try Self.checkVector(vector, id: id, dimension: dimension)
        guard slotOf[id] == nil else { throw VectorIndexError.duplicateID(id) }
        insertBatch(ids: [id][...], vectors: vector.baseAddress!)
    }

    public func add(ids newIDs: [Int64], vectors values: UnsafeBufferPointer<Float>) throws {
        try checkBatch(values, ids: newIDs)
        var seen = Set<Int64>(minimumCapacity: newIDs.count)
        for id in newIDs where slotOf[id] != nil || !seen.insert(id).inserted { throw VectorIndexError.duplicateID(id) }
        reserve(nodes: ids.count + newIDs.count)
        var start = 0
        while start < newIDs.count {
            let b = min(Self.batchSize(existing: ids.count), newIDs.count - start)
            insertBatch(ids: newIDs[start..<(start + b)], vectors: values.baseAddress! + start * dimension)
            start += b
        }
    }

    /// B for the next batch: 1/8 of the graph, at most ``maxBatch``. Small relative to the graph
    /// so that the batch's searches see nearly the final graph; the members link to each other
    /// through the exact Gram matrix anyway.
    static func batchSize(existing n: Int) -> Int { min(maxBatch, max(1, n / 8)) }

    func reserve(nodes n: Int) {
        vectors.reserve(n * dimension)
        links0.reserve(n * (1 + m0))
        upperOffset.reserve(n)
        levels.reserve(n)
        deleted.reserve(n)
        ids.reserve(n)
        slotOf.reserveCapacity(n)
    }

    /// A random top layer, ⌊−ln(u) · mL⌋ with u uniform in (0, 1].
    func randomLevel() -> Int {
        let u = rng.nextUnitInterval()
        return min(Self.levelCap, Int(-log(u) * parameters.levelMultiplier))
    }

    /// Inserts one batch: append storage, link the new nodes (parallel), add reverse links (parallel).
    func insertBatch(ids newIDs: ArraySlice<Int64>, vectors values: UnsafePointer<Float>) {
        let b = newIDs.count, first = ids.count
        // 1. Storage (serial). Slots first..<first+B, empty lists.
        vectors.append(UnsafeBufferPointer(start: values, count: b * dimension))
        links0.append(repeating: 0, count: b * (1 + m0))
        for (i, id) in newIDs.enumerated() {
            let level = randomLevel()
            upperOffset.append(repeating: upper.count, count: 1)
            upper.append(repeating: 0, count: level * (1 + m))
            levels.append(repeating: UInt8(level), count: 1)
            deleted.append(repeating: 0, count: 1)
            ids.append(repeating: id, count: 1)
            slotOf[id] = UInt32(first + i)
        }
        let g = graph

        // 2. Exact scores among the batch: gram (B, B) = batch (B, D) · batch (B, D)ᵀ.
        var gram = [Float](repeating: 0, count: b * b)
        if b > 1 {
            let rows = g.vectors + first * dimension
            gram.withUnsafeMutableBufferPointer { out in
                BLAS.gemm(a: rows, b: rows, transB: true, c: out.baseAddress!, m: b, n: b, k: dimension, parallel: true)
            }
        }

        // 3. Forward links of each new node (parallel: reads old nodes' lists, writes its own).
        let oldEntry = entryPoint, oldMax = maxLevel
        let efC = parameters.efConstruction, pool = visitedPool, nodes = ids.count
        gram.withUnsafeBufferPointer { gram in
            let gram = UncheckedSendable(gram)
            Parallel.forEach(0..<b, chunks: b < 4 ? 1 : Parallel.coreCount * 4) { range in
                let visited = pool.acquire(nodeCount: nodes)
                defer { pool.release(visited) }
                for i in range {
                    g.linkNewNode(slot: UInt32(first + i), batchFirst: first, batchCount: b,
                                  gramRow: gram.value.baseAddress! + i * b, entryPoint: oldEntry, maxLevel: oldMax,
                                  efConstruction: efC, visited: visited)
                }
            }
        }

        // 4. Reverse links, grouped by (target, layer) so each group has one writer.
        var requests: [(key: UInt64, source: UInt32)] = []
        for i in 0..<b {
            let s = UInt32(first + i)
            for level in 0...Int(g.levels[Int(s)]) {
                let list = g.links(s, level)
                for j in 0..<Int(list[0]) { requests.append((UInt64(list[1 + j]) << 8 | UInt64(level), s)) }
            }
        }
        requests.sort { $0.key != $1.key ? $0.key < $1.key : $0.source < $1.source }
        var groupStarts: [Int] = []
        for (r, request) in requests.enumerated() where r == 0 || request.key != requests[r - 1].key {
            groupStarts.append(r)
        }
        groupStarts.append(requests.count)
        requests.withUnsafeBufferPointer { requests in
            let requests = UncheckedSendable(requests)
            Parallel.forEach(0..<(groupStarts.count - 1), chunks: groupStarts.count < 64 ? 1 : Parallel.coreCount * 4) { range in
                var sources: [UInt32] = []
                for group in range {
                    let slice = requests.value[groupStarts[group]..<groupStarts[group + 1]]
                    let key = slice.first!.key
                    sources.removeAll(keepingCapacity: true)
                    for request in slice { sources.append(request.source) }
                    g.addReverseLinks(target: UInt32(key >> 8), level: Int(key & 0xFF), sources: sources)
                }
            }
        }

        // 5. A node above the current top layer becomes the entry point.
        for i in 0..<b where Int(g.levels[first + i]) > maxLevel {
            maxLevel = Int(g.levels[first + i])
            entryPoint = first + i
        }
    }
}
