import Foundation
import Generator

// An experiment's configuration (`experiments/NAME.json`, documented key by key in
// experiments/README.md). Read strictly: an unknown key, a value of the wrong type or a missing
// file is an `ExperimentError` naming the file and the key path (e.g. `tune.steps`).

/// The whole experiment: corpus → data recipes → curate → tune (specialist and controls) → eval.
public struct ExperimentConfig: Codable, Sendable, Equatable {
    /// The run folder's name (`runs/NAME`); default: the file's name without `.json`.
    public var name: String
    /// The base model (GGUF): the student that is tuned and evaluated, and the writer of `generate` recipes.
    public var model: String
    /// Files or folders of PubMed/MEDLINE XML (or any format `selfspec ingest` reads), ingested
    /// into `runs/NAME/corpus.sqlite`; empty when no recipe needs a corpus.
    public var corpus: [String]
    public var data: [Recipe]
    public var curate: Curate
    public var tune: Tune
    /// Further adapters evaluated beside the specialist (e.g. a generic control): each trains on
    /// its own recipes with the specialist's tune settings overridden by `tune`.
    public var controls: [Control]
    public var eval: Eval

    /// One source of training examples, named for the statistics.
    public struct Recipe: Codable, Sendable, Equatable {
        public var name: String
        /// `mine`, `generate` or `dataset`.
        public var recipe: String
        // mine
        public var kinds: [String]?
        /// Mine: stop after this many corpus documents.
        public var documents: Int?
        public var inferencePerDocument: Int?
        /// Mine: a seeded sample of at most this many examples per kind (all when absent).
        public var sample: [String: Int]?
        /// Mine: labelled NER files (train splits) whose entity names the `entities`, `relation`
        /// and `cloze` kinds look for (``EntityLexicon``).
        public var lexicons: [String]?
        /// Mine: draw each kind's sample evenly over its answer labels (`yes`/`no`, `A`-`D`),
        /// as far as each label has examples; kinds with free-text answers are sampled as usual.
        public var balanceLabels: Bool?
        // generate
        public var seeds: String?
        public var count: Int?
        public var grounded: Bool?
        public var k: Int?
        public var promptsPerRound: Int?
        public var writer: String?
        // backtranslate (also count, seed, documents, writer)
        /// Backtranslate: drop questions the writer answers against their label (default true).
        public var verify: Bool?
        // dataset
        public var path: String?
        /// Any recipe: keep at most this many examples (a seeded sample).
        public var limit: Int?
        public var seed: UInt64?
    }

    public struct Curate: Codable, Sendable, Equatable {
        /// Drop examples sharing an n-gram of `ngram` words with an evaluation item.
        public var contamination = true
        public var ngram = 13
        /// Drop exact repeats of (instruction, input).
        public var dedupe = true
        /// Drop examples whose output has fewer words than this.
        public var minOutputWords = 1
        /// Drop examples whose instruction + input has more words than this (0: no limit).
        public var maxInputWords = 0
    }

    public struct Tune: Codable, Sendable, Equatable {
        public var steps = 60
        public var batchSize = 8
        public var gradAccumulation = 1
        public var maxLength = 512
        public var lr: Float = 3e-4
        public var minLr: Float = 2e-5
        public var warmup = 10
        public var rank = 8
        public var alpha: Float = 16
        public var targets = ["q", "k", "v", "o", "gate", "up", "down"]
        public var seed: UInt64 = 42
        public var valFraction = 0.05
        public var evalEvery = 50
        public var checkpointEvery = 20
    }

    public struct Control: Codable, Sendable, Equatable {
        public var name: String
        /// Names of entries of `data` this adapter trains on.
        public var recipes: [String]
        /// Overrides of the specialist's tune settings (same keys as `tune`).
        public var tune: Tune
    }

    public struct Eval: Codable, Sendable, Equatable {
        /// Task name (`pubmedqa`, `mcq`, `gad`, `ner`) → file and item limit.
        public var tasks: [String: TaskSpec]
        public var seed: UInt64 = 0
        public var shots = 0
        public var resamples = 1000
        public var batch = 8
        public var generationBatch = 16
        public var maxTokens = 64
    }

    public struct TaskSpec: Codable, Sendable, Equatable {
        public var file: String
        public var limit: Int?
    }

    /// The tasks in a fixed order (pubmedqa, mcq, gad, ner).
    public var orderedTasks: [(name: String, spec: TaskSpec)] {
        let order = ["pubmedqa", "mcq", "gad", "ner"]
        return eval.tasks.sorted { (order.firstIndex(of: $0.key) ?? 99, $0.key) < (order.firstIndex(of: $1.key) ?? 99, $1.key) }
            .map { ($0.key, $0.value) }
    }
}

// MARK: - Loading

extension ExperimentConfig {
    static let recipeKinds = ["mine", "generate", "backtranslate", "dataset"]
    static let taskNames = ["pubmedqa", "mcq", "gad", "ner"]

    /// The keys each object may hold (snake_case, as in the file).
    static let topKeys: Set<String> = ["name", "model", "corpus", "data", "curate", "tune", "controls", "eval", "description"]
    static let recipeKeys: Set<String> = ["name", "recipe", "kinds", "lexicons", "balance_labels", "documents", "inference_per_document", "sample", "seeds", "count",
                                          "grounded", "k", "prompts_per_round", "writer", "verify", "path", "limit", "seed", "description"]
    static let curateKeys: Set<String> = ["contamination", "ngram", "dedupe", "min_output_words", "max_input_words"]
    static let tuneKeys: Set<String> = ["steps", "batch_size", "grad_accumulation", "max_length", "lr", "min_lr", "warmup", "rank",
                                        "alpha", "targets", "seed", "val_fraction", "eval_every", "checkpoint_every"]
    static let controlKeys: Set<String> = ["name", "recipes", "tune", "description"]
    static let evalKeys: Set<String> = ["tasks", "seed", "shots", "resamples", "batch", "generation_batch", "max_tokens"]
    static let taskKeys: Set<String> = ["file", "limit"]

    /// Reads and checks `path`. Relative paths in it are relative to the working directory (the
    /// repository), or, when `root` is given, made absolute against `root` (tests run elsewhere).
    /// - Throws: `ExperimentError.badConfig` naming the file and key, `.missingFile` naming the key.
    public static func load(path: String, root: String? = nil) throws -> ExperimentConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw ExperimentError.missingFile(path: path, key: nil) }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ExperimentError.badConfig(file: path, key: "", detail: "not valid JSON: \((error as NSError).localizedDescription)")
        }
        let defaultName = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var config = try Reader(file: path).config(object, defaultName: defaultName)
        if let root { config.resolvePaths(against: root) }
        try config.check(file: path, root: root ?? FileManager.default.currentDirectoryPath)
        return config
    }

    /// Makes every relative file path absolute against `root`.
    mutating func resolvePaths(against root: String) {
        func abs(_ p: String) -> String { p.hasPrefix("/") ? p : (root as NSString).appendingPathComponent(p) }
        model = abs(model)
        corpus = corpus.map(abs)
        for i in data.indices {
            if data[i].recipe == "generate" { data[i].seeds = abs(data[i].seeds ?? "corpora/seeds/biomedical.jsonl") }
            data[i].path = data[i].path.map(abs)
            data[i].writer = data[i].writer.map(abs)
        }
        for k in eval.tasks.keys { eval.tasks[k]!.file = abs(eval.tasks[k]!.file) }
    }

    /// Range and cross-reference checks, and every input file's existence.
    func check(file: String, root: String) throws {
        func bad(_ key: String, _ detail: String) -> ExperimentError { .badConfig(file: file, key: key, detail: detail) }
        func exists(_ p: String, _ key: String) throws {
            let full = p.hasPrefix("/") ? p : (root as NSString).appendingPathComponent(p)
            if !FileManager.default.fileExists(atPath: full) { throw ExperimentError.missingFile(path: p, key: "\(file): \(key)") }
        }
        if name.isEmpty || name.contains("/") { throw bad("name", "must be a non-empty name without '/'") }
        try exists(model, "model")
        for (i, c) in corpus.enumerated() { try exists(c, "corpus[\(i)]") }
        if data.isEmpty { throw bad("data", "needs at least one recipe") }
        var names = Set<String>()
        for (i, r) in data.enumerated() {
            let key = "data[\(i)]"
            if !names.insert(r.name).inserted { throw bad("\(key).name", "duplicate recipe name '\(r.name)'") }
            switch r.recipe {
            case "mine":
                if corpus.isEmpty { throw bad("corpus", "recipe '\(r.name)' mines the corpus: list its source files") }
                let known = CorpusTaskMiner.Kind.allCases.map(\.rawValue)
                for k in r.kinds ?? [] where !known.contains(k) {
                    throw bad("\(key).kinds", "unknown kind '\(k)' (expected \(known.joined(separator: ", ")))")
                }
                for k in (r.sample ?? [:]).keys where !known.contains(k) {
                    throw bad("\(key).sample", "unknown kind '\(k)'")
                }
                for (j, f) in (r.lexicons ?? []).enumerated() { try exists(f, "\(key).lexicons[\(j)]") }
                let needLexicon = (r.kinds ?? []).filter { CorpusTaskMiner.Kind(rawValue: $0).map(CorpusTaskMiner.lexiconKinds.contains) ?? false }
                if let k = needLexicon.first, (r.lexicons ?? []).isEmpty {
                    throw bad("\(key).lexicons", "kind '\(k)' needs at least one NER file to take entity names from")
                }
            case "generate":
                try exists(r.seeds ?? "corpora/seeds/biomedical.jsonl", "\(key).seeds")
                if let w = r.writer { try exists(w, "\(key).writer") }
                if r.grounded ?? true, corpus.isEmpty { throw bad("corpus", "recipe '\(r.name)' is grounded: list the corpus sources (or \"grounded\": false)") }
                if (r.count ?? 0) < 1 { throw bad("\(key).count", "a generate recipe needs a positive count") }
            case "backtranslate":
                if let w = r.writer { try exists(w, "\(key).writer") }
                if corpus.isEmpty { throw bad("corpus", "recipe '\(r.name)' back-translates the corpus: list its source files") }
                if (r.count ?? 0) < 1 { throw bad("\(key).count", "a backtranslate recipe needs a positive count") }
            case "dataset":
                guard let p = r.path else { throw bad("\(key).path", "a dataset recipe needs a path") }
                try exists(p, "\(key).path")
            default:
                throw bad("\(key).recipe", "unknown recipe '\(r.recipe)' (expected \(Self.recipeKinds.joined(separator: ", ")))")
            }
            if let l = r.limit, l < 1 { throw bad("\(key).limit", "must be positive") }
        }
        if tune.steps < 1 { throw bad("tune.steps", "must be positive") }
        for (i, c) in controls.enumerated() {
            if c.name == "base" || c.name == "specialist" || controls.filter({ $0.name == c.name }).count > 1 {
                throw bad("controls[\(i)].name", "'\(c.name)' is taken")
            }
            for r in c.recipes where !names.contains(r) { throw bad("controls[\(i)].recipes", "no recipe named '\(r)' in data") }
        }
        if eval.shots != 0 { throw bad("eval.shots", "only 0-shot evaluation is supported by experiments so far") }
        if eval.resamples < 1 || eval.batch < 1 || eval.generationBatch < 1 || eval.maxTokens < 1 {
            throw bad("eval", "resamples, batch, generation_batch and max_tokens must be positive")
        }
        if eval.tasks.isEmpty { throw bad("eval.tasks", "needs at least one task") }
        for (t, spec) in eval.tasks {
            if !Self.taskNames.contains(t) { throw bad("eval.tasks.\(t)", "unknown task (expected \(Self.taskNames.joined(separator: ", ")))") }
            try exists(spec.file, "eval.tasks.\(t).file")
            if let l = spec.limit, l < 1 { throw bad("eval.tasks.\(t).limit", "must be positive") }
        }
    }

    /// The recipes a model trains on: the specialist all of `data` except recipes only controls name.
    public var specialistRecipes: [String] {
        let controlOnly = Set(controls.flatMap(\.recipes))
        let own = data.map(\.name).filter { !controlOnly.contains($0) }
        return own.isEmpty ? data.map(\.name) : own
    }
}

/// Turns the parsed JSON into a configuration, checking every key and type.
private struct Reader {
    let file: String

    func bad(_ key: String, _ detail: String) -> ExperimentError { .badConfig(file: file, key: key, detail: detail) }

    func object(_ value: Any, _ key: String, allowed: Set<String>) throws -> [String: Any] {
        guard let o = value as? [String: Any] else { throw bad(key, "expected an object") }
        for k in o.keys.sorted() where !allowed.contains(k) {
            throw bad(key.isEmpty ? k : "\(key).\(k)", "unknown key (expected one of \(allowed.sorted().joined(separator: ", ")))")
        }
        return o
    }

    func string(_ o: [String: Any], _ k: String, _ path: String) throws -> String? {
        guard let v = o[k] else { return nil }
        guard let s = v as? String else { throw bad(join(path, k), "expected a string") }
        return s
    }

    func int(_ o: [String: Any], _ k: String, _ path: String) throws -> Int? {
        guard let v = o[k] else { return nil }
        guard let n = v as? NSNumber, !isBoolean(v), let i = Int(exactly: n.doubleValue) else {
            throw bad(join(path, k), "expected an integer")
        }
        return i
    }

    func double(_ o: [String: Any], _ k: String, _ path: String) throws -> Double? {
        guard let v = o[k] else { return nil }
        guard let n = v as? NSNumber, !isBoolean(v) else { throw bad(join(path, k), "expected a number") }
        return n.doubleValue
    }

    func bool(_ o: [String: Any], _ k: String, _ path: String) throws -> Bool? {
        guard let v = o[k] else { return nil }
        guard let n = v as? NSNumber, isBoolean(v) else { throw bad(join(path, k), "expected true or false") }
        return n.boolValue
    }

    func strings(_ o: [String: Any], _ k: String, _ path: String) throws -> [String]? {
        guard let v = o[k] else { return nil }
        guard let a = v as? [Any], a.allSatisfy({ $0 is String }) else { throw bad(join(path, k), "expected a list of strings") }
        return a as? [String]
    }

    /// JSON true/false (a boolean NSNumber subclass, not NSNumber itself).
    func isBoolean(_ v: Any) -> Bool { v is NSNumber && String(describing: type(of: v)).contains("Boolean") }

    func join(_ path: String, _ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }

    func config(_ value: Any, defaultName: String) throws -> ExperimentConfig {
        let o = try object(value, "", allowed: ExperimentConfig.topKeys)
        guard let model = try string(o, "model", "") else { throw bad("model", "missing (the base model GGUF)") }
        let corpus: [String]
        if let c = o["corpus"] as? String { corpus = [c] } else { corpus = try strings(o, "corpus", "") ?? [] }
        guard let rawData = o["data"] as? [Any] else { throw bad("data", o["data"] == nil ? "missing (a list of recipes)" : "expected a list") }
        let data = try rawData.enumerated().map { try recipe($1, "data[\($0)]") }
        let curate = try o["curate"].map { try self.curate($0) } ?? .init()
        let tune = try tuneSettings(o["tune"], "tune", base: .init())
        var controls: [ExperimentConfig.Control] = []
        if let raw = o["controls"] {
            guard let list = raw as? [Any] else { throw bad("controls", "expected a list") }
            for (i, item) in list.enumerated() {
                let key = "controls[\(i)]"
                let c = try object(item, key, allowed: ExperimentConfig.controlKeys)
                guard let name = try string(c, "name", key) else { throw bad("\(key).name", "missing") }
                guard let recipes = try strings(c, "recipes", key), !recipes.isEmpty else { throw bad("\(key).recipes", "missing (names of data recipes)") }
                controls.append(.init(name: name, recipes: recipes, tune: try tuneSettings(c["tune"], "\(key).tune", base: tune)))
            }
        }
        guard let rawEval = o["eval"] else { throw bad("eval", "missing") }
        return ExperimentConfig(name: try string(o, "name", "") ?? defaultName, model: model, corpus: corpus, data: data,
                                curate: curate, tune: tune, controls: controls, eval: try eval(rawEval))
    }

    func recipe(_ value: Any, _ key: String) throws -> ExperimentConfig.Recipe {
        let o = try object(value, key, allowed: ExperimentConfig.recipeKeys)
        guard let kind = try string(o, "recipe", key) else { throw bad("\(key).recipe", "missing (mine, generate, backtranslate or dataset)") }
        var sample: [String: Int]?
        if let raw = o["sample"] {
            guard let s = raw as? [String: Any] else { throw bad("\(key).sample", "expected an object {kind: count}") }
            sample = try s.mapValues { v in
                guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), i >= 0 else { throw bad("\(key).sample", "expected counts") }
                return i
            }
        }
        let seed = try int(o, "seed", key)
        if let seed, seed < 0 { throw bad("\(key).seed", "must be 0 or more") }
        return .init(name: try string(o, "name", key) ?? kind, recipe: kind, kinds: try strings(o, "kinds", key),
                     documents: try int(o, "documents", key), inferencePerDocument: try int(o, "inference_per_document", key),
                     sample: sample, lexicons: try strings(o, "lexicons", key), balanceLabels: try bool(o, "balance_labels", key), seeds: try string(o, "seeds", key), count: try int(o, "count", key),
                     grounded: try bool(o, "grounded", key), k: try int(o, "k", key),
                     promptsPerRound: try int(o, "prompts_per_round", key), writer: try string(o, "writer", key),
                     verify: try bool(o, "verify", key), path: try string(o, "path", key), limit: try int(o, "limit", key), seed: seed.map(UInt64.init))
    }

    func curate(_ value: Any) throws -> ExperimentConfig.Curate {
        let o = try object(value, "curate", allowed: ExperimentConfig.curateKeys)
        var c = ExperimentConfig.Curate()
        if let v = try bool(o, "contamination", "curate") { c.contamination = v }
        if let v = try int(o, "ngram", "curate") { c.ngram = v }
        if let v = try bool(o, "dedupe", "curate") { c.dedupe = v }
        if let v = try int(o, "min_output_words", "curate") { c.minOutputWords = v }
        if let v = try int(o, "max_input_words", "curate") { c.maxInputWords = v }
        if c.ngram < 1 { throw bad("curate.ngram", "must be positive") }
        return c
    }

    func tuneSettings(_ value: Any?, _ key: String, base: ExperimentConfig.Tune) throws -> ExperimentConfig.Tune {
        guard let value else { return base }
        let o = try object(value, key, allowed: ExperimentConfig.tuneKeys)
        var t = base
        if let v = try int(o, "steps", key) { t.steps = v }
        if let v = try int(o, "batch_size", key) { t.batchSize = v }
        if let v = try int(o, "grad_accumulation", key) { t.gradAccumulation = v }
        if let v = try int(o, "max_length", key) { t.maxLength = v }
        if let v = try double(o, "lr", key) { t.lr = Float(v) }
        if let v = try double(o, "min_lr", key) { t.minLr = Float(v) }
        if let v = try int(o, "warmup", key) { t.warmup = v }
        if let v = try int(o, "rank", key) { t.rank = v }
        if let v = try double(o, "alpha", key) { t.alpha = Float(v) }
        if let v = try strings(o, "targets", key) { t.targets = v }
        if let v = try int(o, "seed", key) { t.seed = UInt64(max(0, v)) }
        if let v = try double(o, "val_fraction", key) { t.valFraction = v }
        if let v = try int(o, "eval_every", key) { t.evalEvery = v }
        if let v = try int(o, "checkpoint_every", key) { t.checkpointEvery = v }
        return t
    }

    func eval(_ value: Any) throws -> ExperimentConfig.Eval {
        let o = try object(value, "eval", allowed: ExperimentConfig.evalKeys)
        guard let rawTasks = o["tasks"] as? [String: Any] else { throw bad("eval.tasks", "expected an object {task: {file, limit}}") }
        var tasks: [String: ExperimentConfig.TaskSpec] = [:]
        for (name, raw) in rawTasks {
            let key = "eval.tasks.\(name)"
            let t = try object(raw, key, allowed: ExperimentConfig.taskKeys)
            guard let file = try string(t, "file", key) else { throw bad("\(key).file", "missing") }
            tasks[name] = .init(file: file, limit: try int(t, "limit", key))
        }
        var e = ExperimentConfig.Eval(tasks: tasks)
        if let v = try int(o, "seed", "eval") { e.seed = UInt64(max(0, v)) }
        if let v = try int(o, "shots", "eval") { e.shots = v }
        if let v = try int(o, "resamples", "eval") { e.resamples = v }
        if let v = try int(o, "batch", "eval") { e.batch = v }
        if let v = try int(o, "generation_batch", "eval") { e.generationBatch = v }
        if let v = try int(o, "max_tokens", "eval") { e.maxTokens = v }
        return e
    }
}
