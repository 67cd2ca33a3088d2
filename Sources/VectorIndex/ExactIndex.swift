import Foundation
import Tensor
import CKernels

/// Exact (brute-force) search: every stored vector is scored against the query.
///
/// Layout: one contiguous row-major matrix `vectors (N, D)` and `ids (N)`, row `i` belonging to
/// `ids[i]`, plus a dictionary id → row. Removal moves the last row into the hole
/// (swap-with-last), so rows stay packed and a search is one pass over one matrix.
///
/// One query scores a block of ``blockRows`` rows with `sgemv` (`scores (R) = block (R, D) · q (D)`)
/// and a small heap (``TopK``) keeps the best `k`; a batch of queries goes through the C kernel
/// `ck_ip_scan16`, which scores tiles of 6 rows × 16 queries in registers and hands on only the
/// scores that reach a query's current top-k threshold. Large indexes are split over all cores by
/// rows (one query) or by queries (a batch).
///
/// Memory: `4·D + 8` bytes per vector for the matrix and ids, plus the id → row dictionary
/// (≈ 40 bytes per entry), i.e. ≈ 1.6 KB per 384-d vector.
public final class ExactIndex: VectorSearchIndex, @unchecked Sendable {
    // MARK: Configuration

    /// Rows scored per BLAS call: 1024 × 4 B of scores stay in L1, the block (1.5 MB at D = 384) in L2/L3.
    public static let blockRows = 1024
    /// Below this many stored values (`N·D`) a single query runs on one thread: splitting costs
    /// more in wake-ups than it saves (≈ 2.6k rows at D = 384).
    public static let parallelValues = 1 << 20

    public let dimension: Int

    // MARK: Storage

    private var vectors: [Float] = []       // (N, D)
    private var ids: [Int64] = []           // (N)
    private var rowOf: [Int64: Int] = [:]   // id -> row

    /// Creates an empty index.
    /// - Parameter dimension: D, the length of every vector (> 0).
    /// - Throws: ``VectorIndexError/invalidParameter(name:value:expected:)`` for `dimension < 1`.
    public init(dimension: Int) throws {
        guard dimension > 0 else { throw VectorIndexError.invalidParameter(name: "dimension", value: dimension, expected: "> 0") }
        self.dimension = dimension
    }

    public var count: Int { ids.count }

    /// The stored ids in row order.
    public var allIDs: [Int64] { ids }

    public func contains(id: Int64) -> Bool { rowOf[id] != nil }

    /// A copy of the stored vector of `id`, or `nil` if absent.
    public func vector(for id: Int64) -> [Float]? {
        guard let row = rowOf[id] else { return nil }
        return Array(vectors[(row * dimension)..<((row + 1) * dimension)])
    }

    // MARK: Adding and removing

    public func add(id: Int64, vector: UnsafeBufferPointer<Float>) throws {
        try Self.checkVector(vector, id: id, dimension: dimension)
        guard rowOf[id] == nil else { throw VectorIndexError.duplicateID(id) }
        rowOf[id] = ids.count
        ids.append(id)
        vectors.append(contentsOf: vector)
    }

    public func add(ids newIDs: [Int64], vectors values: UnsafeBufferPointer<Float>) throws {
        try checkBatch(values, ids: newIDs)
        var seen = Set<Int64>(minimumCapacity: newIDs.count)
        for id in newIDs where rowOf[id] != nil || !seen.insert(id).inserted { throw VectorIndexError.duplicateID(id) }
        rowOf.reserveCapacity(ids.count + newIDs.count)
        for (i, id) in newIDs.enumerated() { rowOf[id] = ids.count + i }
        ids.append(contentsOf: newIDs)
        vectors.append(contentsOf: values)
    }

    /// Removes `id` by moving the last row into its place (O(D)).
    public func remove(id: Int64) throws {
        guard let row = rowOf.removeValue(forKey: id) else { throw VectorIndexError.unknownID(id) }
        let last = ids.count - 1
        if row != last {
            let d = dimension
            vectors.withUnsafeMutableBufferPointer { v in
                (v.baseAddress! + row * d).update(from: v.baseAddress! + last * d, count: d)
            }
            ids[row] = ids[last]
            rowOf[ids[row]] = row
        }
        ids.removeLast()
        vectors.removeLast(dimension)
    }

    // MARK: One query

    public func search(query: UnsafeBufferPointer<Float>, k: Int, filter: IDFilter?) throws -> [ScoredID] {
        guard try Self.checkQuery(query, dimension: dimension) else { return [] }
        let n = ids.count
        guard k > 0, n > 0 else { return [] }
        let k = min(k, n)
        let pieces = n * dimension >= Self.parallelValues ? Parallel.coreCount : 1
        var partial = [TopK](repeating: TopK(k: k), count: pieces)
        partial.withUnsafeMutableBufferPointer { heaps in
            let heaps = UncheckedSendable(heaps)
            // Piece c scores its contiguous share of the rows into its own heap; merged below.
            Parallel.forEachIndex(0..<pieces) { c in
                let rows = (c * n / pieces)..<((c + 1) * n / pieces)
                self.scan(rows: rows, query: query.baseAddress!, filter: filter, into: &heaps.value[c])
            }
        }
        var top = partial[0]
        for heap in partial.dropFirst() { top.merge(heap) }
        return top.sorted()
    }

    /// Scores `rows` against one query, block by block with `sgemv`, into `top`.
    private func scan(rows: Range<Int>, query: UnsafePointer<Float>, filter: IDFilter?, into top: inout TopK) {
        let d = dimension
        var scores = [Float](repeating: 0, count: Self.blockRows)   // (R)
        vectors.withUnsafeBufferPointer { v in
            ids.withUnsafeBufferPointer { ids in
                scores.withUnsafeMutableBufferPointer { s in
                    var start = rows.lowerBound
                    while start < rows.upperBound {
                        let r = min(Self.blockRows, rows.upperBound - start)
                        // scores (R) = block (R, D) · q (D)
                        BLAS.gemv(a: v.baseAddress! + start * d, x: query, y: s.baseAddress!, m: r, n: d)
                        Self.collect(scores: s.baseAddress!, ids: ids.baseAddress! + start, count: r,
                                     filter: filter, into: &top)
                        start += r
                    }
                }
            }
        }
    }

    /// Offers `count` scored rows to `top`; the filter runs only for scores that could enter.
    @inline(__always)
    private static func collect(scores: UnsafePointer<Float>, ids: UnsafePointer<Int64>, count: Int,
                                filter: IDFilter?, into top: inout TopK) {
        // Once the heap is full almost no score enters: test the largest of eight first.
        var j = 0
        while j < count {
            let end = min(j + 8, count)
            var largest = scores[j]
            for i in (j + 1)..<end { largest = max(largest, scores[i]) }
            if largest >= top.threshold {
                for i in j..<end where top.admits(scores[i]) {
                    if let filter, !filter(ids[i]) { continue }
                    top.insert(ScoredID(id: ids[i], score: scores[i]))
                }
            }
            j = end
        }
    }

    // MARK: Many queries

    /// Most queries per block: 256 queries packed in panels of 16 are 384 KB at D = 384, so a
    /// block stays in L2 while the stored rows stream past it once.
    public static let blockQueries = 256
    /// Stored rows per kernel call (a multiple of its 6-row tile); the queries' thresholds are
    /// refreshed between calls, so after the first call almost no score leaves the kernel.
    static let chunkRows = 240

    /// Queries per block for a batch of `q`: at most ``blockQueries``, and small enough that every
    /// core gets a block.
    static func queriesPerBlock(_ q: Int) -> Int {
        min(blockQueries, max(16, (q + Parallel.coreCount - 1) / Parallel.coreCount))
    }

    /// Exact search for a batch: query blocks run concurrently, each scanning all rows once with
    /// `ck_ip_scan16`, which scores a tile of 6 stored rows × 16 queries in registers and passes on
    /// only the scores that reach a query's current top-k threshold.
    public func search(queries: UnsafeBufferPointer<Float>, k: Int, filter: IDFilter?) throws -> [[ScoredID]] {
        let d = dimension
        guard queries.count % d == 0 else {
            throw VectorIndexError.wrongDimension(id: nil, expected: d, actual: queries.count % d)
        }
        for i in 0..<(queries.count / d) {
            _ = try Self.checkQuery(UnsafeBufferPointer(rebasing: queries[(i * d)..<((i + 1) * d)]), dimension: d)
        }
        let q = queries.count / d, n = ids.count
        guard k > 0, n > 0, q > 0 else { return [[ScoredID]](repeating: [], count: q) }
        let k = min(k, n)
        var results = [[ScoredID]](repeating: [], count: q)
        let perBlock = Self.queriesPerBlock(q)
        let blocks = (q + perBlock - 1) / perBlock
        results.withUnsafeMutableBufferPointer { out in
            let out = UncheckedSendable(out)
            Parallel.forEach(0..<blocks) { blockRange in
                for b in blockRange {
                    let q0 = b * perBlock, qb = min(perBlock, q - q0)
                    var tops = [TopK](repeating: TopK(k: k), count: qb)
                    self.scanBatch(queries: queries.baseAddress! + q0 * d, count: qb, filter: filter, into: &tops)
                    for i in 0..<qb { out.value[q0 + i] = tops[i].sorted() }
                }
            }
        }
        return results
    }

    /// Scores all rows against `qb` queries, ``chunkRows`` rows per kernel call, into `tops`.
    private func scanBatch(queries: UnsafePointer<Float>, count qb: Int, filter: IDFilter?, into tops: inout [TopK]) {
        let d = dimension, n = ids.count, panels = (qb + 15) / 16
        var packed = [Float](repeating: 0, count: panels * 16 * d)           // (panels, D, 16)
        packed.withUnsafeMutableBufferPointer { ck_pack_panels16(queries, qb, d, d, $0.baseAddress!) }
        // Padding queries never pass (+inf); real ones start at -inf and rise as their heaps fill.
        var thresholds = [Float](repeating: .infinity, count: panels * 16)
        for i in 0..<qb { thresholds[i] = tops[i].threshold }
        var hits = [ck_ip_hit](repeating: ck_ip_hit(), count: panels * 16 * Self.chunkRows)
        vectors.withUnsafeBufferPointer { v in
            ids.withUnsafeBufferPointer { ids in
                hits.withUnsafeMutableBufferPointer { h in
                    var start = 0
                    while start < n {
                        let r = min(Self.chunkRows, n - start)
                        let found = ck_ip_scan16(v.baseAddress! + start * d, r, d, packed, panels, thresholds, h.baseAddress!)
                        for hit in h[0..<found] {
                            let i = Int(hit.query)
                            guard tops[i].admits(hit.score) else { continue }
                            let id = ids[start + Int(hit.row)]
                            if let filter, !filter(id) { continue }
                            tops[i].insert(ScoredID(id: id, score: hit.score))
                        }
                        if found > 0 { for i in 0..<qb { thresholds[i] = tops[i].threshold } }
                        start += r
                    }
                }
            }
        }
    }
}
