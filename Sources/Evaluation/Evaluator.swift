import Foundation
import LLM

/// How items are prompted and batched.
public struct EvalSettings: Sendable, Codable, Equatable {
    /// Demonstrations per prompt (0 = zero-shot).
    public var shots: Int
    /// Seeds the item sample, the demonstration draws and the bootstrap.
    public var seed: UInt64
    /// Items prefilled per scoring step.
    public var scoringBatch: Int
    /// Sentences decoded together (continuous batching) for NER.
    public var generationBatch: Int
    /// Most tokens of a NER answer.
    public var maxAnswerTokens: Int

    public init(shots: Int = 0, seed: UInt64 = 0, scoringBatch: Int = 8, generationBatch: Int = 16, maxAnswerTokens: Int = 64) {
        self.shots = shots
        self.seed = seed
        self.scoringBatch = scoringBatch
        self.generationBatch = generationBatch
        self.maxAnswerTokens = maxAnswerTokens
    }
}

/// What one model did on one task.
public struct TaskRun: Sendable {
    public var task: EvalTask
    public var outcomes: ItemOutcomes
    /// Per item: its id, the gold answer and the model's answer (a label, or the spans found).
    public var predictions: [Prediction]
    public var seconds: Double

    public var itemsPerSecond: Double { seconds > 0 ? Double(outcomes.count) / seconds : 0 }
}

/// One item's gold and predicted answer, for `predictions.jsonl`.
public struct Prediction: Sendable, Codable, Equatable {
    public var id: String
    public var gold: String
    public var predicted: String
    /// Label tasks: each option's log-probability.
    public var scores: [Double]?
}

/// Runs the tasks with one model: label tasks by option log-probability (`OptionScorer`), NER by
/// greedy generation (`TextGenerator.generateBatch`) parsed with `MentionParser`.
public final class Evaluator {
    public let model: any CausalLanguageModel
    public let prompts: PromptBuilder
    public let settings: EvalSettings

    public init(model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate, settings: EvalSettings) {
        self.model = model
        self.prompts = PromptBuilder(template: template, tokenizer: tokenizer)
        self.settings = settings
    }

    /// Evaluates `dataset`, drawing k-shot demonstrations from `demos` (already stripped of
    /// evaluated items, see `DemonstrationPool.candidates`).
    /// - Parameter progress: items done and total after each step; `false` cancels.
    /// - Throws: `EvaluationError` (missing or too few demonstrations, prompt too long),
    ///   `ModelError`, `CancellationError` when `progress` returned false.
    public func run(_ dataset: TaskDataset, demos: TaskDataset?, progress: (Int, Int) -> Bool = { _, _ in true }) throws -> TaskRun {
        let task = dataset.task
        if settings.shots > 0 {
            guard let demos else { throw EvaluationError.missingDemonstrations(task: task.rawValue, shots: settings.shots) }
            guard demos.count >= settings.shots else {
                throw EvaluationError.tooFewDemonstrations(file: demos.file, task: task.rawValue, available: demos.count,
                                                           shots: settings.shots)
            }
        }
        let start = Date()
        var run: TaskRun
        switch dataset.items {
        case let .labels(items):
            var pool: [LabelItem] = []
            if case let .labels(d)? = demos?.items { pool = d }
            run = try runLabels(task, items, pool: pool, progress: progress)
        case let .sentences(sentences):
            var pool: [NERSentence] = []
            if case let .sentences(d)? = demos?.items { pool = d }
            run = try runNER(sentences, pool: pool, progress: progress)
        }
        run.seconds = Date().timeIntervalSince(start)
        return run
    }

    // MARK: Label tasks

    func runLabels(_ task: EvalTask, _ items: [LabelItem], pool: [LabelItem], progress: (Int, Int) -> Bool) throws -> TaskRun {
        let instruction = PromptBuilder.instruction(for: task)
        let context = model.config.contextLength
        let requests = try items.enumerated().map { n, item -> ScoringRequest in
            let demos = DemonstrationPool.draw(shots: settings.shots, from: pool.count, seed: settings.seed, item: n)
                .map { Demonstration(input: pool[$0].input, answer: pool[$0].labels[pool[$0].gold]) }
            let prompt = try prompts.encode(instruction: instruction, demonstrations: demos, input: item.input)
            let options = item.labels.map(prompts.answerTokens)
            for (o, tokens) in options.enumerated() where tokens.isEmpty {
                throw EvaluationError.invalidOption(task: task.rawValue, item: item.id, option: item.labels[o])
            }
            let needed = prompt.count + (options.map(\.count).max() ?? 1) - 1
            if needed > context {
                throw EvaluationError.promptTooLong(task: task.rawValue, item: item.id, tokens: needed, contextLength: context)
            }
            return ScoringRequest(prompt: prompt, options: options)
        }
        let scorer = OptionScorer(model: model, maxBatchItems: settings.scoringBatch)
        var cancelled = false
        let scores = try scorer.score(requests) { done in
            cancelled = !progress(done, items.count)
            return !cancelled
        }
        if cancelled { throw CancellationError() }
        // Ties go to the first option in label order.
        let predicted = scores.map { s in s.indices.max { s[$0] < s[$1] || (s[$0] == s[$1] && $0 > $1) } ?? 0 }
        let predictions = zip(items, zip(predicted, scores)).map { item, p in
            Prediction(id: item.id, gold: item.labels[item.gold], predicted: item.labels[p.0], scores: p.1)
        }
        let labelCount = items.map(\.labels.count).max() ?? 0
        return TaskRun(task: task, outcomes: .labels(gold: items.map(\.gold), predicted: predicted, labelCount: labelCount),
                       predictions: predictions, seconds: 0)
    }

    // MARK: NER

    func runNER(_ sentences: [NERSentence], pool: [NERSentence], progress: (Int, Int) -> Bool) throws -> TaskRun {
        // One prompt per sentence and entity type of the file (one type in the BLURB sets).
        let types = Array(Set(sentences.flatMap { $0.entities.map(\.type) }).union(pool.flatMap { $0.entities.map(\.type) })).sorted()
        let entityTypes = types.isEmpty ? ["entity"] : types
        var requests: [GenerationRequest] = [], owners: [(sentence: Int, type: String)] = []
        let context = model.config.contextLength
        for (n, sentence) in sentences.enumerated() {
            for type in entityTypes {
                let demos = DemonstrationPool.draw(shots: settings.shots, from: pool.count, seed: settings.seed, item: n)
                    .map { Demonstration(input: "Sentence: \(pool[$0].text)", answer: PromptBuilder.nerAnswer(pool[$0], type: type)) }
                let prompt = try prompts.encode(instruction: PromptBuilder.nerInstruction(type: type), demonstrations: demos,
                                                input: "Sentence: \(sentence.text)")
                if prompt.count + settings.maxAnswerTokens > context {
                    throw EvaluationError.promptTooLong(task: "ner", item: sentence.id, tokens: prompt.count + settings.maxAnswerTokens,
                                                        contextLength: context)
                }
                requests.append(GenerationRequest(prompt: prompt, maxTokens: settings.maxAnswerTokens,
                                                  sampling: SamplingParameters(temperature: 0), stopStrings: prompts.stopStrings))
                owners.append((n, type))
            }
        }
        var answers = [String?](repeating: nil, count: requests.count)
        var failure: Error?, done = 0, cancelled = false
        let generator = TextGenerator(model: model, tokenizer: prompts.tokenizer)
        generator.generateBatch(requests, maxBatch: settings.generationBatch, shouldStop: { cancelled }) { i, result in
            switch result {
            case let .success(r): answers[i] = r.text
            case let .failure(e): failure = failure ?? e
            }
            done += 1
            if !progress(done / entityTypes.count, sentences.count) { cancelled = true }
        }
        if let failure { throw failure }
        if cancelled { throw CancellationError() }
        var counts = [SpanCounts](repeating: SpanCounts(), count: sentences.count)
        var found = [[String]](repeating: [], count: sentences.count)
        for (i, owner) in owners.enumerated() {
            let sentence = sentences[owner.sentence]
            let parsed = MentionParser.parse(answers[i] ?? "", tokens: sentence.tokens, type: owner.type)
            var c = Metrics.matchSpans(gold: sentence.entities.filter { $0.type == owner.type }, predicted: parsed.spans)
            c.falsePositives += parsed.unmatched.count
            counts[owner.sentence] += c
            found[owner.sentence] += parsed.spans.map { describe($0, sentence) } + parsed.unmatched.map { "\($0) (not in sentence)" }
        }
        let predictions = sentences.enumerated().map { n, s in
            Prediction(id: s.id, gold: s.entities.map { describe($0, s) }.joined(separator: "; "),
                       predicted: found[n].joined(separator: "; "), scores: nil)
        }
        return TaskRun(task: .ner, outcomes: .spans(counts), predictions: predictions, seconds: 0)
    }

    func describe(_ span: EntitySpan, _ sentence: NERSentence) -> String {
        "\(sentence.tokens[span.start..<span.end].joined(separator: " ")) [\(span.start),\(span.end)) \(span.type)"
    }
}
