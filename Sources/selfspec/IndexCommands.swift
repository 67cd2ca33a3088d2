import ArgumentParser
import Foundation
import Ingest
import VectorIndex

/// The embedding model folder (set-up puts all-MiniLM-L6-v2 here).
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("embedder"), help: "The sentence-embedding model folder (safetensors + vocab.txt).")
    var embedder: String = "models/all-MiniLM-L6-v2"

    func load() throws -> MiniLMEmbedder {
        guard FileManager.default.fileExists(atPath: embedder) else {
            Terminal.error("no embedding model at \(embedder); run `scripts/setup` (or pass --embedder DIR)")
            throw ExitCode.failure
        }
        return try MiniLMEmbedder(modelDirectory: embedder)
    }
}

/// `--mode` and `--embedder`: how a command searches a corpus (search, ask, specialize).
struct RetrievalOptions: ParsableArguments {
    @Option(help: "dense, bm25 or hybrid (default: hybrid when the corpus is embedded, else bm25).")
    var mode: String?
    @OptionGroup var model: ModelOptions

    func validate() throws {
        if let m = mode, SearchMode(rawValue: m) == nil { throw ValidationError("--mode must be dense, bm25 or hybrid") }
    }

    /// Opens the corpus `db` read-only for search, with the mode to use: BM25 needs no vectors,
    /// an explicit dense or hybrid mode needs them, and the default uses them when there are some.
    func open(_ db: String, index: DenseIndex.Kind = .hnsw, efSearch: Int = 64) throws -> (Retriever, SearchMode) {
        let requested = mode.flatMap(SearchMode.init(rawValue:))
        let dense: DenseSearch = requested == .bm25 ? .off : requested == nil ? .ifEmbedded : .required
        let retriever = try Retriever.open(db: db, embedder: model.load, dense: dense, index: index, efSearch: efSearch)
        return (retriever, requested ?? retriever.defaultMode)
    }
}

// MARK: - embed

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed every passage not yet embedded (MiniLM, in-process) and update the HNSW index.",
        discussion: "Incremental and resumable: vectors are committed batch by batch, so a killed run continues where it stopped.")

    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var model: ModelOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Passages per committed batch.")
    var batch = 256

    @Option(help: "Stop after this many passages (0 = all).")
    var limit = 0

    @Flag(help: "Delete every stored vector and graph first (e.g. after changing the model).")
    var reset = false

    @Flag(help: "Do not build or update the HNSW graph.")
    var noIndex = false

    struct Report: Encodable { var embedded: Int; var seconds: Double; var passagesPerSecond: Double; var vectors: Int; var pending: Int; var indexAdded: Int; var indexRemoved: Int }

    func validate() throws {
        if batch < 1 { throw ValidationError("--batch must be positive") }
        if limit < 0 { throw ValidationError("--limit must be 0 or more") }
    }

    func run() throws {
        Terminal.trapInterrupts()
        let store = try VectorStore(corpus: openExisting(corpus.db))
        if reset { try store.reset() }
        let embedder = try model.load()
        try store.checkCompatible(modelID: embedder.modelID, dimension: embedder.dimension)
        let line = ProgressLine(enabled: !output.quiet)
        let run = try store.embedPending(with: embedder, batchSize: batch, limit: limit > 0 ? limit : nil) { done, planned in
            line.update(label: "embed:", fraction: Double(done) / Double(max(planned, 1)), count: done, unit: "passages")
            return interruptRequested.load(ordering: .relaxed) ? .stop : .more
        }
        line.finish()
        let done = run.embedded, seconds = run.seconds, interrupted = run.stopped
        var added = 0, removed = 0
        if !noIndex && !interrupted {
            let indexLine = ProgressLine(enabled: !output.quiet)
            if let loaded = try DenseIndex.load(store, kind: .hnsw, progress: { d, t in
                indexLine.update(label: "hnsw:", fraction: Double(d) / Double(max(t, 1)), count: d, unit: "vectors")
            }) {
                added = loaded.report.added; removed = loaded.report.removed
            }
            indexLine.finish()
        }
        let r = Report(embedded: done, seconds: (seconds * 100).rounded() / 100, passagesPerSecond: seconds > 0 ? (Double(done) / seconds).rounded() : 0,
                       vectors: try store.count(), pending: try store.pendingCount(), indexAdded: added, indexRemoved: removed)
        if output.json { try Terminal.printJSON(r) } else {
            print("embedded \(r.embedded) passages in \(String(format: "%.1f", seconds)) s (\(Int(r.passagesPerSecond))/s); \(r.vectors) vectors stored, \(r.pending) pending; HNSW +\(added) −\(removed)")
        }
        if interrupted {
            Terminal.error("interrupted; the embedded batches are kept — run the same command again to continue")
            throw ExitCode(130)
        }
    }
}

// MARK: - search

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search the corpus: dense (MiniLM + HNSW), BM25 (SQLite FTS5) or hybrid (reciprocal rank fusion).")

    @Argument(help: "The query, in plain words.")
    var query: String

    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var retrieval: RetrievalOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Number of results.")
    var k = 10

    @Flag(help: "Dense search by exact scan instead of the HNSW graph.")
    var exact = false

    @Option(help: "HNSW search breadth (higher: better recall, slower).")
    var efSearch = 64

    @Option(help: "Only these publication years, e.g. 2015-2020 or 2019.")
    var years: String?

    @Option(help: "Only this journal (title or ISO abbreviation).")
    var journal: String?

    @Option(help: "Only documents with this MeSH descriptor.")
    var mesh: String?

    func validate() throws {
        if k < 1 || k > 1000 { throw ValidationError("--k must be in 1...1000") }
        if let y = years, Search.parseYears(y) == nil { throw ValidationError("--years must look like 2015-2020 or 2019") }
    }

    static func parseYears(_ s: String) -> ClosedRange<Int>? {
        let parts = s.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        if parts.count == 1, let a = parts[0] { return a...a }
        if parts.count == 2, let a = parts[0], let b = parts[1], a <= b { return a...b }
        return nil
    }

    func run() throws {
        let (retriever, chosen) = try retrieval.open(corpus.db, index: exact ? .exact : .hnsw, efSearch: efSearch)
        let filter = SearchFilter(years: years.flatMap(Search.parseYears), journal: journal, mesh: mesh)
        let hits = try retriever.search(query, k: k, mode: chosen, filter: filter)
        if output.json { try Terminal.printJSON(hits); return }
        if hits.isEmpty { print("no results for \"\(query)\" (\(chosen.rawValue))"); return }
        print("\(chosen.rawValue) search: \(hits.count) result(s)")
        for h in hits {
            let snippet = h.text.count > 220 ? String(h.text.prefix(220)) + "…" : h.text
            let source = [h.journal, h.year.map(String.init)].compactMap { $0 }.joined(separator: " ")
            print("\(h.rank). [\(String(format: "%.4f", h.score))] \(h.pmid.map { "PMID \($0)" } ?? h.documentKey) · \(h.section)\(source.isEmpty ? "" : " · " + source)\n   \(h.title)\n   \(snippet)")
        }
    }
}
