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
        guard let db else { throw ValidationError("--rag-qa needs --db CORPUS (build one with: selfspec eval --rag-qa \(file) --db CORPUS --build-corpus --distractors PUBMED.xml.gz)") }
        let items = try RAGQAEvaluation.items(file: file, limit: limit, seed: seed, skip: skip)
        guard FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("no corpus at \(db); build one with: selfspec eval --rag-qa \(file) --db \(db) --build-corpus --distractors PUBMED.xml.gz")
        }
        let (retriever, mode) = try retrieval.open(db)
        let missing = try RAGQAEvaluation.missing(items, in: retriever.vectors.corpus)
        if !missing.isEmpty {
            Terminal.note("warning: \(missing.count) of \(items.count) item PMIDs are not in \(db) (they cannot be retrieved; counted in the report)")
        }
        let modelPath = try ModelNames.model(model ?? Self.defaultRAGModel)
        let baseFile = try GGUFFile(path: modelPath)
        let tokenizer = try TokenizerFactory.make(metadata: baseFile.metadata)
        let template = try templateOptions.resolve(baseFile)
        let adapters = try adapter.map { try LoRAAdapter(path: $0) }
        let names = ["base"] + adapterNames()
        // The settings of `ask`: its sampling defaults (greedy) and repetition stop, with --max-tokens.
        let settings = try SamplingOptions.parse(["--max-tokens", String(maxTokens ?? 256)]
            + (repeatPenalty.map { ["--repeat-penalty", String($0)] } ?? [])
            + (dryMultiplier.map { ["--dry-multiplier", String($0)] } ?? [])).request([], repetitionByDefault: true)
        // With --report, every answer is saved as it is scored: the same command continues an interrupted run.
        let runSettings = "items \(file) limit \(limit.map(String.init) ?? "all") seed \(seed)\(skip > 0 ? " skip \(skip)" : ""); db \(db) k \(k) mode \(mode.rawValue); "
            + "model \(modelPath) adapters \(adapter.joined(separator: ",")); max tokens \(maxTokens ?? 256) passage budget \(passageBudget)"
            + (repeatPenalty.map { " repeat penalty \($0)" } ?? "")
            + (settings.sampling.dryMultiplier > 0 ? " dry \(settings.sampling.dryMultiplier)" : "")
            + (instructions.map { " instructions \($0)" } ?? "") + (context == .passage ? "" : " context \(context.rawValue)")
            + (verdict == .off ? "" : " verdict \(verdict.rawValue)")
        let checkpoint = try report.map { try RAGQACheckpoint(reportDirectory: $0, settings: runSettings) }
        var runs: [[RAGQAOutcome]] = [], seconds: [Double] = []
        for m in names.indices {
            let saved = try checkpoint?.saved(model: names[m]) ?? []
            if saved.count == items.count {
                runs.append(saved)
                seconds.append(saved.reduce(0) { $0 + $1.seconds })
                continue
            }
            let lm = try loadLanguageModel(file: m == 0 ? baseFile : try GGUFFile(path: modelPath), options: try weights.modelOptions(),
                                           adapter: m == 0 ? nil : adapters[m - 1])
            if m == 0 { try checkAdapters(adapters, base: baseFile, config: lm.config) }
            let generator = TextGenerator(model: lm, tokenizer: tokenizer)
            let instructions = instructions ?? GroundedQuestion.instructions
            let verdict = try self.verdict.make(questions: .all, generator: generator, template: template, instructions: instructions)
            if let verdict, verdict.mode == .calibrated, !output.quiet, !output.json {
                Terminal.note("rag-qa \(names[m]): content-free probabilities of yes / no / maybe: "
                    + verdict.priors.map { String(format: "%.3f", exp($0)) }.joined(separator: " / "))
            }
            let asker = GroundedAsker(generator: generator, template: template, settings: settings,
                                      retrieval: .init(retriever: retriever, mode: mode, k: k, wholeDocuments: context == .document), passageBudget: passageBudget,
                                      instructions: instructions, verdict: verdict)
            let progress = ProgressLine(enabled: !output.quiet)
            let label = "rag-qa \(names[m])"
            let start = Date()
            do {
                if !saved.isEmpty && !output.quiet { Terminal.note("\(label): continuing after \(saved.count) saved answers") }
                runs.append(try RAGQAEvaluation.run(items, asker: asker, done: saved, finished: { try checkpoint?.append($0, model: names[m]) }) { done, total in
                    progress.update(label: label, fraction: Double(done) / Double(max(total, 1)), count: done, unit: "items")
                    return !interruptRequested.load(ordering: .relaxed)
                })
            } catch is CancellationError {
                progress.finish()
                Terminal.error("interrupted during \(label); " + (report != nil ? "the answers so far are saved — run the same command to continue" : "no report written (with --report, answers are saved and a rerun continues)"))
                throw ExitCode(130)
            }
            progress.finish()
            seconds.append(Date().timeIntervalSince(start) + saved.reduce(0) { $0 + $1.seconds })
            if !output.quiet && !output.json {
                Terminal.note(String(format: "%@: %d items in %.0f s", label, items.count, seconds[m]))
            }
        }
        let result = RAGQAReport.build(file: file, db: db, k: k, mode: mode.rawValue, items: items, missingFromCorpus: missing,
                                       names: names, models: names.map { _ in modelPath },
                                       adapters: [nil] + adapter.map { Optional($0) }, runs: runs, seconds: seconds,
                                       resamples: resamples, seed: seed, settings: runSettings)
        if let report {
            try writeRAGQA(result, runs: runs, names: names, to: report)
            checkpoint?.remove()
        }
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

// MARK: - eval --rag-qa --build-corpus

extension EvalCommand {
    /// `eval --rag-qa FILE --db CORPUS --build-corpus --distractors PATH…`: the fixture corpus of
    /// `--rag-qa` (``RAGQACorpus``): the items' own abstracts (the same --limit/--seed subset) plus
    /// --count real distractors, chunked as `ingest` does, embedded and indexed as `embed` does.
    func buildRAGCorpus(file: String) throws {
        guard let db else { throw ValidationError("--build-corpus needs --db CORPUS (the file to create)") }
        let records = try RAGQAEvaluation.records(file: file, limit: limit, seed: seed, skip: skip)
        let line = ProgressLine(enabled: !output.quiet)
        let report = try RAGQACorpus.build(
            records: records, itemsFile: file, distractorPaths: distractors, count: count, seed: seed, db: db,
            embedder: noEmbed ? nil : { try retrieval.model.load() }, conclusions: !withoutConclusions, shouldStop: { interruptRequested.load(ordering: .relaxed) }
        ) { step, done, total in
            line.update(label: "rag corpus \(step):", fraction: total > 0 ? Double(done) / Double(total) : nil, count: done,
                        unit: step == "read" ? "articles" : step == "embed" ? "passages" : "vectors")
        }
        line.finish()
        if output.json { try Terminal.printJSON(report) } else {
            print("""
            corpus \(db): \(report.items) item abstracts (\(report.conclusions ? "with" : "without") their conclusions) + \(report.distractors) distractors (of \(report.distractorCandidates) with an abstract) \
            = \(report.documents) documents; \(report.passages) passages written, \(report.embedded) embedded in \(String(format: "%.0f", report.seconds)) s
            """)
        }
        if report.pending > 0 {
            Terminal.error("\(report.pending) passages are not embedded yet (interrupted); run the same command again to finish")
            throw ExitCode(130)
        }
    }
}
