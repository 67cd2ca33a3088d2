import ArgumentParser
import Benchmarks
import Evaluation
import Foundation
import LLM
import Server
import VectorIndex

// MARK: - eval --rag-qa

extension EvalCommand {
    /// `eval --rag-qa FILE --db CORPUS`: every item through the path of `ask --rag` (``GroundedAsker``),
    /// for the base model and each adapter; prints (and with --report writes) ``RAGQAReport``.
    func runRAGQA(file: String) throws {
        guard let db else { throw ValidationError("--rag-qa needs --db CORPUS (build one with: selfspec eval rag-corpus --items \(file) --out CORPUS)") }
        let items = try RAGQAEvaluation.items(file: file, limit: limit, seed: seed)
        guard FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("no corpus at \(db); build one with: selfspec eval rag-corpus --items \(file) --out \(db)")
        }
        let (retriever, mode) = try retrieval.open(db)
        let missing = try RAGQAEvaluation.missing(items, in: retriever.vectors.corpus)
        if !missing.isEmpty {
            Terminal.note("warning: \(missing.count) of \(items.count) item PMIDs are not in \(db) (they cannot be retrieved; counted in the report)")
        }
        let modelPath = model ?? Self.defaultRAGModel
        let baseFile = try GGUFFile(path: modelPath)
        let tokenizer = try TokenizerFactory.make(metadata: baseFile.metadata)
        let template = try templateOptions.resolve(baseFile)
        let adapters = try adapter.map { try LoRAAdapter(path: $0) }
        let names = ["base"] + adapterNames()
        // The settings of `ask`: its sampling defaults (greedy) and repetition stop, with --max-tokens.
        let settings = try SamplingOptions.parse(["--max-tokens", String(maxTokens ?? 256)]).request([], repetitionByDefault: true)
        var runs: [[RAGQAOutcome]] = [], seconds: [Double] = []
        for m in names.indices {
            let lm = try loadLanguageModel(file: m == 0 ? baseFile : try GGUFFile(path: modelPath), options: try weights.modelOptions(),
                                           adapter: m == 0 ? nil : adapters[m - 1])
            if m == 0 { try checkAdapters(adapters, base: baseFile, config: lm.config) }
            let asker = GroundedAsker(generator: TextGenerator(model: lm, tokenizer: tokenizer), template: template, settings: settings,
                                      retrieval: .init(retriever: retriever, mode: mode, k: k), passageBudget: passageBudget)
            let progress = ProgressLine(enabled: !output.quiet)
            let label = "rag-qa \(names[m])"
            let start = Date()
            do {
                runs.append(try RAGQAEvaluation.run(items, asker: asker) { done, total in
                    progress.update(label: label, fraction: Double(done) / Double(max(total, 1)), count: done, unit: "items")
                    return !interruptRequested.load(ordering: .relaxed)
                })
            } catch is CancellationError {
                progress.finish()
                Terminal.error("interrupted during \(label); no report written")
                throw ExitCode(130)
            }
            progress.finish()
            seconds.append(Date().timeIntervalSince(start))
            if !output.quiet && !output.json {
                Terminal.note(String(format: "%@: %d items in %.0f s", label, items.count, seconds[m]))
            }
        }
        let result = RAGQAReport.build(file: file, db: db, k: k, mode: mode.rawValue, items: items, missingFromCorpus: missing,
                                       names: names, models: names.map { _ in modelPath },
                                       adapters: [nil] + adapter.map { Optional($0) }, runs: runs, seconds: seconds,
                                       resamples: resamples, seed: seed)
        if let report { try writeRAGQA(result, runs: runs, names: names, to: report) }
        if output.json {
            print(String(decoding: try RAGQAReport.encoder().encode(result), as: UTF8.self))
        } else {
            print(result.markdown())
        }
    }

    static let defaultRAGModel = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    /// Writes `report.md`, `report.json` and `predictions.jsonl` (one line per model and item).
    func writeRAGQA(_ result: RAGQAReport, runs: [[RAGQAOutcome]], names: [String], to dir: String) throws {
        let lines = runs.enumerated().flatMap { m, outcomes in outcomes.map { RAGQAPredictionLine(model: names[m], outcome: $0) } }
        try Self.writeReportFolder(dir, markdown: result.markdown(), json: try RAGQAReport.encoder().encode(result), predictions: lines)
    }
}

/// One line of the RAG QA `predictions.jsonl`: the model's name and the outcome's fields.
private struct RAGQAPredictionLine: Encodable {
    var model: String
    var outcome: RAGQAOutcome

    enum Key: String, CodingKey { case model }

    func encode(to encoder: any Encoder) throws {
        try outcome.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(model, forKey: .model)
    }
}

// MARK: - eval rag-corpus

/// `selfspec eval rag-corpus`: the fixture corpus of `eval --rag-qa` (items' abstracts + real distractors).
struct RAGCorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rag-corpus",
        abstract: "Build the corpus for eval --rag-qa: the items' own abstracts plus real distractor articles, embedded and indexed.",
        discussion: """
        Each PubMedQA item becomes a document keyed by its PMID, its CONTEXTS the sections named by \
        LABELS (no title: PubMedQA has none). --count articles with an abstract (items excluded) are \
        chosen from --distractors with a generator seeded by --seed. Both are chunked as `ingest` \
        does, then embedded with MiniLM and indexed (HNSW) as `embed` does, unless --no-embed \
        (BM25 only). Running it again on the same --out is safe: unchanged documents are skipped and \
        only missing vectors are embedded.
        """)

    @Option(name: .long, help: "The PubMedQA JSON whose items' abstracts go in (e.g. corpora/eval/pubmedqa/pqal_dev.json).")
    var items: String
    @Option(name: .long, help: "Evaluate-able subset: the first N items after the seeded shuffle of eval --limit (default: all items).")
    var limit: Int?
    @Option(name: .long, parsing: .upToNextOption, help: "PubMed XML (.xml, .xml.gz), files, folders or globs the distractors are drawn from.")
    var distractors: [String]
    @Option(name: .long, help: "Distractor articles to add.")
    var count = 5000
    @Option(name: .long, help: "Seeds the choice of distractors (and of items with --limit, as eval --seed does).")
    var seed: UInt64 = 0
    @Option(name: .long, help: "The corpus SQLite file to create or add to.")
    var out: String
    @Flag(name: .long, help: "Do not embed (the corpus is searched with BM25 only).")
    var noEmbed = false
    @OptionGroup var model: ModelOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if count < 0 { throw ValidationError("--count must be 0 or more") }
        if let limit, limit < 1 { throw ValidationError("invalid limit \(limit): expected >= 1") }
        if distractors.isEmpty && count > 0 { throw ValidationError("--distractors PATH is needed with --count > 0") }
    }

    func run() throws {
        Terminal.trapInterrupts()
        let records = try RAGQAEvaluation.records(file: items, limit: limit, seed: seed)
        let line = ProgressLine(enabled: !output.quiet)
        let report = try RAGQACorpus.build(
            records: records, itemsFile: items, distractorPaths: distractors, count: count, seed: seed, db: out,
            embedder: noEmbed ? nil : { try model.load() }, shouldStop: { interruptRequested.load(ordering: .relaxed) }
        ) { step, done, total in
            line.update(label: "rag-corpus \(step):", fraction: total > 0 ? Double(done) / Double(total) : nil, count: done,
                        unit: step == "read" ? "articles" : step == "embed" ? "passages" : "vectors")
        }
        line.finish()
        if output.json { try Terminal.printJSON(report) } else {
            print("""
            corpus \(out): \(report.items) item abstracts + \(report.distractors) distractors (of \(report.distractorCandidates) with an abstract) \
            = \(report.documents) documents; \(report.passages) passages written, \(report.embedded) embedded in \(String(format: "%.0f", report.seconds)) s
            """)
        }
        if report.pending > 0 {
            Terminal.error("\(report.pending) passages are not embedded yet (interrupted); run the same command again to finish")
            throw ExitCode(130)
        }
    }
}
