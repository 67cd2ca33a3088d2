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
/// rebuild. Build times against hnswlib are in BENCHMARKS.md.
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
}
