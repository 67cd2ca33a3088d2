import Foundation
import Ingest
import Tensor
import VectorIndex

// The engine benchmarks that Benchmarks/retrieval.sh runs beside Benchmarks/retrieval_peer.py
// (sentence-transformers, faiss, hnswlib) on the same inputs (see `VectorFile`).
// Letters: N stored vectors, Q queries, D dimension, k results per query.

// MARK: - PubMed parsing

/// The PubMed/MEDLINE reader alone, without storing anything.
public enum PubMedParseBenchmark {
    public struct Result: Encodable, Sendable {
        public var engine: String, articles: Int, seconds: Double, articlesPerSecond: Double, peakRSSMB: Double
    }

    /// Reads every article of `file` (.xml or .xml.gz) and measures articles/s and peak RSS.
    public static func run(file: String) throws -> Result {
        var n = 0
        let dt = try Measure.seconds { try PubMedReader().read(file: file) { if case .document = $0 { n += 1 } } }
        return Result(engine: "selfspec PubMedReader", articles: n, seconds: Measure.round(dt),
                      articlesPerSecond: (Double(n) / dt).rounded(), peakRSSMB: Measure.peakRSSMB)
    }
}

// MARK: - Embedding

/// Passage embedding throughput.
public enum EmbedBenchmark {
    public struct Result: Encodable, Sendable {
        public var engine: String, passages: Int, tokensMean: Double, seconds: Double, passagesPerSecond: Double
    }

    /// The texts `selfspec embed` embeds (title + passage) of the first `count` passages of the
    /// documents from the reader `source` (pubmed, jats, text, jsonl).
    public static func passageTexts(corpus: CorpusStore, source: String, count: Int) throws -> [String] {
        let st = try corpus.db.prepare("""
            SELECT t.title, t.text FROM passage_texts t JOIN documents d ON d.id = t.doc_id WHERE d.source = ? ORDER BY t.id LIMIT ?
            """)
        try st.bind([.text(source), .int(count)])
        var texts: [String] = []
        while try st.step() { texts.append(VectorStore.embeddingText(title: st.string(0) ?? "", text: st.string(1) ?? "")) }
        return texts
    }

    /// Embeds `texts` after a warm-up on the first 32.
    /// - Returns: the measurement and the vectors, (N, 384).
    public static func run(texts: [String], embedder: MiniLMEmbedder) throws -> (result: Result, vectors: [[Float]]) {
        _ = try embedder.embed(Array(texts.prefix(32)))   // warm up
        var vectors: [[Float]] = []
        let dt = try Measure.seconds { vectors = try embedder.embed(texts) }
        let tokens = texts.reduce(0) { $0 + embedder.tokenIDs($1).count }
        let n = Double(max(texts.count, 1))
        return (Result(engine: "selfspec MiniLMEmbedder", passages: texts.count, tokensMean: Measure.round(Double(tokens) / n, 10),
                       seconds: Measure.round(dt), passagesPerSecond: Measure.round(Double(texts.count) / dt, 10)), vectors)
    }

    /// Writes `texts` as JSON Lines of strings (the peer's input).
    public static func writeTexts(_ texts: [String], to path: String) throws {
        let lines = try texts.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}

// MARK: - Exact search

/// Exact (sgemm) search, batched and one query at a time.
public enum ExactSearchBenchmark {
    public struct Result: Encodable, Sendable {
        public var engine: String, n: Int, q: Int, batchedQPS: Double, singleQPS: Double, buildSeconds: Double
    }

    /// - Parameters:
    ///   - base: (N, D) stored vectors; `queries`: (Q, D).
    ///   - single: queries of the one-at-a-time measurement, from the start of `queries`.
    /// - Returns: the measurement and the batched top-k ids, (Q, k), to check against the peer.
    public static func run(base b: [Float], queries q: [Float], dimension d: Int, k: Int, single: Int) throws -> (result: Result, ids: [Int64]) {
        let n = b.count / d, nq = q.count / d
        let index = try ExactIndex(dimension: d)
        let build = try Measure.seconds { try index.add(ids: (0..<n).map(Int64.init), vectors: b) }
        _ = try index.search(queries: Array(q.prefix(8 * d)), k: k)   // warm up
        var batched: [[ScoredID]] = []
        var tb = Double.infinity
        for _ in 0..<3 {   // best of three batched passes (as the peer's side does)
            tb = min(tb, try Measure.seconds { batched = try index.search(queries: q, k: k) })
        }
        let ns = min(single, nq)
        let ts = try Measure.seconds {
            for i in 0..<ns { _ = try index.search(query: Array(q[(i * d)..<((i + 1) * d)]), k: k) }
        }
        return (Result(engine: "selfspec ExactIndex", n: n, q: nq, batchedQPS: Measure.round(Double(nq) / tb, 10),
                       singleQPS: Measure.round(Double(ns) / ts, 10), buildSeconds: Measure.round(build)),
                batched.flatMap { $0.map(\.id) })
    }
}

// MARK: - HNSW

/// HNSW build time, and queries/s (one query at a time, one thread) with recall@k against exact
/// search, over efSearch values.
public enum HNSWBenchmark {
    public struct Point: Encodable, Sendable { public var ef: Int, recall: Double, qps: Double }
    public struct Result: Encodable, Sendable {
        public var engine: String, n: Int, q: Int, buildSeconds: Double, memoryMB: Double, points: [Point]
    }

    /// - Parameters: `base`: (N, D) stored vectors; `queries`: (Q, D); `efValues`: the efSearch values to measure.
    public static func run(base b: [Float], queries q: [Float], dimension d: Int, k: Int, efValues: [Int]) throws -> Result {
        let n = b.count / d, nq = q.count / d
        let ids = (0..<n).map(Int64.init)
        let exact = try ExactIndex(dimension: d)
        try exact.add(ids: ids, vectors: b)
        let truth = try exact.search(queries: q, k: k)
        let hnsw = try HNSWIndex(dimension: d)
        let build = try Measure.seconds { try hnsw.add(ids: ids, vectors: b) }
        var points: [Point] = []
        for ef in efValues {
            var found: [[ScoredID]] = []
            let t = try Measure.seconds {
                for i in 0..<nq { found.append(try hnsw.search(query: Array(q[(i * d)..<((i + 1) * d)]), k: k, ef: ef)) }
            }
            points.append(Point(ef: ef, recall: Measure.round(Measure.recall(found, truth: truth), 10000), qps: Measure.round(Double(nq) / t, 10)))
        }
        return Result(engine: "selfspec HNSWIndex", n: n, q: nq, buildSeconds: Measure.round(build),
                      memoryMB: Measure.round(Double(hnsw.memoryBytes) / 1_048_576, 10), points: points)
    }
}

// MARK: - Scale

/// How HNSW and exact search grow with N, on random unit vectors.
public enum ScaleBenchmark {
    public struct Row: Encodable, Sendable {
        public var n: Int, buildSeconds: Double, hnswMB: Double, bytesPerVector: Double, peakRSSMB: Double
        public var hnswQPS: Double, hnswRecall: Double, exactQPS: Double
    }

    /// Measures each size in turn (recall@10 of HNSW at `ef` against exact search).
    /// - Parameters:
    ///   - queries: queries per size; `seed`: the seed of every size's vectors.
    ///   - measured: called with each row as it is measured.
    public static func run(sizes: [Int], dimension d: Int, queries: Int, ef: Int, seed: UInt64,
                           measured: (Row) -> Void = { _ in }) throws -> [Row] {
        var rows: [Row] = []
        for n in sizes {
            var s = SplitMix64(seed: seed)
            let base = unitVectors(n, d, seed: &s), q = unitVectors(queries, d, seed: &s)
            let ids = (0..<n).map(Int64.init)
            let hnsw = try HNSWIndex(dimension: d, parameters: .init(efSearch: ef))
            let build = try Measure.seconds { try hnsw.add(ids: ids, vectors: base) }
            let exact = try ExactIndex(dimension: d)
            try exact.add(ids: ids, vectors: base)
            var truth: [[ScoredID]] = [], found: [[ScoredID]] = []
            let te = try Measure.seconds {
                for i in 0..<queries { truth.append(try exact.search(query: Array(q[(i * d)..<((i + 1) * d)]), k: 10)) }
            }
            let th = try Measure.seconds {
                for i in 0..<queries { found.append(try hnsw.search(query: Array(q[(i * d)..<((i + 1) * d)]), k: 10)) }
            }
            let mem = Double(hnsw.memoryBytes)
            rows.append(Row(n: n, buildSeconds: Measure.round(build, 100), hnswMB: Measure.round(mem / 1_048_576, 10),
                            bytesPerVector: (mem / Double(n)).rounded(), peakRSSMB: Measure.peakRSSMB.rounded(),
                            hnswQPS: Measure.round(Double(queries) / th, 10), hnswRecall: Measure.round(Measure.recall(found, truth: truth), 1000),
                            exactQPS: Measure.round(Double(queries) / te, 10)))
            measured(rows[rows.count - 1])
        }
        return rows
    }

    /// Gaussian rows normalised to unit length, from SplitMix64 + Box–Muller: (n, d).
    static func unitVectors(_ n: Int, _ d: Int, seed rng: inout SplitMix64) -> [Float] {
        func next() -> Double { (Double(rng.next() >> 11) + 1) * 0x1p-53 }   // (0, 1]
        var out = [Float](repeating: 0, count: n * d)
        var i = 0
        while i < out.count {
            let r = (-2 * log(next())).squareRoot(), t = 2 * Double.pi * next()
            out[i] = Float(r * cos(t))
            if i + 1 < out.count { out[i + 1] = Float(r * sin(t)) }
            i += 2
        }
        for row in 0..<n {
            var s: Float = 0
            for j in 0..<d { s += out[row * d + j] * out[row * d + j] }
            let inv = 1 / s.squareRoot()
            for j in 0..<d { out[row * d + j] *= inv }
        }
        return out
    }
}
