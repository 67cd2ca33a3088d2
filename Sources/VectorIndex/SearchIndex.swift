import CKernels
import Foundation
import Tensor

// The one interface behind which the exact (brute-force) and the approximate (HNSW) vector
// indexes sit, as in nmslib/hnswlib. Dimension letters used in this module's index files:
//   N  stored vectors (rows)        D  vector dimension (384 for MiniLM)
//   Q  queries in one batch         k  results per query
// Vectors are expected L2-normalised, so the score `dot(q, v)` is the cosine similarity; the
// indexes never normalise for you (a larger dot product is simply a better match).

// MARK: - Results, filters, errors

/// One search hit: the caller's id and its score (dot product with the query; cosine for unit vectors).
public struct ScoredID: Sendable, Equatable {
    /// The id given to `add`.
    public var id: Int64
    /// `dot(query, vector)`; higher is better.
    public var score: Float

    /// - Parameters:
    ///   - id: the stored id.
    ///   - score: the dot product with the query.
    public init(id: Int64, score: Float) {
        self.id = id
        self.score = score
    }
}

/// Admits (returns `true` for) the ids a search may return — used for year, journal or MeSH
/// restrictions. It must be a pure function of the id; batch searches call it from several threads.
public typealias IDFilter = (Int64) -> Bool

/// Errors from building, querying or decoding a vector index. Payloads name the id, the part of
/// the serialized data and the expected vs the actual value.
public enum VectorIndexError: Error, LocalizedError, CustomStringConvertible, Equatable, Sendable {
    /// A vector has the wrong number of values; `id` is `nil` for a query.
    case wrongDimension(id: Int64?, expected: Int, actual: Int)
    /// A batch of `ids` came with a value count that is not `ids × dimension`.
    case wrongBatchSize(ids: Int, values: Int, dimension: Int)
    /// A vector (`id` `nil`: a query) holds NaN or ±infinity at `position`.
    case nonFiniteValue(id: Int64?, position: Int)
    /// `add` was given an id the index already holds (remove it first).
    case duplicateID(Int64)
    /// `remove` (or a vector source) was asked about an id the index does not hold.
    case unknownID(Int64)
    /// A construction parameter is outside its valid range.
    case invalidParameter(name: String, value: Int, expected: String)
    /// Serialized index bytes are invalid: `what` was being read at byte `offset`.
    case corruptData(what: String, offset: Int, detail: String)

    public var description: String {
        switch self {
        case let .wrongDimension(id?, expected, actual):
            return "vector for id \(id) has \(actual) values, expected \(expected)"
        case let .wrongDimension(nil, expected, actual):
            return "query has \(actual) values, expected \(expected)"
        case let .wrongBatchSize(ids, values, dimension):
            return "batch of \(ids) ids has \(values) values, expected \(ids) × \(dimension) = \(ids * dimension)"
        case let .nonFiniteValue(id?, position):
            return "vector for id \(id) has a non-finite value at position \(position)"
        case let .nonFiniteValue(nil, position):
            return "query has a non-finite value at position \(position)"
        case let .duplicateID(id):
            return "id \(id) is already in the index"
        case let .unknownID(id):
            return "id \(id) is not in the index"
        case let .invalidParameter(name, value, expected):
            return "parameter \(name) = \(value), expected \(expected)"
        case let .corruptData(what, offset, detail):
            return "corrupt index data: \(what) at byte \(offset): \(detail)"
        }
    }

    public var errorDescription: String? { description }
}

// MARK: - The index interface

/// A mutable set of `(id, vector)` pairs searchable by dot product.
///
/// Concurrency contract (both implementations): any number of `search` calls may run at once;
/// `add` and `remove` need exclusive access (no concurrent search or mutation).
public protocol VectorSearchIndex: AnyObject {
    /// D, the number of values of every vector.
    var dimension: Int { get }
    /// The number of live (searchable) vectors.
    var count: Int { get }
    /// Whether `id` is stored and not removed.
    func contains(id: Int64) -> Bool

    /// Stores one vector.
    /// - Parameters:
    ///   - id: caller's id; must not already be present.
    ///   - vector: `(D)` values.
    /// - Throws: ``VectorIndexError/wrongDimension(id:expected:actual:)``,
    ///   ``VectorIndexError/nonFiniteValue(id:position:)``, ``VectorIndexError/duplicateID(_:)``.
    func add(id: Int64, vector: UnsafeBufferPointer<Float>) throws

    /// Stores many vectors at once (the fast path for building: may use all cores).
    /// - Parameters:
    ///   - ids: `(N)` distinct ids not yet present.
    ///   - vectors: `(N, D)` row-major values, row `i` belonging to `ids[i]`.
    /// - Throws: ``VectorIndexError/wrongBatchSize(ids:values:dimension:)``,
    ///   ``VectorIndexError/nonFiniteValue(id:position:)``, ``VectorIndexError/duplicateID(_:)``;
    ///   nothing is added when it throws.
    func add(ids: [Int64], vectors: UnsafeBufferPointer<Float>) throws

    /// Removes a vector; it is never returned again.
    /// - Parameter id: a stored id.
    /// - Throws: ``VectorIndexError/unknownID(_:)``.
    func remove(id: Int64) throws

    /// The `k` best admitted vectors for one query, best first (ties: smaller id first).
    /// - Parameters:
    ///   - query: `(D)` values.
    ///   - k: number of results wanted; fewer come back only when fewer vectors are admitted.
    ///   - filter: admits ids; `nil` admits all.
    /// - Returns: up to `k` hits, scores descending.
    /// - Throws: ``VectorIndexError/wrongDimension(id:expected:actual:)`` or
    ///   ``VectorIndexError/nonFiniteValue(id:position:)``, with `id: nil`.
    func search(query: UnsafeBufferPointer<Float>, k: Int, filter: IDFilter?) throws -> [ScoredID]

    /// The `k` best admitted vectors for each of `Q` queries (may use all cores).
    /// - Parameters:
    ///   - queries: `(Q, D)` row-major values.
    ///   - k: results per query.
    ///   - filter: admits ids; `nil` admits all. Called concurrently.
    /// - Returns: `Q` result lists, in query order.
    func search(queries: UnsafeBufferPointer<Float>, k: Int, filter: IDFilter?) throws -> [[ScoredID]]
}

extension VectorSearchIndex {
    /// ``add(id:vector:)`` for an array.
    public func add(id: Int64, vector: [Float]) throws {
        try vector.withUnsafeBufferPointer { try add(id: id, vector: $0) }
    }

    /// ``add(ids:vectors:)`` for an array of `(N, D)` values.
    public func add(ids: [Int64], vectors: [Float]) throws {
        try vectors.withUnsafeBufferPointer { try add(ids: ids, vectors: $0) }
    }

    /// ``search(query:k:filter:)`` for an array.
    public func search(query: [Float], k: Int, filter: IDFilter? = nil) throws -> [ScoredID] {
        try query.withUnsafeBufferPointer { try search(query: $0, k: k, filter: filter) }
    }

    /// ``search(queries:k:filter:)`` for an array of `(Q, D)` values.
    public func search(queries: [Float], k: Int, filter: IDFilter? = nil) throws -> [[ScoredID]] {
        try queries.withUnsafeBufferPointer { try search(queries: $0, k: k, filter: filter) }
    }

    /// Checks that `values` holds one finite row of `D` per id.
    func checkBatch(_ values: UnsafeBufferPointer<Float>, ids: [Int64]) throws {
        let d = dimension
        guard values.count == ids.count * d else {
            throw VectorIndexError.wrongBatchSize(ids: ids.count, values: values.count, dimension: d)
        }
        for (i, id) in ids.enumerated() {
            try Self.checkVector(UnsafeBufferPointer(rebasing: values[(i * d)..<((i + 1) * d)]), id: id, dimension: d)
        }
    }

    /// Throws unless `vector` has `dimension` finite values.
    static func checkVector(_ vector: UnsafeBufferPointer<Float>, id: Int64, dimension: Int) throws {
        guard vector.count == dimension else {
            throw VectorIndexError.wrongDimension(id: id, expected: dimension, actual: vector.count)
        }
        if let bad = vector.firstIndex(where: { !$0.isFinite }) { throw VectorIndexError.nonFiniteValue(id: id, position: bad) }
    }

    /// Throws unless `query` has `dimension` finite values; returns `true` (for use in `guard`).
    static func checkQuery(_ query: UnsafeBufferPointer<Float>, dimension: Int) throws -> Bool {
        guard query.count == dimension else {
            throw VectorIndexError.wrongDimension(id: nil, expected: dimension, actual: query.count)
        }
        if let bad = query.firstIndex(where: { !$0.isFinite }) { throw VectorIndexError.nonFiniteValue(id: nil, position: bad) }
        return true
    }

    /// Runs ``search(query:k:filter:)`` for each query, queries spread over all cores.
    func searchEach(queries: UnsafeBufferPointer<Float>, k: Int, filter: IDFilter?) throws -> [[ScoredID]] {
        let d = dimension
        guard queries.count % d == 0 else { throw VectorIndexError.wrongDimension(id: nil, expected: d, actual: queries.count % d) }
        for i in 0..<(queries.count / d) {
            _ = try Self.checkQuery(UnsafeBufferPointer(rebasing: queries[(i * d)..<((i + 1) * d)]), dimension: d)
        }
        let q = queries.count / d
        var results = [[ScoredID]](repeating: [], count: q)
        results.withUnsafeMutableBufferPointer { out in
            let out = UncheckedSendable(out)
            // Single searches cannot fail here: the dimension was checked above.
            Parallel.forEach(0..<q, chunks: Parallel.coreCount * 4) { range in
                for i in range {
                    let row = UnsafeBufferPointer(rebasing: queries[(i * d)..<((i + 1) * d)])
                    out.value[i] = (try? self.search(query: row, k: k, filter: filter)) ?? []
                }
            }
        }
        return results
    }
}

// MARK: - Top-k selection (shared by both indexes)

/// Keeps the `k` best `(score, id)` pairs seen: a binary min-heap whose root is the worst kept.
///
/// "Better" is the higher score, ties going to the smaller id, so every index and every search
/// path orders equal scores the same way.
struct TopK {
    let k: Int
    private(set) var items: [ScoredID] = []

    init(k: Int) {
        self.k = max(0, k)
        items.reserveCapacity(min(self.k, 1024))
    }

    /// `a` ranks below `b`.
    @inline(__always)
    static func worse(_ a: ScoredID, _ b: ScoredID) -> Bool {
        a.score < b.score || (a.score == b.score && a.id > b.id)
    }

    var isFull: Bool { items.count >= k }

    /// The score a new item must beat (or tie with a smaller id) to enter; `-inf` until full.
    var threshold: Float { isFull && k > 0 ? items[0].score : -.infinity }

    /// Whether `score` could enter (cheap pre-check before calling a filter).
    @inline(__always)
    func admits(_ score: Float) -> Bool { k > 0 && (!isFull || score >= items[0].score) }

    mutating func insert(_ item: ScoredID) {
        guard k > 0 else { return }
        if items.count < k {
            items.append(item)
            siftUp(items.count - 1)
        } else if Self.worse(items[0], item) {
            items[0] = item
            siftDown(0)
        }
    }

    mutating func merge(_ other: TopK) { for item in other.items { insert(item) } }

    /// The kept items, best first.
    func sorted() -> [ScoredID] { items.sorted { Self.worse($1, $0) } }

    private mutating func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.worse(items[i], items[parent]) else { return }
            items.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let n = items.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && Self.worse(items[l], items[m]) { m = l }
            if r < n && Self.worse(items[r], items[m]) { m = r }
            if m == i { return }
            items.swapAt(i, m)
            i = m
        }
    }
}

// MARK: - Dot product

/// `Σ a[i]·b[i]`: ``ck_dot`` from the CKernels C target, which uses 256-bit AVX + FMA when the CPU
/// has them (checked once at run time) and SSE otherwise; the Swift code is built for baseline
/// x86-64, where `SIMD16<Float>` lowers to 128-bit SSE.
@inline(__always)
func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    ck_dot(a, b, count)
}
