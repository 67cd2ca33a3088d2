import Foundation
import Tensor

// Hierarchical Navigable Small World graph (Malkov & Yashunin 2016, "Efficient and robust
// approximate nearest neighbor search using HNSW graphs"), following nmslib/hnswlib.
//
// Dimension letters: N nodes (live + tombstones), D vector dimension, M links per node on the
// upper layers, M0 = 2M links on layer 0, L a node's top layer, B nodes inserted in one batch.
//
// Storage (one growable buffer per field, slot-indexed):
//   vectors      (N, D)       Float      the node's vector (a copy; dot product = score)
//   links0       (N, 1 + M0)  UInt32     layer-0 list: [count, neighbour slots...]
//   upperOffset  (N)          Int        start in `upper` of the node's layers 1...L
//   upper        (ΣL, 1 + M)  UInt32     one [count, neighbours...] record per upper layer
//   levels       (N)          UInt8      L
//   deleted      (N)          UInt8      1 = tombstone (removed; routes, never returned)
//   ids          (N)          Int64      caller's id per slot
//
// Memory per vector ≈ 4·D + 4·(1 + 2M) + 8 + 8 + 2 + 4·(1 + M)·E[L] + ≈ 24 (id → slot map),
// E[L] = 1/(M − 1): at D = 384, M = 16 that is 1536 + 132 + 18 + 4.5 + 24 ≈ 1.7 KB, of which
// the graph itself is ≈ 150 B. ``memoryBytes`` reports the actual figure.

/// Approximate nearest-neighbour search by dot product over an HNSW graph.
///
/// **Building** (``add(ids:vectors:)``) inserts in batches whose size grows with the graph
/// (≤ ``maxBatch``, ≈ N/8). Within a batch: (1) every new node searches the *existing* graph
/// (read-only, so all cores run in parallel) and also scores the other batch members exactly
/// with one `sgemm` Gram matrix, then picks its neighbours with the paper's heuristic and
/// writes its own lists; (2) the reverse links are grouped by target node and (3) each target
/// appends them and, when full, re-prunes with the heuristic — again in parallel because every
/// worker writes only its own targets' lists. Nothing depends on thread timing, so a fixed
/// seed and insertion order give the same index on every run (hnswlib's locked parallel
/// insert does not). A single ``add(id:vector:)`` is a batch of one: incremental adds need no
/// rebuild. 20k × 384 builds in ≈ 4.6 s on 2 cores (≈ 1.9× one core; hnswlib 0.8: 4.5 s).
///
/// **Deleting** marks a tombstone: the node keeps routing searches but is never returned.
/// When tombstones exceed ``Parameters/purgeFraction`` of the nodes (or on
/// ``purgeDeleted()``), every live node that links to a tombstone re-selects its neighbours,
/// with the heuristic, from its live neighbours plus the live nodes its tombstones lead to
/// (through up to two tombstones; cf. hnswlib's `repairConnectionsForUpdate`), and the storage
/// is compacted. Recall after purging 30% matches a fresh build of the survivors.
///
/// **Filtering**: see ``search(query:k:filter:ef:)``.
///
/// Any number of searches may run concurrently; `add`, `remove` and `purgeDeleted` need
/// exclusive access.
public final class HNSWIndex: VectorSearchIndex, @unchecked Sendable {
    // MARK: Parameters

    /// Construction and search parameters (hnswlib's names and defaults).
    public struct Parameters: Sendable, Equatable {
        /// M, links per node on layers ≥ 1 (2M on layer 0). 16 suits 384-d text embeddings.
        public var m: Int
        /// Candidate list size while inserting; higher builds slower and better. Default 200.
        public var efConstruction: Int
        /// Candidate list size while searching (at least `k` is used). Default 64.
        public var efSearch: Int
        /// Seed of the level generator; the same seed and insertion order give the same graph.
        public var seed: UInt64
        /// Tombstone fraction of all nodes that triggers ``purgeDeleted()`` inside `remove`
        /// (≥ 1 disables the automatic purge). Default 0.25.
        public var purgeFraction: Double

        /// - Parameters:
        ///   - m: M = 16.
        ///   - efConstruction: 200.
        ///   - efSearch: 64.
        ///   - seed: 0x5E1F_5BEC.
        ///   - purgeFraction: 0.25.
        public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64,
                    seed: UInt64 = 0x5E1F_5BEC, purgeFraction: Double = 0.25) {
            self.m = m
            self.efConstruction = efConstruction
            self.efSearch = efSearch
            self.seed = seed
            self.purgeFraction = purgeFraction
        }

        /// mL = 1 / ln M: P(L ≥ l) = M^(−l).
        public var levelMultiplier: Double { 1 / log(Double(m)) }
    }

    /// Largest batch inserted at once (Gram matrix (B, B) = 256 KB).
    public static let maxBatch = 256
    /// Highest layer a node may get (P = 16^−31 at M = 16; keeps `levels` in a byte).
    static let levelCap = 31

    public let dimension: Int
    /// The parameters given at creation (``efSearch`` may be changed later).
    public let parameters: Parameters
    /// Default candidate list size of ``search(query:k:filter:)``; at least `k` is used.
    public var efSearch: Int { didSet { efSearch = max(1, efSearch) } }

    let m: Int, m0: Int

    // MARK: Storage

    let vectors = NodeBuffer<Float>()       // (N, D)
    let links0 = NodeBuffer<UInt32>()       // (N, 1 + M0)
    let upperOffset = NodeBuffer<Int>()     // (N)
    let upper = NodeBuffer<UInt32>()        // (ΣL, 1 + M)
    let levels = NodeBuffer<UInt8>()        // (N)
    let deleted = NodeBuffer<UInt8>()       // (N)
    let ids = NodeBuffer<Int64>()           // (N)
    var slotOf: [Int64: UInt32] = [:]       // live id -> slot
    var entryPoint = -1                     // slot of a node on layer `maxLevel`, -1 when empty
    var maxLevel = -1
    var tombstones = 0
    var rng: Xoshiro256
    let visitedPool = VisitedPool()

    /// Creates an empty index.
    /// - Parameters:
    ///   - dimension: D (> 0).
    ///   - parameters: M, efConstruction, efSearch, seed; see ``Parameters``.
    /// - Throws: ``VectorIndexError/invalidParameter(name:value:expected:)``.
    public init(dimension: Int, parameters: Parameters = Parameters()) throws {
        guard dimension > 0 && dimension <= 1 << 16 else {
            throw VectorIndexError.invalidParameter(name: "dimension", value: dimension, expected: "1...65536")
        }
        guard parameters.m >= 2 && parameters.m <= 256 else {
            throw VectorIndexError.invalidParameter(name: "m", value: parameters.m, expected: "2...256")
        }
        guard parameters.efConstruction >= 1 else {
            throw VectorIndexError.invalidParameter(name: "efConstruction", value: parameters.efConstruction, expected: "≥ 1")
        }
        guard parameters.efSearch >= 1 else {
            throw VectorIndexError.invalidParameter(name: "efSearch", value: parameters.efSearch, expected: "≥ 1")
        }
        self.dimension = dimension
        self.parameters = parameters
        self.efSearch = parameters.efSearch
        self.m = parameters.m
        self.m0 = 2 * parameters.m
        self.rng = Xoshiro256(seed: parameters.seed)
    }

    // MARK: Counts

    public var count: Int { slotOf.count }
    /// N, the number of graph nodes including tombstones.
    public var nodeCount: Int { ids.count }
    /// Removed nodes still in the graph (cleared by ``purgeDeleted()``).
    public var deletedCount: Int { tombstones }

    public func contains(id: Int64) -> Bool { slotOf[id] != nil }

    /// The live ids in slot order.
    public var allIDs: [Int64] { (0..<ids.count).compactMap { deleted[$0] == 0 ? ids[$0] : nil } }

    /// A copy of the stored vector of a live `id`, or `nil`.
    public func vector(for id: Int64) -> [Float]? {
        guard let s = slotOf[id] else { return nil }
        return Array(UnsafeBufferPointer(start: vectors.base + Int(s) * dimension, count: dimension))
    }

    /// Bytes held by the index's buffers and id map (capacity, not just count).
    public var memoryBytes: Int {
        vectors.capacity * 4 + links0.capacity * 4 + upperOffset.capacity * 8 + upper.capacity * 4
            + levels.capacity + deleted.capacity + ids.capacity * 8 + slotOf.capacity * 16
    }

    /// Pointers to the current storage (valid until the next growth).
    var graph: GraphView {
        GraphView(d: dimension, m: m, m0: m0, vectors: vectors.base, links0: links0.base, upper: upper.base,
                  upperOffset: upperOffset.base, levels: levels.base, deleted: deleted.base, ids: ids.base)
    }

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
    private func insertBatch(ids newIDs: ArraySlice<Int64>, vectors values: UnsafePointer<Float>) {
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
    /// repaired lists' distance work (0.16 s for 4,000 × 64-d with 30% removed).
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
    private func compact() {
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

// MARK: - Serialization

// Little-endian layout (``HNSWIndex/serialized(includeVectors:)``):
//   header   112 bytes: magic "SSHNSW01", version u32, D u32, M u32, efConstruction u32,
//            efSearch u32, flags u32 (bit 0: vectors included), purgeFraction f64,
//            seed u64, generator state 4 × u64, N u64, ΣL u64, entry point i64, top layer i32,
//            reserved u32
//   ids      (N) i64           levels (N) u8           deleted (N) u8
//   links0   (N, 1 + M0) u32   upper  (ΣL, 1 + M) u32  vectors (N, D) f32 (if flag)
//   checksum u64 (FNV-1a over 64-bit words of everything before it)

extension HNSWIndex {
    static let magic = Array("SSHNSW01".utf8)
    static let formatVersion: UInt32 = 1
    static let headerBytes = 112

    /// The whole index as bytes, for storing next to the vectors (e.g. a SQLite BLOB).
    ///
    /// Size ≈ N·(18 + 4·(1 + 2M)) + 4·(1 + M)·ΣL (+ 4·N·D with vectors) bytes: ≈ 150 B per node
    /// for the graph, 1.5 KB more per 384-d vector.
    /// - Parameter includeVectors: `false` writes the graph only; ``init(serialized:vectors:)`` then
    ///   takes the vectors from the caller's store (2.9 MB instead of 34 MB for 20k × 384).
    /// - Returns: the serialized bytes.
    public func serialized(includeVectors: Bool = true) -> [UInt8] {
        let n = ids.count
        var w = ByteWriter(capacity: Self.headerBytes + n * (18 + 4 * (1 + m0) + (includeVectors ? 4 * dimension : 0))
                           + upper.count * 4 + 8)
        w.bytes.append(contentsOf: Self.magic)
        for v in [Self.formatVersion, UInt32(dimension), UInt32(m), UInt32(clamping: parameters.efConstruction),
                  UInt32(clamping: efSearch), includeVectors ? 1 : 0] { w.put(v) }
        w.put(parameters.purgeFraction.bitPattern)
        w.put(parameters.seed)
        for v in [rng.state.0, rng.state.1, rng.state.2, rng.state.3, UInt64(n), UInt64(upper.count / (1 + m))] { w.put(v) }
        w.put(Int64(entryPoint))
        w.put(Int32(maxLevel))
        w.put(UInt32(0))
        w.put(ids.base, count: n)
        w.put(levels.base, count: n)
        w.put(deleted.base, count: n)
        // Entries past a list's count may be stale (pruned lists shrink): written as zeros.
        for record in stride(from: 0, to: links0.count, by: 1 + m0) { w.putList(links0.base + record, width: 1 + m0) }
        for record in stride(from: 0, to: upper.count, by: 1 + m) { w.putList(upper.base + record, width: 1 + m) }
        if includeVectors {
            vectors.base.withMemoryRebound(to: UInt32.self, capacity: vectors.count) { w.put($0, count: vectors.count) }
        }
        w.put(Self.checksum(w.bytes))
        return w.bytes
    }

    /// Decodes ``serialized(includeVectors:)`` bytes, validating every count, layer and neighbour
    /// against the header and the bytes left before reading: bad bytes throw, never crash.
    /// - Parameters:
    ///   - bytes: the serialized index.
    ///   - source: for graph-only bytes, returns the vector of an id, or `nil` when the caller's
    ///     store no longer has it: that node becomes removed (a tombstone routing with a zero
    ///     vector until the next purge), so the index follows the store. Ignored when bytes hold vectors.
    /// - Throws: ``VectorIndexError/corruptData(what:offset:detail:)``; for a bad vector from
    ///   `source`, ``VectorIndexError/wrongDimension(id:expected:actual:)`` or
    ///   ``VectorIndexError/nonFiniteValue(id:position:)``.
    public convenience init(serialized bytes: [UInt8], vectors source: ((Int64) throws -> [Float]?)? = nil) throws {
        let h = try bytes.withUnsafeBytes { try Self.readHeader($0) }
        try self.init(dimension: h.dimension, parameters: h.parameters)
        efSearch = h.efSearch
        rng = Xoshiro256(state: h.rngState)
        try bytes.withUnsafeBytes { raw in
            var r = ByteReader(bytes: raw, offset: Self.headerBytes)
            try readBody(&r, header: h)
        }
        if !h.hasVectors {
            guard let source else {
                throw VectorIndexError.corruptData(what: "vectors", offset: Self.headerBytes,
                                                   detail: "graph-only data needs a vector source")
            }
            try loadVectors(from: source)
        }
    }

    // MARK: Decoding

    struct Header {
        var dimension: Int, parameters: Parameters, efSearch: Int, hasVectors: Bool
        var rngState: (UInt64, UInt64, UInt64, UInt64)
        var nodes: Int, upperRecords: Int, entryPoint: Int, maxLevel: Int
    }

    /// Checks magic, checksum and header fields, and that the body has exactly the implied size.
    static func readHeader(_ raw: UnsafeRawBufferPointer) throws -> Header {
        func corrupt(_ what: String, _ offset: Int, _ detail: String) -> VectorIndexError {
            .corruptData(what: what, offset: offset, detail: detail)
        }
        guard raw.count >= headerBytes + 8 else {
            throw corrupt("header", 0, "\(raw.count) bytes, at least \(headerBytes + 8) needed")
        }
        guard Array(raw[0..<8]) == magic else { throw corrupt("magic", 0, "not an HNSW index (expected SSHNSW01)") }
        let stored = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self))
        let computed = checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 8)]))
        guard stored == computed else {
            throw corrupt("checksum", raw.count - 8, "stored \(hex(stored)), computed \(hex(computed))")
        }
        var r = ByteReader(bytes: raw, offset: 8)
        let version = try r.read(UInt32.self, "version")
        guard version == formatVersion else { throw corrupt("version", 8, "\(version), expected \(formatVersion)") }
        let d = Int(try r.read(UInt32.self, "dimension")), m = Int(try r.read(UInt32.self, "M"))
        let efC = Int(try r.read(UInt32.self, "efConstruction")), efS = Int(try r.read(UInt32.self, "efSearch"))
        let flags = try r.read(UInt32.self, "flags")
        guard (1...(1 << 16)).contains(d) else { throw corrupt("dimension", 12, "\(d), expected 1...65536") }
        guard (2...256).contains(m) else { throw corrupt("M", 16, "\(m), expected 2...256") }
        guard efC >= 1, efS >= 1 else { throw corrupt("ef", 20, "efConstruction \(efC), efSearch \(efS), expected ≥ 1") }
        guard flags <= 1 else { throw corrupt("flags", 28, "\(flags), expected 0 or 1") }
        let purge = Double(bitPattern: try r.read(UInt64.self, "purgeFraction"))
        guard purge.isFinite, purge >= 0 else { throw corrupt("purgeFraction", 32, "\(purge), expected finite ≥ 0") }
        let seed = try r.read(UInt64.self, "seed")
        let state = (try r.read(UInt64.self, "rng"), try r.read(UInt64.self, "rng"),
                     try r.read(UInt64.self, "rng"), try r.read(UInt64.self, "rng"))
        guard state != (0, 0, 0, 0) else { throw corrupt("rng", 48, "all-zero generator state") }
        let n64 = try r.read(UInt64.self, "node count"), upper64 = try r.read(UInt64.self, "upper records")
        let entry = Int(try r.read(Int64.self, "entry point")), top = Int(try r.read(Int32.self, "top layer"))
        _ = try r.read(UInt32.self, "reserved")

        // Exact body size, overflow-checked, before anything is allocated.
        let body = raw.count - headerBytes - 8, m0 = 2 * m
        let perNode = 8 + 1 + 1 + 4 * (1 + m0) + (flags == 1 ? 4 * d : 0), perUpper = 4 * (1 + m)
        guard n64 <= UInt64(body / perNode), upper64 <= UInt64(body / perUpper) else {
            throw corrupt("node count", 80, "\(n64) nodes / \(upper64) upper records do not fit in \(body) bytes")
        }
        let n = Int(n64), upperRecords = Int(upper64)
        guard n * perNode + upperRecords * perUpper == body else {
            throw corrupt("body", headerBytes, "\(body) bytes, \(n) nodes and \(upperRecords) upper records need \(n * perNode + upperRecords * perUpper)")
        }
        guard upperRecords <= n * levelCap else { throw corrupt("upper records", 88, "\(upperRecords) > N × \(levelCap)") }
        guard n == 0 ? (entry == -1 && top == -1) : ((0..<n).contains(entry) && (0...levelCap).contains(top)) else {
            throw corrupt("entry point", 96, "entry \(entry), top layer \(top) for \(n) nodes")
        }
        let parameters = Parameters(m: m, efConstruction: efC, efSearch: efS, seed: seed, purgeFraction: purge)
        return Header(dimension: d, parameters: parameters, efSearch: efS, hasVectors: flags == 1, rngState: state,
                      nodes: n, upperRecords: upperRecords, entryPoint: entry, maxLevel: top)
    }

    /// Reads ids, layers, flags, links and vectors into this (empty) index, checking the graph's invariants.
    private func readBody(_ r: inout ByteReader, header h: Header) throws {
        func corrupt(_ what: String, _ offset: Int, _ detail: String) -> VectorIndexError {
            .corruptData(what: what, offset: offset, detail: detail)
        }
        let n = h.nodes
        reserve(nodes: n)
        for _ in 0..<n { ids.append(repeating: try r.read(Int64.self, "id"), count: 1) }
        var upperTotal = 0, highest = -1
        for s in 0..<n {
            let level = Int(try r.read(UInt8.self, "level"))
            guard level <= Self.levelCap else { throw corrupt("level of node \(s)", r.offset - 1, "\(level) > \(Self.levelCap)") }
            upperOffset.append(repeating: upperTotal * (1 + m), count: 1)
            levels.append(repeating: UInt8(level), count: 1)
            upperTotal += level
            highest = max(highest, level)
        }
        guard upperTotal == h.upperRecords else {
            throw corrupt("levels", r.offset - n, "sum \(upperTotal), header says \(h.upperRecords)")
        }
        guard highest == h.maxLevel, n == 0 || Int(levels[h.entryPoint]) == h.maxLevel else {
            throw corrupt("levels", r.offset - n, "top layer \(highest), entry point on \(n == 0 ? -1 : Int(levels[h.entryPoint])), header says \(h.maxLevel)")
        }
        for s in 0..<n {
            let flag = try r.read(UInt8.self, "deleted flag")
            guard flag <= 1 else { throw corrupt("deleted flag of node \(s)", r.offset - 1, "\(flag), expected 0 or 1") }
            deleted.append(repeating: flag, count: 1)
            if flag == 1 {
                tombstones += 1
            } else if slotOf.updateValue(UInt32(s), forKey: ids[s]) != nil {
                throw corrupt("id of node \(s)", Self.headerBytes + 8 * s, "id \(ids[s]) appears twice")
            }
        }
        guard n == 0 || !slotOf.isEmpty else { throw corrupt("deleted flags", r.offset - n, "every node is deleted") }
        // Lists: each neighbour must exist, differ from the node and reach the list's layer.
        func readList(into buffer: NodeBuffer<UInt32>, node s: Int, level: Int) throws {
            let capacity = level == 0 ? m0 : m, start = r.offset
            let count = try r.read(UInt32.self, "link count")
            guard count <= capacity else {
                throw corrupt("link count of node \(s) on layer \(level)", start, "\(count) > \(capacity)")
            }
            buffer.append(repeating: count, count: 1)
            for j in 0..<capacity {
                let v = try r.read(UInt32.self, "neighbour")
                guard j >= Int(count) || (Int(v) < n && Int(v) != s && Int(levels[Int(v)]) >= level) else {
                    throw corrupt("neighbour \(j) of node \(s) on layer \(level)", r.offset - 4,
                                  "slot \(v) (of \(n)) is itself, absent or below layer \(level)")
                }
                buffer.append(repeating: j < Int(count) ? v : 0, count: 1)
            }
        }
        for s in 0..<n { try readList(into: links0, node: s, level: 0) }
        for s in 0..<n where levels[s] > 0 {
            for level in 1...Int(levels[s]) { try readList(into: upper, node: s, level: level) }
        }
        if h.hasVectors {
            for i in 0..<(n * dimension) {
                let v = Float(bitPattern: try r.read(UInt32.self, "vector value"))
                guard v.isFinite else {
                    throw corrupt("vector of node \(i / dimension)", r.offset - 4, "value \(i % dimension) is \(v)")
                }
                vectors.append(repeating: v, count: 1)
            }
        }
        entryPoint = h.entryPoint
        maxLevel = h.maxLevel
    }

    /// Fills the vectors of a graph-only index from the caller's store, in slot order; live
    /// nodes the store lacks are removed (then purged if they pass ``Parameters/purgeFraction``).
    private func loadVectors(from source: (Int64) throws -> [Float]?) throws {
        for s in 0..<ids.count {
            let id = ids[s]
            guard deleted[s] == 0, let v = try source(id) else {
                if deleted[s] == 0 {
                    deleted[s] = 1
                    tombstones += 1
                    slotOf[id] = nil
                }
                vectors.append(repeating: 0, count: dimension)
                continue
            }
            try v.withUnsafeBufferPointer { v in
                try Self.checkVector(v, id: id, dimension: dimension)
                vectors.append(v)
            }
        }
        if slotOf.isEmpty {
            removeAllNodes()
        } else if Double(tombstones) > parameters.purgeFraction * Double(ids.count) {
            purgeDeleted()
        }
    }

    /// FNV-1a over 64-bit little-endian words (then the tail bytes): a single changed word always
    /// changes the result (xor and the odd multiplier are bijections).
    static func checksum(_ raw: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        let prime: UInt64 = 0x0000_0100_0000_01B3
        let words = raw.count / 8
        for i in 0..<words {
            hash = (hash ^ UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) &* prime
        }
        for i in (8 * words)..<raw.count { hash = (hash ^ UInt64(raw[i])) &* prime }
        return hash
    }

    static func checksum(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { checksum($0) } }

    private static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
}

/// Appends little-endian values to a byte array.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A `[count, neighbours...]` record of `width` words, zero past `count`.
    mutating func putList(_ list: UnsafePointer<UInt32>, width: Int) {
        let count = Int(list[0])
        put(list, count: 1 + count)
        for _ in (1 + count)..<width { put(UInt32(0)) }
    }

    /// `count` integers from memory (one copy on little-endian hosts).
    mutating func put<T: FixedWidthInteger>(_ values: UnsafePointer<T>, count: Int) {
        #if _endian(little)
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: values, count: count * MemoryLayout<T>.size))
        #else
        for i in 0..<count { put(values[i]) }
        #endif
    }
}

/// Reads little-endian values, checking the bytes left before every read.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int

    mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - offset >= size else {
            throw VectorIndexError.corruptData(what: what, offset: offset,
                                               detail: "needs \(size) bytes, \(bytes.count - offset) left")
        }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return value
    }
}

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
        while let c = candidates.pop() {
            if results.count >= ef && -c.key < results.top.key { break }
            let list = links(c.slot, level)
            for j in 0..<Int(list[0]) {
                let n = list[1 + j]
                guard visited.visit(n) else { continue }
                let s = score(query, n)
                visits += 1
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
