import Foundation
import Tensor

// MARK: - Search

/// How a search is carried out.
enum SearchPlan: Equatable {
    /// Graph search, falling back to exact after `budget` distance evaluations.
    case graph(budget: Int)
    /// Exact scan of the admitted live nodes.
    case exact
}

extension HNSWIndex {
    /// Assumed cost of one filter call (a closure and a set or column lookup, ≈ 5 ns) in 384-d
    /// dot products (≈ 50 ns measured with this file's kernel).
    static let filterCallCost = 0.05
    /// Nodes sampled to estimate the fraction a filter admits.
    static let filterSample = 256

    public func search(query: UnsafeBufferPointer<Float>, k: Int, filter: IDFilter?) throws -> [ScoredID] {
        try search(query: query, k: k, filter: filter, ef: nil)
    }

    /// The `k` best admitted live vectors for one query.
    ///
    /// Every mode honours the filter and never returns removed ids:
    /// - Nodes that are filtered out or removed still *route* (their links are followed), but only
    ///   admitted live nodes enter the result list, and the layer-0 search runs until it holds
    ///   `ef` admitted nodes that no candidate can improve — the effective ef grows with how
    ///   much the filter rejects — or the candidates are exhausted.
    /// - Before that, the admitted fraction `f` is estimated on ``filterSample`` nodes. When an
    ///   exact scan (N filter calls + f·N dot products) is cheaper than the expected graph walk
    ///   (≈ ef·M0/f dot products), the search is exact over the admitted ids.
    /// - A graph search that exceeds 4× its expected work, or ends with fewer than `k` results,
    ///   is redone exactly; so fewer than `k` results mean fewer than `k` admitted vectors.
    /// - Parameters:
    ///   - query: `(D)` values.
    ///   - k: results wanted.
    ///   - filter: admits ids; `nil` admits all.
    ///   - ef: candidate list size; defaults to ``efSearch``; at least `k` is used.
    /// - Returns: up to `k` hits, best first.
    /// - Throws: ``VectorIndexError/wrongDimension(id:expected:actual:)``,
    ///   ``VectorIndexError/nonFiniteValue(id:position:)``.
    public func search(query: UnsafeBufferPointer<Float>, k: Int, filter: IDFilter?, ef: Int?) throws -> [ScoredID] {
        guard try Self.checkQuery(query, dimension: dimension), k > 0, !slotOf.isEmpty else { return [] }
        // k beyond the live count and ef beyond the node count change nothing (and would overflow the cost model).
        let k = min(k, count), ef = min(max(ef ?? efSearch, k), ids.count), q = query.baseAddress!, g = graph
        switch plan(filter: filter, ef: ef) {
        case .exact:
            return exactSearch(query: q, k: k, filter: filter)
        case let .graph(budget):
            let visited = visitedPool.acquire(nodeCount: ids.count)
            defer { visitedPool.release(visited) }
            var entry = Entry(key: g.score(q, UInt32(entryPoint)), slot: UInt32(entryPoint))
            for level in stride(from: maxLevel, to: 0, by: -1) { entry = g.greedy(query: q, from: entry, level: level) }
            let found = g.searchLayer(query: q, entries: [entry], level: 0, ef: ef, visited: visited,
                                      filter: filter, budget: budget)
            guard !found.budgetExceeded, found.results.count >= k else { return exactSearch(query: q, k: k, filter: filter) }
            var top = TopK(k: k)
            for e in found.results.entries { top.insert(ScoredID(id: g.ids[Int(e.slot)], score: e.key)) }
            return top.sorted()
        }
    }

    /// ``search(query:k:filter:ef:)`` for an array.
    public func search(query: [Float], k: Int, filter: IDFilter? = nil, ef: Int?) throws -> [ScoredID] {
        try query.withUnsafeBufferPointer { try search(query: $0, k: k, filter: filter, ef: ef) }
    }

    /// Batch search: queries spread over all cores, each as ``search(query:k:filter:)``.
    public func search(queries: UnsafeBufferPointer<Float>, k: Int, filter: IDFilter?) throws -> [[ScoredID]] {
        try searchEach(queries: queries, k: k, filter: filter)
    }

    /// Chooses graph or exact search from a sampled estimate of the admitted fraction.
    func plan(filter: IDFilter?, ef: Int) -> SearchPlan {
        let n = ids.count
        // Unfiltered, the walk ends by itself: tombstones (≤ purgeFraction of the nodes) only
        // lengthen it a little.
        guard let filter else { return .graph(budget: .max) }
        var sampled = 0, live = 0, admitted = 0
        for s in Self.sampleSlots(nodeCount: n) {
            sampled += 1
            guard deleted[s] == 0 else { continue }
            live += 1
            if filter(ids[s]) { admitted += 1 }
        }
        guard live > 0, admitted > 0 else { return .exact }
        // The walk meets admitted nodes at rate admitted/sampled (tombstones route too); the scan
        // calls the filter once per live node and scores the admitted ones.
        let graphCost = Double(ef * m0) * Double(sampled) / Double(admitted)
        let exactCost = Double(count) * (Double(admitted) / Double(live) + Self.filterCallCost)
        return exactCost < graphCost ? .exact : .graph(budget: Int(4 * graphCost))
    }

    /// Up to ``filterSample`` slots spread over `0..<nodeCount` by the golden-ratio sequence
    /// (frac(i·φ)·N): deterministic, and unlike a fixed stride it does not alias with periodic
    /// id patterns such as "every other id".
    static func sampleSlots(nodeCount n: Int) -> [Int] {
        guard n > filterSample else { return Array(0..<n) }
        return (0..<filterSample).map { i in
            let frac = (Double(i) * 0.618_033_988_749_894_8).truncatingRemainder(dividingBy: 1)
            return min(n - 1, Int(frac * Double(n)))
        }
    }

    /// Scores every admitted live node (SIMD dot products), keeping the best `k`.
    func exactSearch(query: UnsafePointer<Float>, k: Int, filter: IDFilter?) -> [ScoredID] {
        let g = graph
        var top = TopK(k: k)
        for s in 0..<ids.count where g.deleted[s] == 0 {
            let id = g.ids[s]
            if let filter, !filter(id) { continue }
            top.insert(ScoredID(id: id, score: g.score(query, UInt32(s))))
        }
        return top.sorted()
    }
}
