import Foundation
import XCTest
@testable import VectorIndex
import Tensor

// N stored vectors, D dimension, Q queries, k results per query.

// MARK: - Fixtures

/// Deterministic clustered unit vectors: `clusters` random unit centres, each point its centre
/// plus Gaussian noise of norm ≈ `spread`, normalised. Queries are drawn the same way from the
/// same centres with another seed, so they are near but never equal to stored points.
enum VectorFixtures {
    static func gaussians(_ count: Int, rng: inout Xoshiro256) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        var i = 0
        while i < count {   // Box–Muller, two values per draw
            let u1 = rng.nextUnitInterval(), u2 = rng.nextUnitInterval()
            let r = (-2 * log(u1)).squareRoot()
            out[i] = Float(r * cos(2 * .pi * u2))
            if i + 1 < count { out[i + 1] = Float(r * sin(2 * .pi * u2)) }
            i += 2
        }
        return out
    }

    static func normalise(_ v: inout ArraySlice<Float>) {
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for i in v.indices { v[i] /= norm }
    }

    /// - Returns: `(base (N, D), queries (Q, D))`.
    static func clustered(count n: Int, queries q: Int, dimension d: Int, clusters: Int = 100,
                          spread: Float = 2, seed: UInt64 = 42) -> (base: [Float], queries: [Float]) {
        var rng = Xoshiro256(seed: seed)
        var centres = gaussians(clusters * d, rng: &rng)            // (clusters, D)
        for c in 0..<clusters { normalise(&centres[(c * d)..<((c + 1) * d)]) }
        func draw(_ count: Int, _ rng: inout Xoshiro256) -> [Float] {
            var out = gaussians(count * d, rng: &rng)               // (count, D)
            let scale = spread / Float(d).squareRoot()
            for i in 0..<count {
                let c = Int(rng.next() % UInt64(clusters))
                for j in 0..<d { out[i * d + j] = centres[c * d + j] + scale * out[i * d + j] }
                normalise(&out[(i * d)..<((i + 1) * d)])
            }
            return out
        }
        var queryRNG = Xoshiro256(seed: seed ^ 0xABCDEF)
        return (draw(n, &rng), draw(q, &queryRNG))
    }

    static func row(_ m: [Float], _ i: Int, _ d: Int) -> [Float] { Array(m[(i * d)..<((i + 1) * d)]) }

    /// Top `k` by a plain loop in Double, ties to the smaller id.
    static func naive(_ base: [Float], ids: [Int64], query: [Float], k: Int, filter: IDFilter? = nil) -> [ScoredID] {
        let d = query.count
        var all: [(Double, Int64)] = []
        for (i, id) in ids.enumerated() where filter?(id) ?? true {
            var s = 0.0
            for j in 0..<d { s += Double(base[i * d + j]) * Double(query[j]) }
            all.append((s, id))
        }
        all.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        return all.prefix(k).map { ScoredID(id: $0.1, score: Float($0.0)) }
    }

    /// |approx ∩ exact| / |exact| summed over queries.
    static func recall(_ approx: [[ScoredID]], _ exact: [[ScoredID]]) -> Double {
        var hit = 0, total = 0
        for (a, e) in zip(approx, exact) {
            let truth = Set(e.map(\.id))
            hit += a.filter { truth.contains($0.id) }.count
            total += e.count
        }
        return total == 0 ? 1 : Double(hit) / Double(total)
    }
}

/// Checks `got` is a correct top-k against `expected` up to float rounding: same length, the
/// score at every rank within `tolerance`, and every returned id's true score equal to what was
/// returned (so a swap of two near-equal scores passes, a wrong id does not). Returns the max
/// score difference.
@discardableResult
func assertSameTopK(_ got: [ScoredID], _ expected: [ScoredID], trueScore: (Int64) -> Float?,
                    tolerance: Float = 1e-4, _ message: String, file: StaticString = #filePath, line: UInt = #line) -> Float {
    XCTAssertEqual(got.count, expected.count, "\(message): result count", file: file, line: line)
    XCTAssertEqual(Set(got.map(\.id)).count, got.count, "\(message): duplicate ids", file: file, line: line)
    var maxDiff: Float = 0
    for (g, e) in zip(got, expected) {
        maxDiff = max(maxDiff, abs(g.score - e.score))
        guard let t = trueScore(g.id) else { XCTFail("\(message): unknown id \(g.id)", file: file, line: line); continue }
        maxDiff = max(maxDiff, abs(g.score - t))
    }
    XCTAssertLessThanOrEqual(maxDiff, tolerance, "\(message): max score difference", file: file, line: line)
    return maxDiff
}

// MARK: - Tests

final class IndexTests: XCTestCase {
    /// The 20,000 × 384 clustered fixture with both indexes, built once for the class.
    /// Sizes are divided by this in unoptimised (DEBUG) builds, which run these loops ~100×
    /// slower; the figures quoted in the docs come from release builds at full size.
    #if DEBUG
    static let scale = 10
    #else
    static let scale = 1
    #endif

    struct Shared {
        static let n = 20_000 / scale, q = 200, d = 384, k = 10
        let base: [Float], queries: [Float], ids: [Int64]
        let exact: ExactIndex, hnsw: HNSWIndex
        let truth: [[ScoredID]]     // exact top-k per query
        let buildSeconds: Double
    }
    nonisolated(unsafe) static var sharedFixture: Shared?

    func shared() throws -> Shared {
        if let s = Self.sharedFixture { return s }
        let (base, queries) = VectorFixtures.clustered(count: Shared.n, queries: Shared.q, dimension: Shared.d)
        let ids = (0..<Shared.n).map { Int64($0) * 3 + 1 }   // not slot numbers: catches id/slot mix-ups
        let exact = try ExactIndex(dimension: Shared.d)
        try exact.add(ids: ids, vectors: base)
        let hnsw = try HNSWIndex(dimension: Shared.d)
        let start = Date()
        try hnsw.add(ids: ids, vectors: base)
        let seconds = Date().timeIntervalSince(start)
        let truth = try exact.search(queries: queries, k: Shared.k)
        let s = Shared(base: base, queries: queries, ids: ids, exact: exact, hnsw: hnsw, truth: truth, buildSeconds: seconds)
        print(String(format: "HNSW build: %d × %d in %.2f s (%.0f vectors/s, M = 16, efConstruction = 200), %.0f bytes/vector",
                     Shared.n, Shared.d, seconds, Double(Shared.n) / seconds, Double(hnsw.memoryBytes) / Double(Shared.n)))
        Self.sharedFixture = s
        return s
    }
}

// MARK: - Exact search

extension IndexTests {
    /// ExactIndex against a naive Double loop: single and batch search, k = 1, 10 and k > N,
    /// a filter, and after swap-with-last removals; on the one-thread path (N·D < 2^20) and the
    /// parallel path, with D not a multiple of the SIMD width. The batch has 40 queries: three
    /// panels of 16 for the batch kernel, the last one padded, and N not a multiple of its 6-row tile.
    func testExactMatchesNaiveLoop() throws {
        let nq = 40
        for (n, d) in [(2_501, 37), (3_000, 384)] {
            let (base, queries) = VectorFixtures.clustered(count: n, queries: nq, dimension: d, clusters: 20, seed: 7)
            var ids = (0..<n).map { Int64($0) * 7 - 100 }
            var rows = base
            let index = try ExactIndex(dimension: d)
            try index.add(ids: ids, vectors: base)
            XCTAssertEqual(index.count, n)
            var maxDiff: Float = 0
            func check(_ label: String) throws {
                let rowOf = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
                for k in [1, 10, n + 5] {
                    let filter: IDFilter = { $0 % 3 == 0 }
                    let batch = try index.search(queries: queries, k: k, filter: nil)
                    let batchFiltered = try index.search(queries: queries, k: k, filter: filter)
                    for i in 0..<nq {
                        let q = VectorFixtures.row(queries, i, d)
                        let truth = VectorFixtures.naive(rows, ids: ids, query: q, k: k)
                        let trueScore: (Int64) -> Float? = { id in
                            rowOf[id].map { r in zip(rows[(r * d)..<((r + 1) * d)], q).reduce(0) { $0 + $1.0 * $1.1 } }
                        }
                        let single = try index.search(query: q, k: k)
                        maxDiff = max(maxDiff, assertSameTopK(single, truth, trueScore: trueScore, "\(label) n=\(n) d=\(d) k=\(k) single"))
                        maxDiff = max(maxDiff, assertSameTopK(batch[i], truth, trueScore: trueScore, "\(label) batch k=\(k)"))
                        let truthFiltered = VectorFixtures.naive(rows, ids: ids, query: q, k: k, filter: filter)
                        let filtered = try index.search(query: q, k: k, filter: filter)
                        XCTAssertTrue(filtered.allSatisfy { filter($0.id) }, "\(label) filter honoured")
                        maxDiff = max(maxDiff, assertSameTopK(filtered, truthFiltered, trueScore: trueScore, "\(label) filtered k=\(k)"))
                        maxDiff = max(maxDiff, assertSameTopK(batchFiltered[i], truthFiltered, trueScore: trueScore, "\(label) batch filtered"))
                        if k == 10 { XCTAssertEqual(single.map(\.id), truth.map(\.id), "\(label) k=10 ids in order") }
                    }
                }
            }
            try check("full")
            // Remove every 5th id and the last row, mirror in the naive copy.
            var removed: [Int64] = []
            for i in stride(from: n - 1, through: 0, by: -1) where i % 5 == 0 || i == n - 1 {
                try index.remove(id: ids[i])
                removed.append(ids[i])
                ids.remove(at: i)
                rows.removeSubrange((i * d)..<((i + 1) * d))
            }
            XCTAssertEqual(index.count, ids.count)
            XCTAssertFalse(index.contains(id: removed[0]))
            XCTAssertEqual(index.vector(for: ids[3]), Array(rows[(3 * d)..<(4 * d)]))
            try check("after removal")
            XCTAssertThrowsError(try index.remove(id: removed[0])) { XCTAssertEqual($0 as? VectorIndexError, .unknownID(removed[0])) }
            print(String(format: "Exact vs naive (N = %d, D = %d): max score difference %.2e", n, d, maxDiff))
        }
        let empty = try ExactIndex(dimension: 4)
        XCTAssertEqual(try empty.search(query: [1, 0, 0, 0], k: 5), [])
    }
}

// MARK: - HNSW recall and speed

extension IndexTests {
    /// HNSW recall@10 ≥ 0.95 against exact search at efSearch = 64 on 20k clustered 384-d
    /// vectors; prints recall per ef and queries per second of both indexes.
    func testHNSWRecallAgainstExact() throws {
        let s = try shared()
        let d = Shared.d, k = Shared.k
        for ef in [16, 32, 64, 128] {
            let approx = try (0..<Shared.q).map { i in
                try s.hnsw.search(query: VectorFixtures.row(s.queries, i, d), k: k, filter: nil, ef: ef)
            }
            let recall = VectorFixtures.recall(approx, s.truth)
            print(String(format: "HNSW recall@10 at ef = %3d: %.4f", ef, recall))
            if ef == 64 { XCTAssertGreaterThanOrEqual(recall, 0.95, "recall@10 at efSearch = 64") }
        }
        // Throughput: one query at a time on one thread, and batches on all cores.
        func rate(_ body: () throws -> Void, queries: Int) rethrows -> Double {
            let start = Date()
            try body()
            return Double(queries) / Date().timeIntervalSince(start)
        }
        let rows = (0..<Shared.q).map { VectorFixtures.row(s.queries, $0, d) }
        let hnswSingle = try rate({ for _ in 0..<5 { for q in rows { _ = try s.hnsw.search(query: q, k: k) } } }, queries: 5 * Shared.q)
        let exactSingle = try rate({ for q in rows { _ = try s.exact.search(query: q, k: k) } }, queries: Shared.q)
        var hnswBatch: [[ScoredID]] = [], exactBatch: [[ScoredID]] = []
        let hnswBatchRate = try rate({ for _ in 0..<5 { hnswBatch = try s.hnsw.search(queries: s.queries, k: k) } }, queries: 5 * Shared.q)
        let exactBatchRate = try rate({ exactBatch = try s.exact.search(queries: s.queries, k: k) }, queries: Shared.q)
        print(String(format: "Queries/s, N = \(Shared.n), D = 384, k = 10: HNSW (ef 64) %.0f single, %.0f batch; exact %.0f single, %.0f batch",
                     hnswSingle, hnswBatchRate, exactSingle, exactBatchRate))
        #if !DEBUG
        XCTAssertGreaterThan(hnswSingle, exactSingle, "HNSW should beat a full scan at N = 20k")
        #endif
        // Batch paths give the single-search answers.
        XCTAssertEqual(hnswBatch, try rows.map { try s.hnsw.search(query: $0, k: k) })
        for (b, t) in zip(exactBatch, s.truth) { XCTAssertEqual(b.map(\.id), t.map(\.id)) }
    }

    /// Single adds (batches of one) build as good a graph; the same seed and order give the
    /// same bytes; a reloaded index continues exactly like the original.
    func testIncrementalAddsAndDeterminism() throws {
        let n = 3_000 / Self.scale, d = 64
        let (base, queries) = VectorFixtures.clustered(count: n, queries: 100, dimension: d, clusters: 30, spread: 2, seed: 11)
        let ids = (0..<n).map { Int64($0) }
        let exact = try ExactIndex(dimension: d)
        try exact.add(ids: ids, vectors: base)
        let truth = try exact.search(queries: queries, k: 10)

        let single = try HNSWIndex(dimension: d)
        for i in 0..<(n / 2) { try single.add(id: ids[i], vector: VectorFixtures.row(base, i, d)) }
        let reloaded = try HNSWIndex(serialized: single.serialized())
        for i in (n / 2)..<n {
            try single.add(id: ids[i], vector: VectorFixtures.row(base, i, d))
            try reloaded.add(id: ids[i], vector: VectorFixtures.row(base, i, d))
        }
        let recall = VectorFixtures.recall(try single.search(queries: queries, k: 10), truth)
        print(String(format: "HNSW built by %d single adds (D = %d): recall@10 %.4f", n, d, recall))
        XCTAssertGreaterThanOrEqual(recall, 0.95)
        XCTAssertTrue(reloaded.serialized() == single.serialized(), "reloaded index continues identically")

        let a = try HNSWIndex(dimension: d), b = try HNSWIndex(dimension: d)
        try a.add(ids: ids, vectors: base)
        try b.add(ids: ids, vectors: base)
        XCTAssertTrue(a.serialized() == b.serialized(), "same seed, same order: same graph")
        let other = try HNSWIndex(dimension: d, parameters: .init(seed: 99))
        try other.add(ids: ids, vectors: base)
        XCTAssertFalse(other.serialized() == a.serialized(), "another seed gives other levels")
        XCTAssertGreaterThanOrEqual(VectorFixtures.recall(try a.search(queries: queries, k: 10), truth), 0.95)
    }
}

// MARK: - Deletion

extension IndexTests {
    /// Removed ids never come back — with tombstones, after the repair purge, with filters and
    /// after re-adding — and recall on the remaining vectors stays high.
    func testDeletedIDsNeverReturned() throws {
        let n = 4_000 / Self.scale, d = 64, k = 20
        let (base, queries) = VectorFixtures.clustered(count: n, queries: 200, dimension: d, clusters: 30, spread: 2, seed: 5)
        let ids = (0..<n).map { Int64($0) + 1_000 }
        let hnsw = try HNSWIndex(dimension: d, parameters: .init(purgeFraction: 1))   // no automatic purge
        let exact = try ExactIndex(dimension: d)
        try hnsw.add(ids: ids, vectors: base)
        try exact.add(ids: ids, vectors: base)
        // Remove 30%, including the entry point's id.
        var rng = Xoshiro256(seed: 3)
        var removed = Set<Int64>([hnsw.ids[hnsw.entryPoint]])
        while removed.count < n * 3 / 10 { removed.insert(ids[Int(rng.next() % UInt64(n))]) }
        for id in removed.sorted() {
            try hnsw.remove(id: id)
            try exact.remove(id: id)
        }
        XCTAssertEqual(hnsw.count, n - removed.count)
        XCTAssertEqual(hnsw.deletedCount, removed.count)
        XCTAssertEqual(Set(hnsw.allIDs), Set(ids).subtracting(removed))

        func check(_ label: String, minimumRecall: Double) throws {
            let truth = try exact.search(queries: queries, k: k)
            let got = try hnsw.search(queries: queries, k: k)
            XCTAssertTrue(got.allSatisfy { $0.count == k && $0.allSatisfy { !removed.contains($0.id) } }, "\(label): no removed id")
            let filtered = try hnsw.search(queries: queries, k: k, filter: { $0 % 2 == 0 })
            XCTAssertTrue(filtered.allSatisfy { $0.allSatisfy { !removed.contains($0.id) && $0.id % 2 == 0 } }, "\(label): filtered")
            let everything = try hnsw.search(query: VectorFixtures.row(queries, 0, d), k: n)
            XCTAssertEqual(Set(everything.map(\.id)), Set(ids).subtracting(removed), "\(label): k = N returns exactly the live ids")
            let recall = VectorFixtures.recall(got, truth)
            print(String(format: "HNSW recall@%d with 30%% removed (%@): %.4f", k, label, recall))
            XCTAssertGreaterThanOrEqual(recall, minimumRecall, label)
        }
        try check("tombstones", minimumRecall: 0.95)
        // Reference: a fresh graph of the survivors.
        let survivors = (0..<n).filter { !removed.contains(ids[$0]) }
        let fresh = try HNSWIndex(dimension: d)
        try fresh.add(ids: survivors.map { ids[$0] }, vectors: survivors.flatMap { VectorFixtures.row(base, $0, d) })
        let freshRecall = VectorFixtures.recall(try fresh.search(queries: queries, k: k), try exact.search(queries: queries, k: k))
        print(String(format: "HNSW recall@%d of a fresh build of the survivors: %.4f", k, freshRecall))
        hnsw.purgeDeleted()
        XCTAssertEqual(hnsw.nodeCount, n - removed.count)
        XCTAssertEqual(hnsw.deletedCount, 0)
        XCTAssertNoThrow(try HNSWIndex(serialized: hnsw.serialized()), "purged graph passes the decoder's invariant checks")
        try check("after purge", minimumRecall: max(0.95, freshRecall - 0.015))

        // A removed id can be added again (with a new vector) and is found.
        let back = removed.sorted()[0]
        try hnsw.add(id: back, vector: VectorFixtures.row(queries, 1, d))
        removed.remove(back)
        XCTAssertEqual(try hnsw.search(query: VectorFixtures.row(queries, 1, d), k: 1).first?.id, back)
        XCTAssertThrowsError(try hnsw.remove(id: 42)) { XCTAssertEqual($0 as? VectorIndexError, .unknownID(42)) }
        XCTAssertThrowsError(try hnsw.add(id: back, vector: VectorFixtures.row(queries, 1, d))) {
            XCTAssertEqual($0 as? VectorIndexError, .duplicateID(back))
        }

        // Default parameters purge by themselves past 25% tombstones; removing everything empties.
        let auto = try HNSWIndex(dimension: d)
        try auto.add(ids: ids, vectors: base)
        for id in ids.prefix(n / 4 + 1) { try auto.remove(id: id) }
        XCTAssertEqual(auto.deletedCount, 0, "automatic purge")
        XCTAssertEqual(auto.nodeCount, auto.count)
        XCTAssertTrue(try auto.search(queries: queries, k: 5).allSatisfy { $0.allSatisfy { $0.id >= ids[n / 4 + 1] } })
        for id in ids.dropFirst(n / 4 + 1) { try auto.remove(id: id) }
        XCTAssertEqual(auto.count, 0)
        XCTAssertEqual(try auto.search(query: VectorFixtures.row(queries, 0, d), k: 5), [])
        try auto.add(id: 1, vector: VectorFixtures.row(queries, 0, d))
        XCTAssertEqual(try auto.search(query: VectorFixtures.row(queries, 0, d), k: 5).map(\.id), [1])
    }
}

// MARK: - Filters

extension IndexTests {
    /// Filters hold in both indexes and in every HNSW mode: graph search (half the ids),
    /// exact fallback (≈ 1% of ids), a handful of ids, none.
    func testFiltersHonouredInBothIndexes() throws {
        let s = try shared()
        let d = Shared.d, k = Shared.k
        let rows = (0..<Shared.q).map { VectorFixtures.row(s.queries, $0, d) }
        let score: [Int64: Int] = Dictionary(uniqueKeysWithValues: s.ids.enumerated().map { ($1, $0) })
        func trueScore(_ q: [Float]) -> (Int64) -> Float? {
            { id in score[id].map { r in zip(s.base[(r * d)..<((r + 1) * d)], q).reduce(0) { $0 + $1.0 * $1.1 } } }
        }

        // Half the ids (even): graph search with in-search filtering.
        let even: IDFilter = { $0 % 2 == 0 }
        // At 20k a walk (≈ 2·ef·M0 dot products) beats a scan (20k filter calls + 10k dots).
        if Shared.n >= 10_000, case .exact = s.hnsw.plan(filter: even, ef: 64) { XCTFail("half the ids should use the graph") }
        let exactEven = try s.exact.search(queries: s.queries, k: k, filter: even)
        let hnswEven = try s.hnsw.search(queries: s.queries, k: k, filter: even)
        for (i, q) in rows.enumerated() {
            // Exact filtered = unfiltered exact top-200, filtered, first k.
            let wide = try s.exact.search(query: q, k: 200).filter { even($0.id) }.prefix(k)
            assertSameTopK(exactEven[i], Array(wide), trueScore: trueScore(q), "exact even")
            XCTAssertTrue(hnswEven[i].allSatisfy { even($0.id) }, "HNSW even")
            XCTAssertEqual(hnswEven[i].count, k)
        }
        let recallEven = VectorFixtures.recall(hnswEven, exactEven)
        print(String(format: "HNSW recall@10 with filter id %% 2 == 0 (graph search): %.4f", recallEven))
        XCTAssertGreaterThanOrEqual(recallEven, 0.95)

        // ≈ 1% of ids: exact over the admitted ids, so identical to the exact index.
        let rare: IDFilter = { $0 % 97 == 0 }
        XCTAssertEqual(s.hnsw.plan(filter: rare, ef: 64), .exact)
        let exactRare = try s.exact.search(queries: s.queries, k: k, filter: rare)
        let hnswRare = try s.hnsw.search(queries: s.queries, k: k, filter: rare)
        for (i, q) in rows.enumerated() {
            XCTAssertTrue(hnswRare[i].allSatisfy { rare($0.id) })
            assertSameTopK(hnswRare[i], exactRare[i], trueScore: trueScore(q), "rare filter")
        }
        print(String(format: "HNSW recall@10 with filter id %% 97 == 0 (exact fallback): %.4f",
                     VectorFixtures.recall(hnswRare, exactRare)))

        // A handful, and none: fewer than k results means fewer than k admitted.
        let few: Set<Int64> = [s.ids[5], s.ids[500], s.ids[Shared.n - 1]]
        for index in [s.hnsw as any VectorSearchIndex, s.exact] {
            let got = try index.search(query: rows[0], k: k, filter: { few.contains($0) })
            XCTAssertEqual(Set(got.map(\.id)), few, "\(type(of: index)) few")
            XCTAssertEqual(try index.search(query: rows[0], k: k, filter: { _ in false }), [], "\(type(of: index)) none")
        }

        // A filter the sample misjudges: it admits exactly the sampled ids, so it looks like 100%
        // and takes the graph; the walk then runs out of budget or results and falls back.
        let sampled = Set(HNSWIndex.sampleSlots(nodeCount: Shared.n).map { s.ids[$0] })
        let fooling: IDFilter = { sampled.contains($0) }
        if Shared.n >= 10_000, case .exact = s.hnsw.plan(filter: fooling, ef: 64) { XCTFail("the sample should look fully admitted") }
        for q in rows.prefix(20) {
            let got = try s.hnsw.search(query: q, k: k, filter: fooling)
            assertSameTopK(got, try s.exact.search(query: q, k: k, filter: fooling), trueScore: trueScore(q), "fooled plan")
        }
    }
}

// MARK: - Serialization

extension IndexTests {
    /// Round trips give identical search results and identical bytes, with and without vectors.
    func testSerializationRoundTrip() throws {
        let s = try shared()
        var start = Date()
        let bytes = s.hnsw.serialized()
        let writeSeconds = Date().timeIntervalSince(start)
        start = Date()
        let loaded = try HNSWIndex(serialized: bytes)
        let readSeconds = Date().timeIntervalSince(start)
        print(String(format: "HNSW serialized: %.1f MB (%.0f B/vector) written in %.3f s, validated and read in %.3f s",
                     Double(bytes.count) / 1e6, Double(bytes.count) / Double(Shared.n), writeSeconds, readSeconds))
        XCTAssertTrue(loaded.serialized() == bytes, "re-serialized bytes identical")
        XCTAssertEqual(loaded.count, s.hnsw.count)
        XCTAssertEqual(loaded.efSearch, s.hnsw.efSearch)
        XCTAssertEqual(try loaded.search(queries: s.queries, k: 10), try s.hnsw.search(queries: s.queries, k: 10))
        let even: IDFilter = { $0 % 2 == 0 }
        XCTAssertEqual(try loaded.search(queries: s.queries, k: 10, filter: even),
                       try s.hnsw.search(queries: s.queries, k: 10, filter: even))

        // Graph only, vectors from the caller's store.
        let graph = s.hnsw.serialized(includeVectors: false)
        print(String(format: "HNSW graph only: %.2f MB (%.0f B/vector)", Double(graph.count) / 1e6, Double(graph.count) / Double(Shared.n)))
        let fromStore = try HNSWIndex(serialized: graph, vectors: { s.exact.vector(for: $0) })
        XCTAssertTrue(fromStore.serialized() == bytes, "graph + store vectors = full bytes")
        XCTAssertEqual(try fromStore.search(queries: s.queries, k: 10), try s.hnsw.search(queries: s.queries, k: 10))
        // Missing vectors: graph-only data without a source is an error; ids the store lacks become removed.
        XCTAssertThrowsError(try HNSWIndex(serialized: graph)) { error in
            guard case .corruptData(what: "vectors", _, _)? = error as? VectorIndexError else { return XCTFail("\(error)") }
        }
        let gone = Set(s.ids.prefix(100))
        let partial = try HNSWIndex(serialized: graph, vectors: { gone.contains($0) ? nil : s.exact.vector(for: $0) })
        XCTAssertEqual(partial.count, Shared.n - 100)
        XCTAssertTrue(try partial.search(queries: s.queries, k: 10).allSatisfy { $0.count == 10 && $0.allSatisfy { !gone.contains($0.id) } })
        XCTAssertThrowsError(try HNSWIndex(serialized: graph, vectors: { _ in [1, 2, 3] })) {
            XCTAssertEqual($0 as? VectorIndexError, .wrongDimension(id: s.ids[0], expected: Shared.d, actual: 3))
        }
    }

    /// Truncated, bit-flipped and structurally corrupt bytes (with a valid checksum) all throw.
    func testCorruptSerializedDataThrows() throws {
        let n = 300, d = 16
        let (base, _) = VectorFixtures.clustered(count: n, queries: 1, dimension: d, clusters: 5, seed: 9)
        let index = try HNSWIndex(dimension: d, parameters: .init(m: 4, purgeFraction: 1))
        try index.add(ids: (0..<n).map { Int64($0) }, vectors: base)
        try index.remove(id: 10)
        let good = index.serialized()
        XCTAssertNoThrow(try HNSWIndex(serialized: good))

        func expectCorrupt(_ bytes: [UInt8], _ what: String, _ label: String, line: UInt = #line) {
            XCTAssertThrowsError(try HNSWIndex(serialized: bytes), label, line: line) { error in
                guard case let .corruptData(got, _, _)? = error as? VectorIndexError else {
                    return XCTFail("\(label): \(error)", line: line)
                }
                XCTAssertTrue(got.hasPrefix(what), "\(label): error about '\(got)', expected '\(what)'", line: line)
            }
        }
        /// Rewrites the trailing checksum so only the structural checks can catch the damage.
        func resealed(_ bytes: [UInt8]) -> [UInt8] {
            var b = Array(bytes.dropLast(8))
            withUnsafeBytes(of: HNSWIndex.checksum(b).littleEndian) { b.append(contentsOf: $0) }
            return b
        }
        func patched(_ offset: Int, _ values: [UInt8]) -> [UInt8] {
            var b = good
            b.replaceSubrange(offset..<(offset + values.count), with: values)
            return resealed(b)
        }
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

        // Truncation anywhere, with or without a recomputed checksum.
        for length in [0, 1, 8, 100, 119, 120, good.count / 3, good.count / 2, good.count - 9, good.count - 1] {
            XCTAssertThrowsError(try HNSWIndex(serialized: Array(good.prefix(length))), "truncated to \(length)")
            if length > 8 { XCTAssertThrowsError(try HNSWIndex(serialized: resealed(Array(good.prefix(length)))), "resealed \(length)") }
        }
        expectCorrupt(resealed(Array(good.prefix(good.count / 2))), "node count", "resealed half")
        // Any flipped bit is caught by the checksum.
        for offset in stride(from: 0, to: good.count, by: 97) {
            var b = good
            b[offset] ^= 0x10
            XCTAssertThrowsError(try HNSWIndex(serialized: b), "bit flip at \(offset)")
        }
        expectCorrupt({ var b = good; b[good.count / 2] ^= 1; return b }(), "checksum", "flip")

        // Structure, checksum valid. Layout: header 112, ids 8N, levels N, deleted N, links0 (N, 1 + 2M).
        let h = HNSWIndex.headerBytes, m0 = 8
        let levels = h + 8 * n, flags = levels + n, links0 = flags + n
        expectCorrupt(patched(0, Array("NOTHNSW!".utf8)), "magic", "magic")
        expectCorrupt(patched(8, le(UInt32(2))), "version", "version")
        expectCorrupt(patched(12, le(UInt32(0))), "dimension", "dimension 0")
        expectCorrupt(patched(16, le(UInt32(1))), "M", "M = 1")
        expectCorrupt(patched(80, le(UInt64.max / 2)), "node count", "huge node count")
        expectCorrupt(patched(80, le(UInt64(n + 1))), "body", "node count + 1")
        expectCorrupt(patched(96, le(Int64(n))), "entry point", "entry point out of range")
        expectCorrupt(patched(levels, [200]), "level of node 0", "level 200")
        expectCorrupt(patched(levels + 1, [good[levels + 1] + 1]), "levels", "level sum mismatch")
        expectCorrupt(patched(flags + 3, [7]), "deleted flag of node 3", "flag 7")
        expectCorrupt(patched(h + 8 * 4, le(Int64(3))), "id of node 4", "duplicate live id")
        expectCorrupt(patched(links0, le(UInt32(m0 + 1))), "link count of node 0", "link count")
        expectCorrupt(patched(links0 + 4, le(UInt32(n))), "neighbour 0 of node 0", "neighbour out of range")
        expectCorrupt(patched(links0 + 4, le(UInt32(0))), "neighbour 0 of node 0", "self link")
        let vectorsStart = good.count - 8 - 4 * n * d
        expectCorrupt(patched(vectorsStart + 4 * 5, le(Float.nan.bitPattern)), "vector of node 0", "NaN value")
        // A link on layer 1 to a node without layer 1 would read outside its records.
        if let (node, low) = upperLinkTarget(index) {
            let offset = good.count - 8 - 4 * n * d - index.upper.count * 4 + index.upperOffset[node] * 4 + 4
            expectCorrupt(patched(offset, le(UInt32(low))), "neighbour 0 of node \(node) on layer 1", "layer-0-only neighbour on layer 1")
        } else {
            XCTFail("fixture has no upper layer")
        }
        // Random bytes behind a valid magic and checksum.
        var rng = Xoshiro256(seed: 1)
        for length in [120, 200, 1_000, good.count] {
            let noise = Array(HNSWIndex.magic) + (8..<(length - 8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } + [0, 0, 0, 0, 0, 0, 0, 0]
            XCTAssertThrowsError(try HNSWIndex(serialized: resealed(noise)), "noise \(length)")
        }
    }

    /// A node with an upper layer that has a neighbour there, and a node that has only layer 0.
    private func upperLinkTarget(_ index: HNSWIndex) -> (node: Int, layer0Only: Int)? {
        guard let low = (0..<index.nodeCount).first(where: { index.levels[$0] == 0 }) else { return nil }
        for s in 0..<index.nodeCount where index.levels[s] > 0 && index.upper[index.upperOffset[s]] > 0 && s != low {
            return (s, low)
        }
        return nil
    }
}

// MARK: - Errors

extension IndexTests {
    /// Wrong dimensions, batch sizes, duplicates and parameters throw typed errors naming the id.
    func testWrongDimensionAndInputErrors() throws {
        let d = 16
        let indexes: [any VectorSearchIndex] = [try ExactIndex(dimension: d), try HNSWIndex(dimension: d)]
        for index in indexes {
            let name = "\(type(of: index))"
            try index.add(id: 1, vector: [Float](repeating: 0.25, count: d))
            XCTAssertThrowsError(try index.add(id: 7, vector: [Float](repeating: 0, count: d - 1)), name) {
                XCTAssertEqual($0 as? VectorIndexError, .wrongDimension(id: 7, expected: d, actual: d - 1))
                XCTAssertEqual("\($0)", "vector for id 7 has 15 values, expected 16")
            }
            XCTAssertThrowsError(try index.search(query: [Float](repeating: 0, count: d + 1), k: 3), name) {
                XCTAssertEqual($0 as? VectorIndexError, .wrongDimension(id: nil, expected: d, actual: d + 1))
            }
            XCTAssertThrowsError(try index.add(ids: [2, 3], vectors: [Float](repeating: 0, count: d)), name) {
                XCTAssertEqual($0 as? VectorIndexError, .wrongBatchSize(ids: 2, values: d, dimension: d))
            }
            XCTAssertThrowsError(try index.add(ids: [2, 2], vectors: [Float](repeating: 0, count: 2 * d)), name) {
                XCTAssertEqual($0 as? VectorIndexError, .duplicateID(2))
            }
            XCTAssertThrowsError(try index.add(id: 1, vector: [Float](repeating: 0, count: d)), name) {
                XCTAssertEqual($0 as? VectorIndexError, .duplicateID(1))
            }
            var nan = [Float](repeating: 0, count: d)
            nan[3] = .nan
            XCTAssertThrowsError(try index.add(ids: [5, 6], vectors: [Float](repeating: 0, count: d) + nan), name) {
                XCTAssertEqual($0 as? VectorIndexError, .nonFiniteValue(id: 6, position: 3))
            }
            XCTAssertThrowsError(try index.search(query: nan, k: 1), name) {
                XCTAssertEqual($0 as? VectorIndexError, .nonFiniteValue(id: nil, position: 3))
            }
            XCTAssertEqual(index.count, 1, "\(name): failed adds leave the index unchanged")
            XCTAssertFalse(index.contains(id: 5), "\(name): a failed batch adds nothing")
            XCTAssertEqual(try index.search(query: [Float](repeating: 0.25, count: d), k: 0), [])
            XCTAssertEqual(try index.search(query: [Float](repeating: 0.25, count: d), k: .max).map(\.id), [1], "\(name): k = Int.max")
        }
        XCTAssertThrowsError(try ExactIndex(dimension: 0))
        XCTAssertThrowsError(try HNSWIndex(dimension: d, parameters: .init(m: 1))) {
            XCTAssertEqual($0 as? VectorIndexError, .invalidParameter(name: "m", value: 1, expected: "2...256"))
        }
    }
}
