import ArgumentParser
import Foundation
import Generator
import Ingest
import LLM
import VectorIndex

// MARK: - seeds

struct SeedsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seeds",
        abstract: "Build and check seed task files (JSONL {task, instruction, input, output}).",
        subcommands: [SeedsSample.self, SeedsCheck.self])
}

struct SeedsSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample seed tasks from a labelled benchmark's training split.",
        discussion: """
        Formats: pubmedqa (PubMedQA JSON keyed by PMID), ner (IOB token<TAB>tag file, or a folder \
        with train.tsv), gad (GAD-style JSONL), mcq (multiple-choice JSON {id: {question, options, answer}}).
        """)

    @Option(help: "The benchmark file (or NER folder).")
    var from: String
    @Option(help: "pubmedqa, ner, gad or mcq.")
    var format: String
    @Option(help: "Seeds to draw (fewer if the file has fewer records).")
    var count = 50
    @Option(help: "Random seed of the draw.")
    var seed: UInt64 = 0
    @Option(help: "The seed file to write (JSONL).")
    var out: String

    func validate() throws {
        if BenchmarkFormat(rawValue: format) == nil { throw ValidationError("--format must be pubmedqa, ner, gad or mcq") }
        if count < 1 { throw ValidationError("--count must be positive") }
    }

    func run() throws {
        let seeds = try BenchmarkSeedSampler.sample(path: from, format: BenchmarkFormat(rawValue: format)!, count: count, seed: seed)
        try SeedLoader.write(seeds, to: out)
        let tasks = Dictionary(grouping: seeds, by: \.task).map { "\($0.key) \($0.value.count)" }.sorted().joined(separator: ", ")
        print("wrote \(seeds.count) seeds to \(out) (\(tasks))")
    }
}

struct SeedsCheck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Validate a seed file and count its tasks.")

    @Argument(help: "A seed file (JSONL).")
    var file: String

    func run() throws {
        let seeds = try SeedLoader.load(path: file)
        print("\(file): \(seeds.count) seeds")
        for (task, n) in Dictionary(grouping: seeds, by: \.task).mapValues(\.count).sorted(by: { $0.key < $1.key }) {
            print("  \(task.padding(toLength: 24, withPad: " ", startingAt: 0)) \(n)")
        }
    }
}

// MARK: - specialize

struct Specialize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Self-specialization: let the base model write its own grounded, cited training data.",
        subcommands: [SpecializeGenerate.self, SpecializeMine.self, SpecializeBacktranslate.self, SpecializeExperiment.self, SpecializeBenchFilter.self])
}

struct SpecializeGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Brainstorm instructions from seeds, answer them grounded in the corpus, filter, and write a dataset.",
        discussion: """
        Writes OUT/examples.jsonl, OUT/instructions.jsonl, OUT/stats.json and OUT/progress.json. \
        Resumable: Ctrl-C (or a kill) keeps every finished round; the same command with --resume continues.
        """)

    @Option(help: "The corpus SQLite file (retrieval for grounding).")
    var db: String?
    @Flag(help: "Ungrounded responses (no retrieval), as the paper's base variant.")
    var noRetrieval = false
    @Option(help: "The seed tasks (JSONL).")
    var seeds = "corpora/seeds/biomedical.jsonl"
    @Option(help: "The output directory.")
    var out: String
    @Option(help: "Examples to generate.")
    var count = 200
    @Option(help: "Random seed: the same seed, settings and model give the same run.")
    var seed: UInt64 = 0
    @Flag(help: "Continue the run stored in --out.")
    var resume = false

    @Option(help: "local (the in-process engine) or openai (an OpenAI-compatible server).")
    var backend = "local"
    @Option(help: "The model: a GGUF file for local, the served model name for openai.")
    var model: String?
    @Option(help: ArgumentHelp("A LoRA adapter for the local model (iterative self-specialization): a tune run folder, PEFT folder or GGUF LoRA file.", valueName: "path"))
    var adapter: String?
    @Option(help: ArgumentHelp("Answer these instructions (an earlier run's instructions.jsonl) instead of brainstorming: with --adapter, regenerates that run's responses with the specialized model.", valueName: "file"))
    var instructions: String?
    @OptionGroup var weights: WeightFormatOptions
    @Option(help: "Base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8080.")
    var baseURL: String?
    @Option(help: "API key for the server (default: $OPENAI_API_KEY).")
    var apiKey: String?
    @Flag(help: "Use /v1/chat/completions instead of /v1/completions.")
    var chat = false
    @Option(help: "Requests in flight at once (openai).")
    var parallel = 4
    @Option(help: "Seconds before a request times out (openai).")
    var timeout: Double = 120
    @Option(help: "Attempts per request (openai).")
    var attempts = 3
    @Option(help: "A GGUF file whose tokenizer counts prompt tokens (default: the local model's; with openai, an approximation).")
    var tokenizer: String?

    @OptionGroup var retrieval: RetrievalOptions
    @Option(help: "Passages retrieved per instruction.")
    var k = 3
    @Option(help: "Token budget of the passages in a response prompt.")
    var passageBudget = 512
    @Option(help: "Brainstorm prompts per round, generated as one batch (fewer in the last rounds).")
    var promptsPerRound = 8
    @Option(help: ArgumentHelp("How the local model sees a brainstorm prompt: completion (plain text it continues, as self-instruct; the default) or chat (one user turn of its chat template). With --backend openai, --chat decides.", valueName: "chat|completion"))
    var brainstormPrompt: String?
    @Option(help: ArgumentHelp("How the local model sees a response prompt: chat (the default) or completion.", valueName: "chat|completion"))
    var responsePrompt: String?
    @Option(help: "Seed demonstrations (instruction, input, answer) shown in each response prompt.")
    var demonstrations = 2
    @Option(help: "Brainstorm sampling temperature (the paper, with a 30B base model: 1.0).")
    var brainstormTemperature = SamplingSettings.brainstorm.temperature
    @Option(help: "Brainstorm nucleus (top-p) (the paper: 0.98).")
    var brainstormTopP = SamplingSettings.brainstorm.topP
    @Option(help: "Response temperature (0 = greedy).")
    var responseTemperature = SamplingSettings.respond.temperature
    @Option(help: "An evaluation file whose 13-grams must not appear in the data (repeatable).")
    var eval: [String] = []

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be positive") }
        if k < 1 || k > 20 { throw ValidationError("--k must be in 1...20") }
        if promptsPerRound < 1 || promptsPerRound > 256 { throw ValidationError("--prompts-per-round must be in 1...256") }
        if parallel < 1 || attempts < 1 { throw ValidationError("--parallel and --attempts must be positive") }
        for (name, value) in [("--brainstorm-prompt", brainstormPrompt), ("--response-prompt", responsePrompt)] {
            guard let value else { continue }
            if !["chat", "completion"].contains(value) { throw ValidationError("\(name) must be chat or completion, not '\(value)'") }
            if backend == "openai" { throw ValidationError("\(name) is for the local engine; with --backend openai, --chat picks the endpoint for both stages") }
        }
        for (name, t) in [("--brainstorm-temperature", brainstormTemperature), ("--response-temperature", responseTemperature)] where !(t >= 0 && t <= 5) {
            throw ValidationError("invalid \(name) \(t): expected in [0, 5]")
        }
        if demonstrations < 0 || demonstrations > 8 { throw ValidationError("--demonstrations must be in 0...8") }
        if !(brainstormTopP > 0 && brainstormTopP <= 1) { throw ValidationError("invalid --brainstorm-top-p \(brainstormTopP): expected in (0, 1]") }
        if db == nil && !noRetrieval { throw ValidationError("pass --db FILE for grounded responses, or --no-retrieval") }
        switch backend {
        case "openai":
            if baseURL.flatMap(URL.init(string:)) == nil { throw ValidationError("--backend openai needs --base-url URL") }
            if model == nil { throw ValidationError("--backend openai needs --model NAME") }
            if weights.bf16 { throw ValidationError("--bf16 is for the local model; the server picks its own precision") }
        case "local":
            if model == nil { throw ValidationError("--backend local needs --model FILE.gguf") }
        default: throw ValidationError("--backend must be local or openai")
        }
    }

    func makeBackend() throws -> any GenerationBackend {
        if adapter != nil && backend != "local" { throw ValidationError("--adapter works with --backend local (serve the adapter for openai)") }
        if backend == "openai" {
            return OpenAIBackend(.init(baseURL: URL(string: baseURL!)!, model: model!,
                                       apiKey: apiKey ?? ProcessInfo.processInfo.environment["OPENAI_API_KEY"],
                                       chat: chat, parallel: parallel, attempts: attempts, timeout: timeout))
        }
        // The in-process engine: prompts as plain completions or one user turn of the model's chat
        // template (per stage), decoded together with continuous batching; Ctrl-C ends the current batch.
        return try LocalBackend(modelPath: model!, adapterPath: adapter, chat: true, maxBatch: 16,
                                weightFormat: try weights.modelOptions().weightFormat,
                                shouldStop: { interruptRequested.load(ordering: .relaxed) })
    }

    func makeRetriever() throws -> (Retriever, SearchMode)? {
        guard !noRetrieval, let db else { return nil }
        let (retriever, mode) = try retrieval.open(db)
        if retrieval.mode == nil && mode == .bm25 && !output.quiet {
            Terminal.note("note: \(db) has no embeddings; grounding with BM25 (run `selfspec embed --db \(db)` for hybrid)")
        }
        return (retriever, mode)
    }

    func run() throws {
        let started = Date()
        Terminal.trapInterrupts()
        let seedSet = try SeedLoader.load(path: seeds)
        let given = try instructions.map { try InstructionLoader.load(path: $0) }
        let backend = try makeBackend()
        let opened = try makeRetriever()
        let retriever = opened?.0
        var contamination = ContaminationIndex()
        for f in eval { try contamination.addFile(f) }
        var counter: TokenCounter = approximateTokenCount
        if let t = tokenizer {
            let tok = try TokenizerFactory.make(metadata: GGUFFile(path: t).metadata)
            counter = { tok.encode($0).count }
        } else if let local = backend as? LocalBackend {
            counter = { local.countTokens($0) }
        }
        var config = SelfSpecializer.Configuration()
        config.count = count; config.seed = seed; config.k = k; config.passageBudget = passageBudget
        config.promptsPerRound = promptsPerRound
        config.demonstrations = demonstrations
        config.brainstormSampling.temperature = brainstormTemperature
        config.brainstormSampling.topP = brainstormTopP
        config.respondSampling.temperature = responseTemperature
        if backend is LocalBackend {
            // Unset, each stage keeps its default form (SamplingSettings.brainstorm / .respond).
            if let p = brainstormPrompt { config.brainstormSampling.chat = p == "chat" }
            if let p = responsePrompt { config.respondSampling.chat = p == "chat" }
        } else {
            // The server's endpoint decides the form of both stages (recorded as `endpoint=chat`).
            config.brainstormSampling.chat = true
            config.respondSampling.chat = true
        }
        config.searchMode = opened?.1 ?? retrieval.mode.flatMap(SearchMode.init(rawValue:)) ?? .bm25
        let seedsHash = try SHA256.hexDigest(ofFile: seeds).prefix(16)
        let fingerprint = config.fingerprint(seedsFile: String(seedsHash), model: backend.modelIdentifier, grounded: retriever != nil)
            + (backend is LocalBackend || !chat ? "" : " endpoint=chat")
            + " eval=\(eval.joined(separator: ","))"
            + (instructions.map { " instructions=\((try? SHA256.hexDigest(ofFile: $0).prefix(16)) ?? "?")" } ?? "")
        let store = try DatasetStore(directory: out, settings: fingerprint, resume: resume)
        if retriever == nil && !output.quiet { Terminal.note("note: ungrounded run (no retrieval): responses cite no passages") }
        if backend is LocalBackend, !output.quiet, let hint = weights.speedHint { Terminal.note(hint) }
        let line = StatusLine(enabled: !output.quiet)
        let pipeline = SelfSpecializer(backend: backend, retriever: retriever, seeds: seedSet, configuration: config,
                                       contamination: contamination, countTokens: counter, instructions: given)
        var interrupted = false
        let stats = try pipeline.run(into: store) { p in
            line.show(p)
            if interruptRequested.load(ordering: .relaxed) { interrupted = true; return .stop }
            return .more
        }
        line.finish()
        interrupted = interrupted || interruptRequested.load(ordering: .relaxed)
        if output.json { try Terminal.printJSON(stats) } else { SpecializeGenerate.printSummary(stats, dir: out, target: count, wall: Date().timeIntervalSince(started)) }
        if interrupted && stats.examples < count {
            Terminal.error("interrupted; finished rounds are kept — run the same command with --resume to continue")
            throw ExitCode(130)
        }
        if let given, stats.instructionsKept >= given.count, stats.examples < count {
            Terminal.note("all \(given.count) instructions of \(instructions!) answered: \(stats.examples) examples kept")
            return
        }
        if stats.examples < count {
            Terminal.error("stopped at \(stats.examples) of \(count) examples: \(config.patience) rounds in a row kept nothing (see the filter counts)")
            throw ExitCode.failure
        }
    }

    static func printSummary(_ s: DatasetStats, dir: String, target: Int, wall: Double) {
        let minutes = max(s.seconds, 1e-3) / 60
        print("\(s.examples) examples in \(dir)/examples.jsonl (target \(target)) · \(s.rounds) round\(s.rounds == 1 ? "" : "s") · \(ProgressLine.duration(s.seconds)) · \(String(format: "%.1f", Double(s.examples) / minutes)) examples/min")
        print(String(format: "instructions: %d parsed, %d kept (%.0f%%); responses: %d requested, %d kept (%.0f%%)",
                     s.candidates, s.instructionsKept, s.instructionKeptRatio * 100, s.responsesRequested, s.examples, s.responseKeptRatio * 100))
        if !s.filtered.isEmpty {
            print("filtered:")
            for (reason, n) in s.filtered.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
                print("  \(reason.padding(toLength: max(21, reason.count + 1), withPad: " ", startingAt: 0)) \(n)")
            }
        }
        let hist = s.rougeLHistogram.enumerated().map { String(format: "%.1f:%d", Double($0.offset) / 10, $0.element) }.joined(separator: " ")
        print("ROUGE-L to the nearest earlier instruction: \(hist)")
        print("leading verbs: " + s.topVerbs(10).map { "\($0.verb) \($0.count)" }.joined(separator: ", "))
        if let epm = s.examplesPerMinute {
            let share = { (k: String) in String(format: "%.0f%%", 100 * (s.stageSeconds[k] ?? 0) / max(s.seconds, 1e-9)) }
            let brainstorm = s.instructionsPerMinute.map { String(format: "brainstorm %.1f instructions/min (%@ of the time), ", $0, share("brainstorm")) }
            print("per stage: " + (brainstorm ?? "no brainstorming (given instructions), ")
                  + String(format: "retrieval %@, responses %.1f examples/min (%@)", share("retrieve"), epm, share("respond")))
        }
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        print(String(format: "CPU utilisation of this process: %.0f%% of %d cores (%.0f s CPU over %.0f s, model loading included)",
                     100 * cpu / max(wall, 1e-9) / Double(ProcessInfo.processInfo.activeProcessorCount),
                     ProcessInfo.processInfo.activeProcessorCount, cpu, wall))
        if !s.examplesByTask.isEmpty {
            let tasks = s.examplesByTask.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            print("examples by task (nearest seed): " + tasks.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
    }
}

/// The generate progress line: examples, examples/min, kept ratios, ETA (stderr, terminal only).
final class StatusLine {
    private let enabled: Bool
    private var shown = false
    init(enabled: Bool) { self.enabled = enabled && Terminal.stderrIsTTY }

    func show(_ p: SelfSpecializer.Progress) {
        guard enabled else { return }
        let perMinute = Double(p.examplesThisRun) / max(p.elapsed, 1e-3) * 60
        let left = max(0, p.target - p.examples)
        let eta = perMinute > 0 ? ProgressLine.duration(Double(left) / perMinute * 60) : "?"
        let line = String(format: "generate: %d/%d examples · %.1f/min · kept %.0f%% instructions, %.0f%% responses · round %d · ETA %@",
                          p.examples, p.target, perMinute, p.stats.instructionKeptRatio * 100, p.stats.responseKeptRatio * 100, p.round + 1, eta)
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        shown = true
    }

    func finish() {
        guard enabled, shown else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

// MARK: - bench filter

/// The stage-1 novelty filter alone (Benchmarks/filter.sh runs it beside rouge_score).
struct SpecializeBenchFilter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-filter",
        abstract: "Time the ROUGE-L novelty filter: keep each line of FILE whose ROUGE-L to every kept line is below 0.7.")

    @Argument(help: "A text file, one instruction a line.")
    var file: String
    @Flag(help: "Print JSON.")
    var json = false

    struct Result: Encodable { var engine: String; var instructions: Int; var kept: Int; var seconds: Double; var instructionsPerSecond: Double; var exactLCS: Int; var pairs: Int }

    func run() throws {
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        let start = Date()
        var index = RougeLIndex()
        var kept = 0
        for l in lines where index.maxScore(l).score < 0.7 { index.add(l); kept += 1 }
        let dt = Date().timeIntervalSince(start)
        let r = Result(engine: "selfspec RougeLIndex", instructions: lines.count, kept: kept, seconds: (dt * 1000).rounded() / 1000,
                       instructionsPerSecond: (Double(lines.count) / dt).rounded(), exactLCS: index.exactComparisons,
                       pairs: index.exactComparisons + index.prunedComparisons)
        if json { try Terminal.printJSON(r) } else {
            print("\(lines.count) instructions, \(kept) kept, in \(String(format: "%.3f", dt)) s; exact LCS on \(r.exactLCS) of \(r.pairs) pairs")
        }
    }
}
