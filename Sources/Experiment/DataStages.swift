import Foundation
import Generator
import Ingest
import LLM
import Tensor
import VectorIndex

// The data recipes (mine, generate, backtranslate, dataset) and the curate stage. Every recipe writes
// runs/NAME/data/RECIPE.jsonl (one `ExampleLine` a line, the format `selfspec tune` reads) and
// RECIPE.stats.json; curate writes curate/ADAPTER.jsonl and its counts per recipe and filter.

/// One training example as the run folder stores it.
public struct ExampleLine: Codable, Sendable, Equatable {
    public var instruction: String
    public var input: String
    public var output: String
    /// `mined-conclusion`, the generator's nearest seed task, …
    public var task: String?
    /// The recipe that made it.
    public var recipe: String?
    /// Provenance: the corpus document (mined examples).
    public var documentKey: String?
    public var pmid: Int?

    enum CodingKeys: String, CodingKey { case instruction, input, output, task, recipe, documentKey = "document_key", pmid }
}

/// What a recipe produced (`data/RECIPE.stats.json`).
public struct RecipeStats: Codable, Sendable, Equatable {
    public var recipe: String
    public var kind: String
    /// Examples written (after the recipe's own sample or limit).
    public var examples: Int
    /// Examples before the sample or limit.
    public var candidates: Int
    /// Examples per task (mined kind or generated task family).
    public var byTask: [String: Int]
    /// Mine: corpus documents read.
    public var documents: Int?
    /// Generate: the pipeline's own filter counts (instructions and responses dropped, by reason).
    public var generatorFiltered: [String: Int]?
    /// Generate: the examples asked for (the pipeline stops short when many rounds keep nothing).
    public var generatorTarget: Int?
}

/// What curation kept and dropped for one adapter (`curate/ADAPTER.stats.json`).
public struct CurateStats: Codable, Sendable, Equatable {
    public struct PerRecipe: Codable, Sendable, Equatable {
        public var recipe: String
        public var input: Int
        public var kept: Int
        /// Dropped by filter: `invalid`, `short-output`, `long-input`, `duplicate`, `contaminated`.
        public var filtered: [String: Int]
    }
    public var adapter: String
    public var recipes: [PerRecipe]
    public var kept: Int
    /// The evaluation files checked for shared n-grams.
    public var contaminationFiles: [String]
    public var ngram: Int
}

extension ExperimentRunner {
    // MARK: Recipes

    func makeData(_ recipe: ExperimentConfig.Recipe, resuming: Bool) throws {
        try FileManager.default.createDirectory(at: dataPath(recipe.name).deletingLastPathComponent(), withIntermediateDirectories: true)
        var lines: [ExampleLine]
        var stats: RecipeStats
        switch recipe.recipe {
        case "mine": (lines, stats) = try mine(recipe)
        case "generate": (lines, stats) = try generate(recipe, resuming: resuming)
        case "backtranslate": (lines, stats) = try backtranslate(recipe, resuming: resuming)
        default: (lines, stats) = try readDataset(recipe)
        }
        if stats.candidates == 0 { stats.candidates = lines.count }
        if let limit = recipe.limit, lines.count > limit {
            var rng = SplitMix64(seed: recipe.seed ?? 0)
            lines.shuffle(using: &rng)
            lines = Array(lines.prefix(limit))
        }
        stats.examples = lines.count
        stats.byTask = Dictionary(grouping: lines, by: { $0.task ?? "-" }).mapValues(\.count)
        try writeLines(lines, to: dataPath(recipe.name))
        try fileEncoder().encode(stats).write(to: dataStatsPath(recipe.name), options: .atomic)
    }

    /// The rule-based miner over the corpus (as `selfspec specialize mine`), then the per-kind sample.
    func mine(_ recipe: ExperimentConfig.Recipe) throws -> ([ExampleLine], RecipeStats) {
        let stage = "data-\(recipe.name)"
        let store = try CorpusStore(path: corpusPath, readOnly: true)
        let lexicons = try (recipe.lexicons ?? []).flatMap { try EntityLexicon.load(nerFile: $0) }
        let kinds = recipe.kinds.map { Set($0.compactMap(CorpusTaskMiner.Kind.init(rawValue:))) }
            ?? CorpusTaskMiner.Kind.allCases.filter { !lexicons.isEmpty || !CorpusTaskMiner.lexiconKinds.contains($0) }.reduce(into: []) { $0.insert($1) }
        let miner = CorpusTaskMiner(kinds: kinds, maxInferencePerDocument: recipe.inferencePerDocument ?? 2, lexicons: EntityLexicon.merging(lexicons))
        var byKind: [CorpusTaskMiner.Kind: [ExampleLine]] = [:]
        let documents = try miner.mine(store, limit: recipe.documents, each: { t in
            byKind[t.kind, default: []].append(ExampleLine(instruction: t.instruction, input: t.input, output: t.output,
                                                           task: "mined-" + t.kind.rawValue, recipe: recipe.name,
                                                           documentKey: t.documentKey, pmid: t.pmid))
        }, afterPage: { documents, total in
            if shouldStop() { throw ExperimentError.interrupted(stage: stage) }
            onEvent(.progress(stage: stage, done: documents, total: total, unit: "documents", detail: "mining"))
            return true
        })
        var lines: [ExampleLine] = []
        var rng = SplitMix64(seed: recipe.seed ?? 0)
        for kind in CorpusTaskMiner.Kind.allCases {
            var found = byKind[kind] ?? []
            if let quota = recipe.sample {
                found.shuffle(using: &rng)
                let n = quota[kind.rawValue] ?? 0
                found = recipe.balanceLabels == true ? Self.balanced(found, count: n) : Array(found.prefix(n))
            }
            lines += found
        }
        let candidates = byKind.values.reduce(0) { $0 + $1.count }
        return (lines, RecipeStats(recipe: recipe.name, kind: "mine", examples: 0, candidates: candidates, byTask: [:], documents: documents))
    }

    /// Up to `count` of `lines` (already shuffled), taken round-robin over their answers when
    /// every answer is a short label (at most 5 characters: `yes`, `maybe`, `C`), else the first
    /// `count`.
    static func balanced(_ lines: [ExampleLine], count: Int) -> [ExampleLine] {
        guard lines.allSatisfy({ $0.output.count <= 5 }) else { return Array(lines.prefix(count)) }
        var groups: [String: [ExampleLine]] = [:], order: [String] = []
        for l in lines {
            if groups[l.output] == nil { order.append(l.output) }
            groups[l.output, default: []].append(l)
        }
        var out: [ExampleLine] = [], next = [String: Int]()
        while out.count < count {
            var took = false
            for label in order where out.count < count {
                let i = next[label, default: 0]
                guard let group = groups[label], i < group.count else { continue }
                out.append(group[i])
                next[label] = i + 1
                took = true
            }
            if !took { break }
        }
        return out
    }

    /// The seeds → brainstorm → retrieval-grounded pipeline (`SelfSpecializer`) with the local
    /// engine; its own run folder (data/RECIPE.generate/) resumes round by round.
    func generate(_ recipe: ExperimentConfig.Recipe, resuming: Bool) throws -> ([ExampleLine], RecipeStats) {
        let stage = "data-\(recipe.name)"
        let folder = directory.appendingPathComponent("data/\(recipe.name).generate").path
        let modelPath = recipe.writer ?? config.model
        let seedsPath = recipe.seeds ?? "corpora/seeds/biomedical.jsonl"
        let backend = try LocalBackend(modelPath: modelPath, chat: true, maxBatch: 16, shouldStop: shouldStop)
        var retriever: Retriever?
        if recipe.grounded ?? true {
            retriever = try Retriever.open(db: corpusPath, embedder: { throw ExperimentError.stageFailed(stage: stage, detail: "no embedder") },
                                           dense: .off)
        }
        var c = SelfSpecializer.Configuration()
        c.count = recipe.count ?? 200
        c.seed = recipe.seed ?? 0
        c.k = recipe.k ?? 3
        c.promptsPerRound = recipe.promptsPerRound ?? 8
        c.searchMode = .bm25
        var contamination = ContaminationIndex(n: config.curate.ngram)
        if config.curate.contamination { for f in evalFiles { try contamination.addFile(f.file) } }
        let fingerprint = c.fingerprint(seedsFile: String(try SHA256.hexDigest(ofFile: seedsPath).prefix(16)),
                                        model: backend.modelIdentifier, grounded: retriever != nil)
        let exists = FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent("progress.json"))
        if exists && !resuming { try FileManager.default.removeItem(atPath: folder) }
        let store = try DatasetStore(directory: folder, settings: fingerprint, resume: exists && resuming)
        let pipeline = SelfSpecializer(backend: backend, retriever: retriever, seeds: try SeedLoader.load(path: seedsPath),
                                       configuration: c, contamination: contamination,
                                       countTokens: { backend.countTokens($0) })
        let stats = try pipeline.run(into: store) { p in
            onEvent(.progress(stage: stage, done: p.examples, total: p.target, unit: "examples", detail: "round \(p.round + 1)"))
            return shouldStop() ? .stop : .more
        }
        // Short of the target without Ctrl-C: `patience` rounds in a row kept nothing. The recipe
        // keeps what it has (the report shows the target beside the count).
        if stats.examples < c.count && shouldStop() { throw ExperimentError.interrupted(stage: stage) }
        let examples = try readLines(URL(fileURLWithPath: (folder as NSString).appendingPathComponent("examples.jsonl")), recipe: recipe.name)
        return (examples, RecipeStats(recipe: recipe.name, kind: "generate", examples: 0, candidates: 0, byTask: [:],
                                      generatorFiltered: stats.filtered, generatorTarget: c.count))
    }

    /// Yes/no questions back-translated from the corpus's structured abstracts by the writer
    /// (``YesNoBackTranslator``); every outcome is saved in data/RECIPE.backtranslate/outcomes.jsonl
    /// as its batch ends, so a rerun continues after the last one.
    func backtranslate(_ recipe: ExperimentConfig.Recipe, resuming: Bool) throws -> ([ExampleLine], RecipeStats) {
        let stage = "data-\(recipe.name)"
        let folder = directory.appendingPathComponent("data/\(recipe.name).backtranslate")
        let outcomesPath = folder.appendingPathComponent("outcomes.jsonl").path
        if !resuming { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = try GGUFFile(path: recipe.writer ?? config.model)
        let generator = TextGenerator(model: try loadLanguageModel(file: file), tokenizer: try TokenizerFactory.make(metadata: file.metadata))
        let translator = YesNoBackTranslator(generator: generator, template: try ChatTemplate(metadata: file.metadata),
                                             verify: recipe.verify ?? true)
        let store = try CorpusStore(path: corpusPath, readOnly: true)
        let candidates = try YesNoBackTranslator.candidates(in: store, limit: recipe.documents, seed: recipe.seed ?? 0)
        let count = recipe.count ?? 200
        var kept = 0
        let all = try translator.run(candidates, count: count, done: try YesNoBackTranslator.read(outcomesPath), write: { outcomes in
            try YesNoBackTranslator.append(outcomes, to: outcomesPath)
            kept += outcomes.filter { $0.dropped == nil }.count
            onEvent(.progress(stage: stage, done: kept, total: count, unit: "examples", detail: ""))
        }, shouldStop: shouldStop)
        let examples = all.filter { $0.dropped == nil }
        if examples.count < count && shouldStop() { throw ExperimentError.interrupted(stage: stage) }
        var filtered: [String: Int] = [:]
        for o in all { if let d = o.dropped { filtered[d, default: 0] += 1 } }
        let lines = examples.map {
            ExampleLine(instruction: $0.instruction, input: $0.input, output: $0.output, task: $0.task, recipe: recipe.name,
                        documentKey: $0.documentKey, pmid: $0.pmid)
        }
        return (lines, RecipeStats(recipe: recipe.name, kind: "backtranslate", examples: 0, candidates: all.count, byTask: [:],
                                   generatorFiltered: filtered, generatorTarget: count))
    }

    /// An existing JSONL file of {instruction, input, output}.
    func readDataset(_ recipe: ExperimentConfig.Recipe) throws -> ([ExampleLine], RecipeStats) {
        let lines = try readLines(URL(fileURLWithPath: recipe.path!), recipe: recipe.name)
        return (lines, RecipeStats(recipe: recipe.name, kind: "dataset", examples: 0, candidates: 0, byTask: [:]))
    }

    // MARK: Curate

    /// The recipes' examples through the filters, in recipe order: invalid, short output, long
    /// input, duplicate (instruction, input), contaminated (an n-gram shared with an eval file).
    func curate(adapter: String, recipes: [String]) throws {
        var contamination = ContaminationIndex(n: config.curate.ngram)
        if config.curate.contamination { for f in evalFiles { try contamination.addFile(f.file) } }
        var seen = Set<String>()
        var kept: [ExampleLine] = []
        var per: [CurateStats.PerRecipe] = []
        let c = config.curate
        for name in recipes {
            let lines = try readLines(dataPath(name), recipe: name)
            var row = CurateStats.PerRecipe(recipe: name, input: lines.count, kept: 0, filtered: [:])
            for line in lines {
                let reason: String?
                let words = { (s: String) in s.split(whereSeparator: \.isWhitespace).count }
                if line.instruction.isEmpty || line.output.isEmpty { reason = "invalid" }
                else if words(line.output) < c.minOutputWords { reason = "short-output" }
                else if c.maxInputWords > 0 && words(line.instruction) + words(line.input) > c.maxInputWords { reason = "long-input" }
                else if c.dedupe && !seen.insert(line.instruction + "\u{1}" + line.input).inserted { reason = "duplicate" }
                else if c.contamination && contamination.count > 0
                            && contamination.overlaps(line.instruction + "\n" + line.input + "\n" + line.output) { reason = "contaminated" }
                else { reason = nil }
                if let reason { row.filtered[reason, default: 0] += 1 } else { kept.append(line); row.kept += 1 }
            }
            per.append(row)
        }
        if kept.isEmpty { throw ExperimentError.stageFailed(stage: Self.stageName("curate", adapter: adapter), detail: "no example left to train on") }
        try FileManager.default.createDirectory(at: curatedPath(adapter).deletingLastPathComponent(), withIntermediateDirectories: true)
        try writeLines(kept, to: curatedPath(adapter))
        let stats = CurateStats(adapter: adapter, recipes: per, kept: kept.count,
                                contaminationFiles: c.contamination ? evalFiles.map(\.file) : [], ngram: c.ngram)
        try fileEncoder().encode(stats).write(to: curateStatsPath(adapter), options: .atomic)
    }

    // MARK: Files

    func writeLines(_ lines: [ExampleLine], to url: URL) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for l in lines { data += try e.encode(l); data.append(0x0A) }
        try data.write(to: url, options: .atomic)
    }

    /// JSONL with at least `instruction` and `output` per line (`input` optional).
    func readLines(_ url: URL, recipe: String) throws -> [ExampleLine] {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw ExperimentError.missingFile(path: url.path, key: nil) }
        var out: [ExampleLine] = []
        for (i, raw) in data.split(separator: 0x0A).enumerated() where !raw.allSatisfy({ $0 == 32 || $0 == 13 }) {
            guard let o = try? JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any],
                  let instruction = o["instruction"] as? String, let output = o["output"] as? String else {
                throw ExperimentError.stageFailed(stage: "data-\(recipe)", detail: "\(url.path):\(i + 1): expected a JSON object with instruction and output")
            }
            out.append(ExampleLine(instruction: instruction, input: o["input"] as? String ?? "", output: output,
                                   task: o["task"] as? String, recipe: recipe, documentKey: o["document_key"] as? String,
                                   pmid: o["pmid"] as? Int))
        }
        return out
    }
}
