import ArgumentParser
import Foundation
import Ingest
import VectorIndex

// Retrieval benchmarks, run by Benchmarks/retrieval.sh beside Benchmarks/retrieval_peer.py
// (sentence-transformers, faiss, hnswlib) on the same inputs. Vector files are raw
// little-endian float32, row-major (N, D), as numpy's `tofile` writes them.
// Letters: N stored vectors, Q queries, D dimension, k results per query.

// MARK: - Shared helpers

enum BenchIO {
    /// Reads an (N, D) float32 file.
    static func readVectors(_ path: String, dimension d: Int) throws -> [Float] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count % (4 * d) == 0 else {
            throw ValidationError("\(path): \(data.count) bytes is not a whole number of \(d)-d float32 rows")
        }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Writes an (N, D) float32 file.
    static func writeVectors(_ values: [Float], to path: String) throws {
        try values.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
    }

    /// Peak resident set size of this process, in MB.
    static var peakRSSMB: Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func round(_ x: Double, _ digits: Double = 1000) -> Double { (x * digits).rounded() / digits }

    /// Fraction of the true top-k ids found, averaged over queries.
    static func recall(_ found: [[ScoredID]], truth: [[ScoredID]]) -> Double {
        var hit = 0, total = 0
        for (f, t) in zip(found, truth) {
            let want = Set(t.map(\.id))
            hit += f.filter { want.contains($0.id) }.count
            total += t.count
        }
        return Double(hit) / Double(max(total, 1))
    }
}

// MARK: - embed

struct BenchEmbed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed the first N passages of a corpus (title + passage, as `selfspec embed` does) and report passages/s.")

    @Option(help: "The corpus SQLite file.") var db: String
    @Option(help: "Passages to embed.") var count = 2000
    @Option(help: "Only passages of documents from this reader (pubmed, jats, text, jsonl).") var source = "pubmed"
    @OptionGroup var model: ModelOptions
    @Option(help: "Write the embedded texts here (JSON Lines of strings) for the peer.") var textsOut: String?
    @Option(help: "Write the (N, 384) vectors here (float32).") var vectorsOut: String?
    @Flag(help: "Print JSON.") var json = false

    struct Result: Encodable { var engine: String; var passages: Int; var tokensMean: Double; var seconds: Double; var passagesPerSecond: Double }

    func run() throws {
        let corpus = try openExisting(db)
        let st = try corpus.db.prepare("""
            SELECT t.title, t.text FROM passage_texts t JOIN documents d ON d.id = t.doc_id WHERE d.source = ? ORDER BY t.id LIMIT ?
            """)
        try st.bind([.text(source), .int(count)])
        var texts: [String] = []
        while try st.step() { texts.append(VectorStore.embeddingText(title: st.string(0) ?? "", text: st.string(1) ?? "")) }
        let embedder = try model.load()
        if let textsOut {
            let lines = try texts.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
            try (lines.joined(separator: "\n") + "\n").write(toFile: textsOut, atomically: true, encoding: .utf8)
        }
        _ = try embedder.embed(Array(texts.prefix(32)))   // warm up
        var vectors: [[Float]] = []
        let dt = try BenchIO.seconds { vectors = try embedder.embed(texts) }
        if let vectorsOut { try BenchIO.writeVectors(vectors.flatMap { $0 }, to: vectorsOut) }
        let tokens = texts.reduce(0) { $0 + embedder.tokenIDs($1).count }
        let r = Result(engine: "selfspec MiniLMEmbedder", passages: texts.count, tokensMean: BenchIO.round(Double(tokens) / Double(max(texts.count, 1)), 10),
                       seconds: BenchIO.round(dt), passagesPerSecond: BenchIO.round(Double(texts.count) / dt, 10))
        if json { try Terminal.printJSON(r) } else { print("\(r.passages) passages (\(r.tokensMean) tokens avg) in \(r.seconds) s = \(r.passagesPerSecond)/s") }
    }
}

// MARK: - exact

struct BenchExact: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exact",
        abstract: "Exact (sgemm) search queries/s, batched and one query at a time.")

    @Option(help: "(N, D) float32 base vectors.") var base: String
    @Option(help: "(Q, D) float32 queries.") var queries: String
    @Option(help: "D.") var dimension = 384
    @Option(help: "Results per query.") var k = 10
    @Option(help: "Queries for the one-at-a-time measurement (from the start of the file).") var single = 200
    @Option(help: "Write the batched top-k ids here (int64, (Q, k)) to check against the peer.") var idsOut: String?
    @Flag(help: "Print JSON.") var json = false

    struct Result: Encodable { var engine: String; var n: Int; var q: Int; var batchedQPS: Double; var singleQPS: Double; var buildSeconds: Double }

    func run() throws {
        let d = dimension
        let b = try BenchIO.readVectors(base, dimension: d), q = try BenchIO.readVectors(queries, dimension: d)
        let n = b.count / d, nq = q.count / d
        let index = try ExactIndex(dimension: d)
        let build = try BenchIO.seconds { try index.add(ids: (0..<n).map(Int64.init), vectors: b) }
        _ = try index.search(queries: Array(q.prefix(8 * d)), k: k)   // warm up
        var batched: [[ScoredID]] = []
        var tb = Double.infinity
        for _ in 0..<3 {   // best of three batched passes (as the peer's side does)
            tb = min(tb, try BenchIO.seconds { batched = try index.search(queries: q, k: k) })
        }
        let ns = min(single, nq)
        let ts = try BenchIO.seconds {
            for i in 0..<ns { _ = try index.search(query: Array(q[(i * d)..<((i + 1) * d)]), k: k) }
        }
        if let idsOut {
            let ids = batched.flatMap { $0.map(\.id) }
            try ids.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: idsOut)) }
        }
        let r = Result(engine: "selfspec ExactIndex", n: n, q: nq, batchedQPS: BenchIO.round(Double(nq) / tb, 10),
                       singleQPS: BenchIO.round(Double(ns) / ts, 10), buildSeconds: BenchIO.round(build))
        if json { try Terminal.printJSON(r) } else { print("exact \(n)×\(d): batched \(r.batchedQPS) q/s, single \(r.singleQPS) q/s") }
    }
}

// MARK: - hnsw

struct BenchHNSW: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hnsw",
        abstract: "HNSW build time, and queries/s (one query at a time, one thread) with recall@k against exact search, over efSearch values.")

    @Option(help: "(N, D) float32 base vectors.") var base: String
    @Option(help: "(Q, D) float32 queries.") var queries: String
    @Option(help: "D.") var dimension = 384
    @Option(help: "Results per query.") var k = 10
    @Option(help: "efSearch values, comma-separated.") var ef = "10,16,24,32,48,64,96,128"
    @Flag(help: "Print JSON.") var json = false

    struct Point: Encodable { var ef: Int; var recall: Double; var qps: Double }
    struct Result: Encodable { var engine: String; var n: Int; var q: Int; var buildSeconds: Double; var memoryMB: Double; var points: [Point] }

    func run() throws {
        let d = dimension
        let b = try BenchIO.readVectors(base, dimension: d), q = try BenchIO.readVectors(queries, dimension: d)
        let n = b.count / d, nq = q.count / d
        let ids = (0..<n).map(Int64.init)
        let exact = try ExactIndex(dimension: d)
        try exact.add(ids: ids, vectors: b)
        let truth = try exact.search(queries: q, k: k)
        let hnsw = try HNSWIndex(dimension: d)
        let build = try BenchIO.seconds { try hnsw.add(ids: ids, vectors: b) }
        var points: [Point] = []
        for ef in ef.split(separator: ",").compactMap({ Int($0) }) {
            var found: [[ScoredID]] = []
            let t = try BenchIO.seconds {
                for i in 0..<nq { found.append(try hnsw.search(query: Array(q[(i * d)..<((i + 1) * d)]), k: k, ef: ef)) }
            }
            points.append(Point(ef: ef, recall: BenchIO.round(BenchIO.recall(found, truth: truth), 10000), qps: BenchIO.round(Double(nq) / t, 10)))
        }
        let r = Result(engine: "selfspec HNSWIndex", n: n, q: nq, buildSeconds: BenchIO.round(build),
                       memoryMB: BenchIO.round(Double(hnsw.memoryBytes) / 1_048_576, 10), points: points)
        if json { try Terminal.printJSON(r) } else {
            print("HNSW \(n)×\(d): build \(r.buildSeconds) s, \(r.memoryMB) MB")
            for p in points { print("  ef \(p.ef): recall@\(k) \(p.recall), \(p.qps) q/s") }
        }
    }
}

// MARK: - scale

struct BenchScale: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "How HNSW and exact search grow with N: random unit vectors (fixed seed), build time, memory, queries/s.")

    @Option(help: "Sizes, comma-separated.") var sizes = "10000,100000"
    @Option(help: "D.") var dimension = 384
    @Option(help: "Queries per size.") var queries = 200
    @Option(help: "HNSW efSearch.") var ef = 64
    @Option(help: "Seed of the vectors.") var seed: UInt64 = 42
    @Flag(help: "Print JSON.") var json = false

    struct Row: Encodable {
        var n: Int; var buildSeconds: Double; var hnswMB: Double; var bytesPerVector: Double; var peakRSSMB: Double
        var hnswQPS: Double; var hnswRecall: Double; var exactQPS: Double
    }

    /// Gaussian rows normalised to unit length, from SplitMix64 + Box–Muller.
    static func unitVectors(_ n: Int, _ d: Int, seed: inout UInt64) -> [Float] {
        func next() -> Double {
            seed &+= 0x9E37_79B9_7F4A_7C15
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return (Double((z ^ (z >> 31)) >> 11) + 1) / 9_007_199_254_740_993   // (0, 1]
        }
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

    func run() throws {
        let d = dimension
        var rows: [Row] = []
        for n in sizes.split(separator: ",").compactMap({ Int($0) }) {
            var s = seed
            let base = Self.unitVectors(n, d, seed: &s), q = Self.unitVectors(queries, d, seed: &s)
            let ids = (0..<n).map(Int64.init)
            let hnsw = try HNSWIndex(dimension: d, parameters: .init(efSearch: ef))
            let build = try BenchIO.seconds { try hnsw.add(ids: ids, vectors: base) }
            let exact = try ExactIndex(dimension: d)
            try exact.add(ids: ids, vectors: base)
            var truth: [[ScoredID]] = [], found: [[ScoredID]] = []
            let te = try BenchIO.seconds {
                for i in 0..<queries { truth.append(try exact.search(query: Array(q[(i * d)..<((i + 1) * d)]), k: 10)) }
            }
            let th = try BenchIO.seconds {
                for i in 0..<queries { found.append(try hnsw.search(query: Array(q[(i * d)..<((i + 1) * d)]), k: 10)) }
            }
            let mem = Double(hnsw.memoryBytes)
            rows.append(Row(n: n, buildSeconds: BenchIO.round(build, 100), hnswMB: BenchIO.round(mem / 1_048_576, 10),
                            bytesPerVector: (mem / Double(n)).rounded(), peakRSSMB: BenchIO.peakRSSMB.rounded(),
                            hnswQPS: BenchIO.round(Double(queries) / th, 10), hnswRecall: BenchIO.round(BenchIO.recall(found, truth: truth), 1000),
                            exactQPS: BenchIO.round(Double(queries) / te, 10)))
            if !json { let r = rows.last!; print("N \(n): build \(r.buildSeconds) s, \(r.hnswMB) MB (\(r.bytesPerVector) B/vector), peak RSS \(r.peakRSSMB) MB, HNSW \(r.hnswQPS) q/s (recall@10 \(r.hnswRecall)), exact \(r.exactQPS) q/s") }
        }
        if json { try Terminal.printJSON(rows) }
    }
}
