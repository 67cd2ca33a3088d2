import ArgumentParser
import Benchmarks
import Foundation
import Ingest
import LLM
import VectorIndex

/// Benchmarks that the scripts in Benchmarks/ run beside their peers (see BENCHMARKS.md); the
/// measurements are in the `Benchmarks` library, these commands parse and print.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure SelfSpec's engines (the scripts in Benchmarks/ compare them with their peers).",
        subcommands: [BenchParse.self, BenchEmbed.self, BenchExact.self, BenchHNSW.self, BenchScale.self, BenchPubMedQA.self, BenchLLM.self])
}

// MARK: - parse

struct BenchParse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Parse a PubMed file without storing anything (the reader alone), and report articles/s and peak RSS.")

    @Argument(help: "A PubMed/MEDLINE .xml or .xml.gz file.") var file: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let r = try PubMedParseBenchmark.run(file: file)
        if json { try Terminal.printJSON(r) } else {
            print("\(r.articles) articles in \(String(format: "%.2f", r.seconds)) s = \(Int(r.articlesPerSecond)) articles/s, peak RSS \(Int(r.peakRSSMB)) MB")
        }
    }
}

// MARK: - embed

// Retrieval benchmarks, run by Benchmarks/retrieval.sh beside Benchmarks/retrieval_peer.py on the
// same inputs. Vector files are raw little-endian float32, row-major (N, D) (see `VectorFile`).

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

    func run() throws {
        let texts = try EmbedBenchmark.passageTexts(corpus: openExisting(db), source: source, count: count)
        let embedder = try model.load()
        if let textsOut { try EmbedBenchmark.writeTexts(texts, to: textsOut) }
        let (r, vectors) = try EmbedBenchmark.run(texts: texts, embedder: embedder)
        if let vectorsOut { try VectorFile.write(vectors.flatMap { $0 }, to: vectorsOut) }
        if json { try Terminal.printJSON(r) } else { print("\(r.passages) passages (\(r.tokensMean) tokens avg) in \(r.seconds) s = \(r.passagesPerSecond)/s") }
    }
}

// MARK: - exact

struct BenchExact: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exact",
        abstract: "Exact (sgemm) search queries/s, batched and one query at a time.")

    @OptionGroup var files: SearchBenchOptions
    @Option(help: "Queries for the one-at-a-time measurement (from the start of the file).") var single = 200
    @Option(help: "Write the batched top-k ids here (int64, (Q, k)) to check against the peer.") var idsOut: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let (r, ids) = try ExactSearchBenchmark.run(base: files.base(), queries: files.queries(), dimension: files.dimension,
                                                    k: files.k, single: single)
        if let idsOut { try VectorFile.write(ids, to: idsOut) }
        if json { try Terminal.printJSON(r) } else { print("exact \(r.n)×\(files.dimension): batched \(r.batchedQPS) q/s, single \(r.singleQPS) q/s") }
    }
}

/// The vector files and result count of `bench exact` and `bench hnsw`.
struct SearchBenchOptions: ParsableArguments {
    @Option(name: .customLong("base"), help: "(N, D) float32 base vectors.") var basePath: String
    @Option(name: .customLong("queries"), help: "(Q, D) float32 queries.") var queriesPath: String
    @Option(help: "D.") var dimension = 384
    @Option(help: "Results per query.") var k = 10

    func base() throws -> [Float] { try VectorFile.read(basePath, dimension: dimension) }
    func queries() throws -> [Float] { try VectorFile.read(queriesPath, dimension: dimension) }
}

// MARK: - hnsw

struct BenchHNSW: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hnsw",
        abstract: "HNSW build time, and queries/s (one query at a time, one thread) with recall@k against exact search, over efSearch values.")

    @OptionGroup var files: SearchBenchOptions
    @Option(help: "efSearch values, comma-separated.") var ef = "10,16,24,32,48,64,96,128"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let r = try HNSWBenchmark.run(base: files.base(), queries: files.queries(), dimension: files.dimension, k: files.k,
                                      efValues: ef.split(separator: ",").compactMap { Int($0) })
        if json { try Terminal.printJSON(r) } else {
            print("HNSW \(r.n)×\(files.dimension): build \(r.buildSeconds) s, \(r.memoryMB) MB")
            for p in r.points { print("  ef \(p.ef): recall@\(files.k) \(p.recall), \(p.qps) q/s") }
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

    func run() throws {
        let rows = try ScaleBenchmark.run(sizes: sizes.split(separator: ",").compactMap { Int($0) }, dimension: dimension,
                                          queries: queries, ef: ef, seed: seed) { r in
            if !json { print("N \(r.n): build \(r.buildSeconds) s, \(r.hnswMB) MB (\(r.bytesPerVector) B/vector), peak RSS \(r.peakRSSMB) MB, HNSW \(r.hnswQPS) q/s (recall@10 \(r.hnswRecall)), exact \(r.exactQPS) q/s") }
        }
        if json { try Terminal.printJSON(rows) }
    }
}

// MARK: - pubmedqa

struct BenchPubMedQA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubmedqa",
        abstract: "Recall@1, recall@k and MRR@k of each PubMedQA question's own PMID, for bm25, dense and hybrid search.",
        discussion: """
        The corpus must contain the questions' abstracts (see Benchmarks/retrieval.sh). With \
        --embedded-only the evaluation runs on a temporary copy without the documents that still \
        have unembedded passages, so all three modes search the same documents.
        """)

    @Option(help: "The corpus SQLite file.") var db: String
    @Option(help: "pqal JSON: {PMID: {QUESTION: ...}}.") var questions: String
    @Option(help: "Cut-off of recall@k and MRR@k.") var k = 10
    @Option(help: "all, even or odd: the questions whose PMID has that parity (tune on one, report the other).") var split = "all"
    @Option(help: "Weight of the dense ranking in hybrid fusion (BM25 weight 1).") var denseWeight = 1.0
    @Flag(help: "Evaluate on a copy holding only fully embedded documents.") var embeddedOnly = false
    @Flag(help: "Dense search by exact scan instead of HNSW.") var exact = false
    @OptionGroup var model: ModelOptions
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if PubMedQARetrievalBenchmark.Split(rawValue: split) == nil { throw ValidationError("--split must be all, even or odd") }
        if k < 1 { throw ValidationError("--k must be positive") }
    }

    func run() throws {
        let split = PubMedQARetrievalBenchmark.Split(rawValue: split)!
        let items = try PubMedQARetrievalBenchmark.questions(file: questions, split: split)
        let result = try PubMedQARetrievalBenchmark.run(db: db, questions: items, split: split, k: k, denseWeight: denseWeight,
                                                        embeddedOnly: embeddedOnly, index: exact ? .exact : .hnsw, embedder: model.load)
        if json { try Terminal.printJSON(result); return }
        print("PubMedQA \(split.rawValue): \(result.questions) questions over \(result.documents) documents / \(result.passages) passages, dense weight \(denseWeight)")
        print("| mode | recall@1 | recall@\(k) | MRR@\(k) |\n|---|---|---|---|")
        for s in result.scores { print("| \(s.mode) | \(s.recallAt1) | \(s.recallAtK) | \(s.mrr) |") }
    }
}

// MARK: - llm

/// `selfspec bench llm` (run by `Benchmarks/llm.sh` beside llama.cpp).
struct BenchLLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llm",
        abstract: "Measure prefill, single-stream decode and batched generation tokens/s of a GGUF model.")

    @OptionGroup var modelOptions: GGUFModelOptions
    @Option(help: "Prompt tokens for the prefill measurement.") var promptTokens = 512
    @Option(help: "Tokens generated for the single-stream decode measurement.") var decodeTokens = 128
    @Option(help: "Runs of the prefill and decode measurements; the fastest counts (as in Benchmarks/llamacpp_peer.py).") var repeats = 3
    @Option(help: "Sequences of the batched measurement (0 skips it).") var batch = 32
    @Option(help: "New tokens per sequence of the batched measurement.") var batchTokens = 128
    @Option(help: "Memory check: sequences of --memory-tokens positions in flight at once (0 skips it).") var memorySequences = 32
    @Option(help: "Memory check: positions per sequence.") var memoryTokens = 1024
    @Flag(help: "No float32 weight copies (540 MB less for SmolLM2): batched steps through the integer kernels.") var compactWeights = false
    @Flag(help: "Decode through the float quantized kernels (float32 rounding only; slower) instead of the int16-activation ones.") var floatDecode = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if compactWeights && modelOptions.weights.bf16 {
            throw ValidationError("--bf16 packs the weight copies that --compact-weights leaves out; pass one of them")
        }
    }

    func run() throws {
        let file = try GGUFFile(path: modelOptions.model), tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let options = try modelOptions.weights.modelOptions(LlamaModel.Options(
            denseWeights: !compactWeights, integerKernelMinRows: floatDecode ? 5 : LlamaModel.Options.defaultIntegerKernelMinRows))
        let r = try LLMBenchmark.run(model: loadLanguageModel(file: file, options: options), tokenizer: tokenizer,
                                     promptTokens: promptTokens, decodeTokens: decodeTokens, repeats: repeats, batch: batch,
                                     batchTokens: batchTokens, memorySequences: memorySequences, memoryTokens: memoryTokens)
        if json { try Terminal.printJSON(r) } else {
            print("prefill \(r.prefillTokens) tokens: \(r.prefillTokensPerSecond) tok/s, \(r.prefillCPUMsPerToken) CPU ms/token")
            print("decode \(r.decodeTokens) tokens: \(r.decodeTokensPerSecond) tok/s, \(r.decodeCPUMsPerToken) CPU ms/token")
            print("batched \(batch) x \(batchTokens): \(r.batchTokensPerSecond) tok/s aggregate, \(r.batchCPUMsPerToken) CPU ms/token")
            print("peak RSS \(Int(r.peakRSSMB)) MB")
            if memorySequences > 0 {
                print("\(memorySequences) sequences x \(memoryTokens) positions in flight: peak RSS \(Int(r.memoryPeakRSSMB)) MB")
            }
        }
    }
}
