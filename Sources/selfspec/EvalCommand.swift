import ArgumentParser
import Evaluation
import Foundation
import LLM

/// `selfspec eval`: the base model and each adapter on the same benchmark items, with
/// bootstrap intervals and paired tests.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score the base model and each LoRA adapter side by side on biomedical benchmarks.",
        discussion: """
        Tasks: pubmedqa (yes/no/maybe; accuracy, macro-F1), mcq (lettered options; accuracy), \
        ner (IOB file; entity-level exact-span P/R/F1), gad (gene-disease relation; F1 of the positive \
        class). Label tasks are scored under four conventions from one prefill per item: labels (the \
        exact label text's log-probability), surface (summed over the label's surface forms), \
        calibrated (divided by the label probabilities after a content-free input) and generate (the \
        greedy answer parsed into a label); NER answers are generated greedily and parsed into token \
        spans. Every model sees the same items and prompts; 95% bootstrap intervals and paired tests \
        (exact McNemar for accuracy, paired bootstrap for F1) compare each adapter with the base under \
        every convention, and a gain significant under two conventions is marked robust.

        --rag-qa FILE --db CORPUS instead puts each PubMedQA item's question through the path of \
        `ask --rag` (same retrieval, prompt, generation settings, repetition stop, citation and \
        figure checks) and reports retrieval recall@k of the gold PMID, citation precision and \
        recall, correctness of the yes/no/maybe the answer commits to, unsupported figures, loops, \
        ROUGE-L to the long answer, latency and tokens/s, with bootstrap intervals and paired tests \
        of each adapter against the base. With --build-corpus it builds that corpus instead: the \
        items' own abstracts plus --count real distractor articles from --distractors, embedded \
        and indexed.
        """)

    @Option(name: .long, help: "The base GGUF model file, or a model name: smollm2, gemma3, qwen2.5 (--rag-qa: smollm2 by default).")
    var model: String?
    @Option(name: .long, help: "A LoRA adapter (GGUF file, PEFT folder, or the name of one under adapters/) to evaluate beside the base (repeatable).")
    var adapter: [String] = []
    @Option(name: .long, help: "Comma-separated tasks: pubmedqa, mcq, ner, gad (default: every task given a file).")
    var tasks: String?
    @Option(name: .long, help: "PubMedQA JSON (keyed by PMID).")
    var pubmedqa: String?
    @Option(name: .long, help: "Multiple-choice JSON / JSON list / JSONL of {question, options, answer}.")
    var mcq: String?
    @Option(name: .long, help: "IOB NER file (token<TAB>tag), or a folder (its devel.tsv).")
    var ner: String?
    @Option(name: .long, help: "GAD-style JSONL.")
    var gad: String?
    @Option(name: .long, help: "Demonstrations for k-shot prompts: TASK=FILE (repeatable), or FILE when one task is evaluated; a NER folder means its train.tsv.")
    var demos: [String] = []
    @Option(name: .long, help: "Demonstrations per prompt (needs --demos when > 0).")
    var shots = 0
    @Option(name: .long, help: "Seeds the item sample, the demonstrations and the bootstrap.")
    var seed: UInt64 = 0
    @Option(name: .long, help: "Evaluate the first N items of each task after a seeded shuffle.")
    var limit: Int?
    @Option(name: .long, help: "Drop the first N items of the seeded order (before --limit): --skip 200 gives items apart from --limit 200's, to choose settings on.")
    var skip = 0
    @Option(name: .long, help: "Items prefilled per scoring step.")
    var batch = 8
    @Option(name: .long, help: "Sentences decoded together for NER.")
    var generationBatch = 16
    @Option(name: .long, help: "Most tokens of a generated NER answer (default 64), or of a --rag-qa answer (default 256, as ask).")
    var maxTokens: Int?
    @Option(name: .long, help: "Bootstrap resamples.")
    var resamples = Statistics.defaultResamples
    @Option(name: .long, help: "Write report.md, report.json and predictions.jsonl into this folder.")
    var report: String?
    @Option(name: .customLong("rag-qa"), help: "PubMedQA JSON: answer each question as ask --rag does and score the answers (needs --db).")
    var ragQA: String?
    @Option(name: .long, help: "The corpus searched with --rag-qa (made by --build-corpus), or built with --build-corpus.")
    var db: String?
    @Option(name: .long, help: "Passages retrieved per question with --rag-qa (ask's default).")
    var k = 3
    @Option(name: .long, help: "The most tokens the passages may take in a --rag-qa prompt (ask's default).")
    var passageBudget = 512
    @Option(name: .long, help: "With --rag-qa: passage or document, as ask --context (default: ask's).")
    var context = PromptContext.passage
    @Option(name: .long, help: "With --rag-qa: repetition penalty on the last 64 tokens (default 1: off, as ask).")
    var repeatPenalty: Float?
    @Option(name: .long, help: "With --rag-qa: the DRY multiplier (default: ask's).")
    var dryMultiplier: Float?
    @Option(name: .long, help: "With --rag-qa: the instructions of the system turn instead of ask's (as ask --instructions).")
    var instructions: String?
    @Option(name: .long, help: "With --rag-qa: how each answer starts, as ask --verdict (off, model, calibrated); every item is taken as a yes/no question.")
    var verdict = VerdictOption.off
    @OptionGroup var retrieval: RetrievalOptions
    @Flag(name: .long, help: "With --rag-qa: build (or complete) the corpus --db from the items and --distractors, then stop.")
    var buildCorpus = false
    @Option(name: .long, parsing: .upToNextOption, help: "With --build-corpus: PubMed XML files, folders or globs the distractors are drawn from.")
    var distractors: [String] = []
    @Option(name: .long, help: "With --build-corpus: distractor articles to add (a seeded choice, --seed).")
    var count = 5000
    @Flag(name: .long, help: "With --build-corpus: do not embed (the corpus is searched with BM25 only).")
    var noEmbed = false
    @Flag(name: .long, help: "With --build-corpus: the items' abstracts without their conclusions (PubMedQA's CONTEXTS only, its reasoning-required setting).")
    var withoutConclusions = false
    @OptionGroup var weights: WeightFormatOptions
    @OptionGroup var templateOptions: TemplateOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if shots < 0 { throw ValidationError("invalid shots \(shots): expected >= 0") }
        if let limit, limit < 1 { throw ValidationError("invalid limit \(limit): expected >= 1") }
        if skip < 0 { throw ValidationError("invalid skip \(skip): expected >= 0") }
        if batch < 1 || generationBatch < 1 { throw ValidationError("--batch and --generation-batch must be >= 1") }
        if let maxTokens, maxTokens < 1 { throw ValidationError("invalid max-tokens \(maxTokens): expected >= 1") }
        if let ragQA {
            if db == nil { throw ValidationError("--rag-qa needs --db CORPUS (build one with: selfspec eval --rag-qa \(ragQA) --db CORPUS --build-corpus --distractors PUBMED.xml.gz)") }
            if tasks != nil || pubmedqa != nil || mcq != nil || ner != nil || gad != nil || shots > 0 {
                throw ValidationError("--rag-qa runs alone: drop --tasks, --pubmedqa, --mcq, --ner, --gad and --shots")
            }
            if k < 1 || k > 50 { throw ValidationError("--k must be in 1...50") }
            if passageBudget < 32 { throw ValidationError("--passage-budget must be at least 32 tokens") }
            if let repeatPenalty, !(repeatPenalty > 0 && repeatPenalty.isFinite) { throw ValidationError("--repeat-penalty must be > 0") }
            if let dryMultiplier, !(dryMultiplier >= 0 && dryMultiplier.isFinite) { throw ValidationError("--dry-multiplier must be >= 0") }
            if let instructions, instructions.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw ValidationError("--instructions is empty")
            }
            if count < 0 { throw ValidationError("--count must be 0 or more") }
            if withoutConclusions && !buildCorpus { throw ValidationError("--without-conclusions goes with --build-corpus") }
            if buildCorpus && distractors.isEmpty && count > 0 { throw ValidationError("--build-corpus needs --distractors PATH (or --count 0)") }
        } else if buildCorpus || !distractors.isEmpty || withoutConclusions {
            throw ValidationError("--build-corpus, --distractors and --without-conclusions go with --rag-qa FILE --db CORPUS")
        } else if db != nil {
            throw ValidationError("--db is used with --rag-qa only")
        } else if repeatPenalty != nil || dryMultiplier != nil || instructions != nil || context != .passage || verdict != .off {
            throw ValidationError("--repeat-penalty, --dry-multiplier, --instructions, --context and --verdict are used with --rag-qa only")
        }
        if resamples < 1 { throw ValidationError("invalid resamples \(resamples): expected >= 1") }
    }

    // MARK: Inputs

    /// The tasks to run with their files, in the order given.
    func selectedTasks() throws -> [(EvalTask, String)] {
        let files: [EvalTask: String?] = [.pubmedqa: pubmedqa, .mcq: mcq, .ner: ner, .gad: gad]
        let names = tasks.map { $0.split(separator: ",").map(String.init) }
            ?? EvalTask.allCases.filter { files[$0]! != nil }.map(\.rawValue)
        if names.isEmpty { throw ValidationError("no task: give --pubmedqa, --mcq, --ner or --gad FILE (and optionally --tasks)") }
        var out: [(EvalTask, String)] = []
        for name in names {
            let task = try EvalTask(name: name)
            guard let file = files[task]! else { throw ValidationError("task \(task.rawValue) needs --\(task.rawValue) FILE") }
            if !out.contains(where: { $0.0 == task }) { out.append((task, EvalDataLoader.resolve(file, task: task, split: "devel.tsv"))) }
        }
        return out
    }

    /// Demonstration files by task.
    func demoFiles(for selected: [EvalTask]) throws -> [EvalTask: String] {
        var out: [EvalTask: String] = [:]
        for spec in demos {
            if let eq = spec.firstIndex(of: "="), let task = try? EvalTask(name: String(spec[..<eq])) {
                out[task] = EvalDataLoader.resolve(String(spec[spec.index(after: eq)...]), task: task, split: "train.tsv")
            } else if spec.contains("="), !FileManager.default.fileExists(atPath: spec) {
                _ = try EvalTask(name: String(spec[..<spec.firstIndex(of: "=")!]))  // names the unknown task
            } else if selected.count == 1 {
                out[selected[0]] = EvalDataLoader.resolve(spec, task: selected[0], split: "train.tsv")
            } else {
                throw ValidationError("--demos \(spec): with several tasks, write TASK=FILE")
            }
        }
        return out
    }

    /// Report names of the adapters: their file or folder names, made unique.
    func adapterNames() -> [String] {
        var names: [String] = []
        for path in adapter {
            var name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            if ["adapter", "peft", "adapter_model"].contains(name) {
                let parent = URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent
                name = parent.isEmpty ? name : "\(parent)/\(name)"
            }
            var unique = name, k = 2
            while names.contains(unique) || unique == "base" { unique = "\(name)-\(k)"; k += 1 }
            names.append(unique)
        }
        return names
    }

    // MARK: Run

    mutating func run() throws {
        Terminal.trapInterrupts()
        // Names (qwen2.5, an adapter under adapters/) become paths once, before anything reads them.
        model = try model.map(ModelNames.model)
        adapter = try adapter.map(ModelNames.adapter)
        if let ragQA { return try buildCorpus ? buildRAGCorpus(file: ragQA) : runRAGQA(file: ragQA) }
        guard let model else { throw ValidationError("missing --model FILE.gguf (or a model name: smollm2, gemma3, qwen2.5)") }
        let selected = try selectedTasks()
        let demoPaths = try demoFiles(for: selected.map(\.0))
        // Every file is read and checked before any model is loaded.
        var datasets: [TaskDataset] = [], pools: [TaskDataset?] = []
        for (task, file) in selected {
            let full = try EvalDataLoader.load(task: task, path: file)
            var pool: TaskDataset?
            if let path = demoPaths[task] {
                pool = try DemonstrationPool.candidates(try EvalDataLoader.load(task: task, path: path), excluding: full)
            }
            if shots > 0 {
                guard let pool else { throw EvaluationError.missingDemonstrations(task: task.rawValue, shots: shots) }
                if pool.count < shots {
                    throw EvaluationError.tooFewDemonstrations(file: pool.file, task: task.rawValue, available: pool.count, shots: shots)
                }
            }
            datasets.append(full.sample(limit: limit, seed: seed, skip: skip))
            pools.append(pool)
        }
        let baseFile = try GGUFFile(path: model)
        let tokenizer = try TokenizerFactory.make(metadata: baseFile.metadata)
        let template = try templateOptions.resolve(baseFile)
        let adapters = try adapter.map { try LoRAAdapter(path: $0) }
        let names = ["base"] + adapterNames()
        // An adapter of another base model is refused before anything runs (shapes are checked at load).
        let modelOptions = try weights.modelOptions()
        var baseModel: (any CausalLanguageModel)? = try loadLanguageModel(file: baseFile, options: modelOptions)
        try checkAdapters(adapters, base: baseFile, config: baseModel!.config)
        let settings = EvalSettings(shots: shots, seed: seed, scoringBatch: batch, generationBatch: generationBatch,
                                    maxAnswerTokens: maxTokens ?? 64)

        var runs: [[TaskRun]] = []
        for m in names.indices {
            // One model in memory at a time: the base is released once its tasks are done.
            let lm = try m == 0 ? baseModel! : loadLanguageModel(file: try GGUFFile(path: model), options: modelOptions, adapter: adapters[m - 1])
            baseModel = nil
            let evaluator = Evaluator(model: lm, tokenizer: tokenizer, template: template, settings: settings)
            var modelRuns: [TaskRun] = []
            for (t, dataset) in datasets.enumerated() {
                let progress = ProgressLine(enabled: !output.quiet)
                let label = "eval \(names[m]) \(dataset.task.rawValue)"
                do {
                    let run = try evaluator.run(dataset, demos: pools[t]) { done, total in
                        progress.update(label: label, fraction: Double(done) / Double(max(1, total)), count: done, unit: "items")
                        return !interruptRequested.load(ordering: .relaxed)
                    }
                    progress.finish()
                    modelRuns.append(run)
                    if !output.quiet && !output.json {
                        Terminal.note(String(format: "%@: %d items in %.1f s (%.2f items/s)", label, run.outcomes.count,
                                             run.seconds, run.itemsPerSecond))
                    }
                } catch is CancellationError {
                    progress.finish()
                    Terminal.error("interrupted during \(label); no report written")
                    throw ExitCode(130)
                }
            }
            runs.append(modelRuns)
        }

        let infos = names.indices.map { m in
            EvalReport.ModelInfo(name: names[m], model: model, adapter: m == 0 ? nil : adapter[m - 1],
                                 promptFormat: template.family.rawValue)
        }
        let result = EvalReport.build(models: infos, datasets: datasets, runs: runs, settings: settings, limit: limit, skip: skip,
                                      resamples: resamples)
        if let report { try write(result, runs: runs, names: names, to: report) }
        if output.json {
            print(String(decoding: try EvalReport.encoder().encode(result), as: UTF8.self))
        } else {
            print(result.markdown())
        }
    }

    /// Refuses an adapter trained on another base model (before anything runs).
    func checkAdapters(_ adapters: [LoRAAdapter], base: GGUFFile, config: ModelConfig) throws {
        let identity = LoRAAdapter.BaseModel(file: base, config: config)
        for a in adapters {
            if let trained = a.base, !trained.isCompatible(with: identity) {
                throw AdapterError.wrongBaseModel(path: a.path, adapterBase: trained.description,
                                                  model: "\(base.path): \(identity.description)")
            }
        }
    }

    /// Writes `report.md`, `report.json` and `predictions.jsonl` (one line per model, task and item).
    func write(_ result: EvalReport, runs: [[TaskRun]], names: [String], to dir: String) throws {
        var lines: [PredictionLine] = []
        for (m, modelRuns) in runs.enumerated() {
            for run in modelRuns {
                for p in run.predictions {
                    lines.append(PredictionLine(model: names[m], task: run.task.rawValue, id: p.id, gold: p.gold, predicted: p.predicted,
                                                byScoring: p.byScoring, scores: p.scores, answer: p.answer))
                }
            }
        }
        try Self.writeReportFolder(dir, markdown: result.markdown(), json: try EvalReport.encoder().encode(result), predictions: lines)
    }

    /// Writes `DIR/report.md`, `DIR/report.json` and `DIR/predictions.jsonl` (one JSON line per prediction).
    static func writeReportFolder(_ dir: String, markdown: String, json: Data, predictions: [some Encodable]) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let url = URL(fileURLWithPath: dir)
        try Data(markdown.utf8).write(to: url.appendingPathComponent("report.md"))
        try json.write(to: url.appendingPathComponent("report.json"))
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var lines = Data()
        for p in predictions { lines += try enc.encode(p) + Data("\n".utf8) }
        try lines.write(to: url.appendingPathComponent("predictions.jsonl"))
    }
}

/// One line of `predictions.jsonl`.
private struct PredictionLine: Encodable {
    var model: String
    var task: String
    var id: String
    var gold: String
    var predicted: String
    var byScoring: [String: String]?
    var scores: [Double]?
    var answer: String?

    enum CodingKeys: String, CodingKey {
        case model, task, id, gold, predicted, scores, answer
        case byScoring = "by_scoring"
    }
}
