import Foundation
import VectorIndex

/// Self-specialization (Kang et al. 2024) as a resumable pipeline:
/// stage 1 brainstorms instructions from 3 random seeds per prompt and filters them (self-instruct
/// rules, ROUGE-L < 0.7 against seeds and kept instructions); stage 2 retrieves passages for each
/// instruction, asks for a grounded response (a few seed demonstrations, greedy decoding) and
/// filters it; examples that overlap the evaluation data (13-grams) are dropped. Work proceeds in
/// rounds; each round is committed to the ``DatasetStore`` before the next starts.
public final class SelfSpecializer {
    public struct Configuration: Sendable {
        /// Examples to produce.
        public var count = 200
        /// Makes the run reproducible (with a deterministic backend).
        public var seed: UInt64 = 0
        /// Brainstorm prompts per round (sent as one batch; fewer in the last rounds, see
        /// ``prompts(needed:examples:promptsSoFar:)``).
        public var promptsPerRound = 8
        /// New tasks asked for in each brainstorm prompt.
        public var tasksPerPrompt = 4
        /// Passages retrieved per instruction.
        public var k = 3
        public var searchMode: SearchMode = .hybrid
        /// Token budget of the passages in a response prompt.
        public var passageBudget = 512
        /// Seed demonstrations in a response prompt.
        public var demonstrations = 2
        public var brainstormSampling = SamplingSettings.brainstorm
        public var respondSampling = SamplingSettings.respond
        /// Stop after this many rounds in a row that keep no example (the model writes only junk).
        public var patience = 20
        public var instructionFilter = InstructionFilter()
        public var responseFilter = ResponseFilter()

        public init() {}

        /// Brainstorm prompts for a round when `needed` examples are still missing: `promptsPerRound`,
        /// or fewer near the end: enough for the missing examples, plus a quarter, at the examples
        /// per prompt this run has had so far (`examples` from `promptsSoFar` prompts; before a
        /// full round, `tasksPerPrompt / 8`), so the last rounds neither starve nor overshoot much.
        public func prompts(needed: Int, examples: Int = 0, promptsSoFar: Int = 0) -> Int {
            let prior = Double(max(tasksPerPrompt, 1)) / 8
            let yield = promptsSoFar >= promptsPerRound ? max(Double(examples) / Double(promptsSoFar), 0.05) : prior
            let enough = Int((1.25 * Double(max(needed, 1)) / yield).rounded(.up))
            return max(1, min(promptsPerRound, enough))
        }

        /// The settings a resumed run must share, as one line.
        public func fingerprint(seedsFile: String, model: String, grounded: Bool) -> String {
            "seed=\(seed) seeds=\(seedsFile) model=\(model) retrieval=\(grounded ? searchMode.rawValue : "none") k=\(k) budget=\(passageBudget) demos=\(demonstrations) prompts=\(promptsPerRound)x\(tasksPerPrompt) brainstorm=\(brainstormSampling.temperature)/\(brainstormSampling.topP)/\(brainstormSampling.maxTokens) respond=\(respondSampling.temperature)/\(respondSampling.topP)/\(respondSampling.maxTokens)"
                + (brainstormSampling.chat ? "" : " brainstorm_prompt=completion") + (respondSampling.chat ? "" : " response_prompt=completion")
        }
    }

    /// Reported after each round; return `.stop` to end the run after it (it stays resumable).
    public struct Progress: Sendable {
        public var round: Int
        public var examples: Int
        public var target: Int
        public var stats: DatasetStats
        /// Seconds of this process (not counting earlier runs of a resumed one).
        public var elapsed: Double
        /// Examples made by this process.
        public var examplesThisRun: Int
    }

    public enum Control: Sendable { case more, stop }

    public let backend: any GenerationBackend
    public let retriever: Retriever?
    public let seeds: [Seed]
    public let configuration: Configuration
    public let contamination: ContaminationIndex
    public let countTokens: TokenCounter
    /// Instructions to answer instead of brainstorming (an earlier run's, for regenerating its
    /// responses with a specialized model): taken in order, a round's worth at a time.
    public let instructions: [InstructionCandidate]?

    /// - Parameters:
    ///   - retriever: nil for the ungrounded variant (no index).
    ///   - contamination: evaluation n-grams; examples that overlap them are dropped.
    ///   - countTokens: the model's token counter for the passage budget.
    ///   - instructions: skip stage 1 and answer these (in order, unfiltered); the run ends when
    ///     they are used up.
    public init(backend: any GenerationBackend, retriever: Retriever?, seeds: [Seed], configuration: Configuration,
                contamination: ContaminationIndex = ContaminationIndex(), countTokens: @escaping TokenCounter = approximateTokenCount,
                instructions: [InstructionCandidate]? = nil) {
        self.backend = backend; self.retriever = retriever; self.seeds = seeds
        self.configuration = configuration; self.contamination = contamination; self.countTokens = countTokens
        self.instructions = instructions
    }

    /// Runs rounds until `count` examples are in `store`, the given `instructions` are used up,
    /// the callback says stop, `patience` rounds in a row keep nothing, or the backend cancels a batch (Ctrl-C with the local
    /// engine): that round is dropped whole, so `--resume` redoes it from its start.
    /// - Returns: the stats of the last committed round.
    /// - Throws: ``GeneratorError/generationFailed(model:reason:)`` when every request of one
    ///   stage failed in 3 rounds in a row (after committing what was done), retrieval and file errors.
    public func run(into store: DatasetStore, progress: (Progress) -> Control = { _ in .more }) throws -> DatasetStats {
        guard !seeds.isEmpty else { throw GeneratorError.invalidSettings("the seed set is empty") }
        let c = configuration
        var filter = c.instructionFilter
        for s in seeds { filter.remember(InstructionCandidate(instruction: s.instruction, input: s.input)) }
        let earlier = try store.keptInstructions()
        for k in earlier { filter.remember(k) }
        var used = earlier.count  // of `instructions`: each round records those it answered
        var labeller = TaskLabeller(seeds: seeds)
        var stats = store.progress.stats
        let start = Date(), startExamples = stats.examples, startSeconds = stats.seconds
        var barren = 0, failedRounds = ["brainstorm": 0, "response": 0]
        while stats.examples < c.count && barren < c.patience && used < (instructions?.count ?? .max) {
            let round = store.progress.nextRound
            var rng = SeededRandom.forItem(round, seed: c.seed)
            // Stage 1: brainstorm and filter (or the next given instructions).
            let prompts = instructions != nil ? [] : (0..<c.prompts(needed: c.count - stats.examples, examples: stats.examples,
                                                                    promptsSoFar: stats.brainstormPrompts)).map { _ in
                BrainstormPrompt.make(pool: seeds, using: &rng, tasksToWrite: c.tasksPerPrompt)
            }
            var bs = c.brainstormSampling
            if bs.stop.isEmpty { bs.stop = BrainstormPrompt.stops }
            bs.seed = rng.next() >> 1
            var clock = Date()
            func lap(_ stage: String) {
                stats.stageSeconds[stage, default: 0] += Date().timeIntervalSince(clock)
                clock = Date()
            }
            let ideas = prompts.isEmpty ? [] : backend.complete(prompts.map(\.text), settings: bs)
            if ideas.contains(where: \.wasCancelled) { return store.progress.stats }
            if !prompts.isEmpty { lap("brainstorm") }
            stats.brainstormPrompts += prompts.count
            var kept: [InstructionCandidate] = []
            var keptTasks: [String?] = []
            let remaining = c.count - stats.examples
            for (p, out) in zip(prompts, ideas) {
                if out.error != nil { stats.count(.backendError); continue }
                let parsed = BrainstormParser.parse(p.completionPrefix + " " + out.text)
                for _ in 0..<parsed.unparseable { stats.count(.unparseable) }
                for cand in parsed.candidates where kept.count < remaining {
                    stats.candidates += 1
                    let (reason, score) = filter.check(cand)
                    if reason == nil || reason == .similar { stats.recordRouge(score) }
                    if let reason { stats.count(reason); continue }
                    kept.append(cand)
                    keptTasks.append(labeller.task(of: cand))
                    stats.instructionsKept += 1
                    if let verb = RougeVocabulary.words(cand.instruction).first { stats.leadingVerbs[verb, default: 0] += 1 }
                }
            }
            if let instructions {
                kept = Array(instructions[used..<min(instructions.count, used + min(remaining, c.promptsPerRound * c.tasksPerPrompt))])
                keptTasks = kept.map { labeller.task(of: $0) }
                used += kept.count
                stats.candidates += kept.count
                stats.instructionsKept += kept.count
                for cand in kept { if let verb = RougeVocabulary.words(cand.instruction).first { stats.leadingVerbs[verb, default: 0] += 1 } }
            }
            // Stage 2: retrieve and respond.
            clock = Date()
            var prompts2: [ResponsePrompt] = []
            for cand in kept {
                let hits = try retriever?.search(cand.instruction + " " + cand.input, k: c.k, mode: c.searchMode) ?? []
                var demos = seeds
                demos.shuffle(using: &rng)
                prompts2.append(ResponsePrompt.make(instruction: cand.instruction, input: cand.input, hits: hits,
                                                    demonstrations: Array(demos.prefix(c.demonstrations)),
                                                    passageBudget: c.passageBudget, countTokens: countTokens))
            }
            lap("retrieve")
            var rs = c.respondSampling
            rs.seed = rng.next() >> 1
            if rs.stop.isEmpty { rs.stop = ResponsePrompt.stops }
            clock = Date()
            let answers = prompts2.isEmpty ? [] : backend.complete(prompts2.map(\.text), settings: rs)
            if answers.contains(where: \.wasCancelled) { return store.progress.stats }
            lap("respond")
            stats.responsesRequested += answers.count
            var examples: [Example] = []
            func form(_ s: SamplingSettings) -> String { backend.usesChat(for: s) ? "chat" : "completion" }
            let settings = ExampleSettings(
                temperature: rs.temperature, topP: rs.topP, maxTokens: rs.maxTokens,
                retrieval: retriever == nil ? "none" : c.searchMode.rawValue, k: c.k, seed: c.seed, round: round,
                prompt: form(rs), demonstrations: min(c.demonstrations, seeds.count),
                brainstorm: instructions != nil ? nil : .init(temperature: bs.temperature, topP: bs.topP, maxTokens: bs.maxTokens, prompt: form(bs)))
            for (((cand, task), prompt), answer) in zip(zip(zip(kept, keptTasks), prompts2), answers) {
                if let reason = c.responseFilter.check(answer, passages: prompt.passageTexts, task: [cand.instruction, cand.input],
                                                         demonstrations: prompt.demonstrations) { stats.count(reason); continue }
                let output = answer.text.trimmingCharacters(in: .whitespacesAndNewlines)
                if contamination.overlaps(cand.instruction) || contamination.overlaps(cand.input) || contamination.overlaps(output) {
                    stats.count(.contaminated); continue
                }
                if let task { stats.examplesByTask[task, default: 0] += 1 }
                examples.append(Example(instruction: cand.instruction, input: cand.input, output: output, task: task,
                                        passages: prompt.passages, modelSHA256: backend.modelSHA256,
                                        model: backend.modelIdentifier, settings: settings))
            }
            stats.examples += examples.count
            stats.rounds += 1
            stats.seconds = startSeconds + Date().timeIntervalSince(start)
            try store.commitRound(instructions: kept, examples: examples, stats: stats)
            barren = examples.isEmpty ? barren + 1 : 0
            // A stage whose every request failed (an unreachable endpoint, prompts the model's
            // context cannot hold): after 3 such rounds in a row, stop with the last error.
            for (stage, completions) in [("brainstorm", ideas), ("response", answers)] where !completions.isEmpty {
                let allFailed = completions.allSatisfy { $0.error != nil }
                failedRounds[stage] = allFailed ? failedRounds[stage]! + 1 : 0
                if failedRounds[stage]! >= 3 {
                    throw GeneratorError.generationFailed(model: backend.modelIdentifier,
                                                          reason: "every \(stage) request of 3 rounds in a row failed; last error: \(completions.last?.error ?? "?")")
                }
            }
            let p = Progress(round: round, examples: stats.examples, target: c.count, stats: stats,
                             elapsed: Date().timeIntervalSince(start), examplesThisRun: stats.examples - startExamples)
            if progress(p) == .stop { break }
        }
        return stats
    }
}

// MARK: - Task labels

/// Labels a brainstormed task with the task family of the seed it is most like: the seed whose
/// instruction has the highest ROUGE-L against the new instruction (ties: the one with the higher
/// word-overlap bound, then the earlier seed; deterministic).
/// Nil when no seed shares a word with it.
struct TaskLabeller {
    private var index = RougeLIndex()
    private let tasks: [String]

    init(seeds: [Seed]) {
        tasks = seeds.map(\.task)
        for s in seeds { index.add(s.instruction) }
    }

    mutating func task(of candidate: InstructionCandidate) -> String? {
        guard let i = index.maxScore(candidate.instruction).index else { return nil }
        return tasks[i]
    }
}
