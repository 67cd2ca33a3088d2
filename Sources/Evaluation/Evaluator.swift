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
    /// Most tokens of a label task's greedy answer (`Scoring.generate`).
    public var labelAnswerTokens: Int

    public init(shots: Int = 0, seed: UInt64 = 0, scoringBatch: Int = 8, generationBatch: Int = 16, maxAnswerTokens: Int = 64,
                labelAnswerTokens: Int = 16) {
        self.shots = shots
        self.seed = seed
        self.scoringBatch = scoringBatch
        self.generationBatch = generationBatch
        self.maxAnswerTokens = maxAnswerTokens
        self.labelAnswerTokens = labelAnswerTokens
    }
}

/// What one model did on one task.
public struct TaskRun: Sendable {
    public var task: EvalTask
    /// One per convention of the task (`task.scorings`), in that order.
    public var scored: [ScoredRun]
    /// Per item: its id, the gold answer and the model's answers.
    public var predictions: [Prediction]
    public var seconds: Double

    /// The outcomes under `scoring`, if the task was scored that way.
    public func outcomes(_ scoring: Scoring) -> ItemOutcomes? { scored.first { $0.scoring == scoring }?.outcomes }

    /// The outcomes under the task's primary convention.
    public var outcomes: ItemOutcomes { outcomes(task.primaryScoring) ?? scored[0].outcomes }

    public var itemsPerSecond: Double { seconds > 0 ? Double(outcomes.count) / seconds : 0 }
}

/// One task under one scoring convention.
public struct ScoredRun: Sendable, Equatable {
    public var scoring: Scoring
    public var outcomes: ItemOutcomes
    /// Label tasks: how often each label was predicted (`unparsed`: generated answers naming no label).
    public var labelCounts: [String: Int]?
    /// Generated answers that could not be read: label tasks, answers naming no label; NER,
    /// answers naming mentions none of which is in the sentence.
    public var parseFailures: Int?
}

/// One item's gold and predicted answer, for `predictions.jsonl`.
public struct Prediction: Sendable, Codable, Equatable {
    public var id: String
    public var gold: String
    /// The answer under the task's primary convention (a label, or the spans found).
    public var predicted: String
    /// Label tasks: the label under each convention, keyed by its name (empty when unparsed).
    public var byScoring: [String: String]?
    /// Label tasks: each option's log-probability (its exact text, the `labels` convention).
    public var scores: [Double]?
    /// The generated answer (label tasks: the greedy answer the `generate` convention parsed).
    public var answer: String?
}

/// The label written for an unparseable generated answer in histograms.
public let unparsedLabel = "unparsed"

/// Runs the tasks with one model: label tasks under every `Scoring` convention from one prefill per
/// item (`OptionScorer`), NER by greedy generation (`TextGenerator.generateBatch`) parsed with
/// `MentionParser`.
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
        let context = model.config.contextLength, tokenizer = prompts.tokenizer
        func demonstrations(_ n: Int) -> [Demonstration] {
            DemonstrationPool.draw(shots: settings.shots, from: pool.count, seed: settings.seed, item: n)
                .map { Demonstration(input: pool[$0].input, answer: pool[$0].labels[pool[$0].gold]) }
        }
        // Every option token sequence of an item once: the exact labels, then the surface forms.
        var requests: [ScoringRequest] = [], exactSlots: [[Int]] = [], formSlots: [[[Int]]] = []
        for (n, item) in items.enumerated() {
            let prompt = try prompts.encode(instruction: instruction, demonstrations: demonstrations(n), input: item.input)
            let exact = item.labels.map(prompts.answerTokens)
            for (o, tokens) in exact.enumerated() where tokens.isEmpty {
                throw EvaluationError.invalidOption(task: task.rawValue, item: item.id, option: item.labels[o])
            }
            let forms = SurfaceForms.tokens(labels: item.labels, options: item.options) {
                tokenizer.encode($0, addBOS: false, parseSpecial: false)
            }
            var options: [[Int]] = [], slot: [[Int]: Int] = [:]
            func index(_ t: [Int]) -> Int {
                if let i = slot[t] { return i }
                slot[t] = options.count
                options.append(t)
                return options.count - 1
            }
            exactSlots.append(exact.map(index))
            formSlots.append(forms.map { $0.map(index) })
            let needed = prompt.count + max((options.map(\.count).max() ?? 1) - 1, settings.labelAnswerTokens - 1)
            if needed > context {
                throw EvaluationError.promptTooLong(task: task.rawValue, item: item.id, tokens: needed, contextLength: context)
            }
            requests.append(ScoringRequest(prompt: prompt, options: options, answerTokens: settings.labelAnswerTokens))
        }
        let scorer = OptionScorer(model: model, maxBatchItems: settings.scoringBatch)
        // The content-free prompt: input "N/A" with the first item's demonstrations, every label of the task.
        let allLabels = items.max { $0.labels.count < $1.labels.count }?.labels ?? []
        let free = try prompts.encode(instruction: instruction, demonstrations: demonstrations(0), input: "N/A")
        let freeRequest = ScoringRequest(prompt: free, options: allLabels.map(prompts.answerTokens))
        let freeScores = try items.isEmpty ? [] : scorer.score([freeRequest])[0]
        let prior = Dictionary(zip(allLabels, freeScores), uniquingKeysWith: { a, _ in a })
        var cancelled = false
        let scored = try scorer.scoreAndAnswer(requests, stopTokens: stopTokens) { done in
            cancelled = !progress(done, items.count)
            return !cancelled
        }
        if cancelled { throw CancellationError() }

        var predicted = [Scoring: [Int]](), answers: [String] = []
        for (n, item) in items.enumerated() {
            let logp = scored[n].logProbs
            let exact = exactSlots[n].map { logp[$0] }
            predicted[.labels, default: []].append(Self.argmax(exact))
            predicted[.surface, default: []].append(Self.argmax(formSlots[n].map { Self.logSumExp($0.map { logp[$0] }) }))
            predicted[.calibrated, default: []].append(Self.argmax(zip(item.labels, exact).map { $1 - (prior[$0] ?? 0) }))
            let answer = Self.cut(tokenizer.decode(scored[n].answer, skipSpecial: true), at: prompts.stopStrings)
            answers.append(answer)
            predicted[.generate, default: []].append(AnswerParser.parse(answer, labels: item.labels, options: item.options) ?? -1)
        }
        let gold = items.map(\.gold), labelCount = allLabels.count
        let runs = task.scorings.map { scoring -> ScoredRun in
            let p = predicted[scoring]!
            var counts: [String: Int] = [:]
            for (item, label) in zip(items, p) { counts[label >= 0 ? item.labels[label] : unparsedLabel, default: 0] += 1 }
            return ScoredRun(scoring: scoring, outcomes: .labels(gold: gold, predicted: p, labelCount: labelCount), labelCounts: counts,
                             parseFailures: scoring == .generate ? p.filter { $0 < 0 }.count : nil)
        }
        let predictions = items.enumerated().map { n, item in
            let by = Dictionary(uniqueKeysWithValues: task.scorings.map { s in
                (s.rawValue, predicted[s]![n] >= 0 ? item.labels[predicted[s]![n]] : "")
            })
            return Prediction(id: item.id, gold: item.labels[item.gold], predicted: by[task.primaryScoring.rawValue] ?? "",
                              byScoring: by, scores: exactSlots[n].map { scored[n].logProbs[$0] }, answer: answers[n])
        }
        return TaskRun(task: task, scored: runs, predictions: predictions, seconds: 0)
    }

    /// Tokens that end a greedy answer: end of sequence, end of turn, and a one-token end-of-turn text.
    var stopTokens: Set<Int> {
        let special = prompts.tokenizer.specialTokens
        var out = Set([special.eos, special.endOfTurn].compactMap { $0 })
        for text in prompts.stopStrings {
            let ids = prompts.tokenizer.encode(text, addBOS: false, parseSpecial: true)
            if ids.count == 1 { out.insert(ids[0]) }
        }
        return out
    }

    /// The index of the largest score (the first on ties; 0 when empty).
    static func argmax(_ scores: [Double]) -> Int {
        scores.indices.max { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 > $1) } ?? 0
    }

    /// log Σ exp(x), −∞ for no terms.
    static func logSumExp(_ xs: [Double]) -> Double {
        guard let m = xs.max(), m > -.infinity else { return -.infinity }
        return m + Foundation.log(xs.reduce(0) { $0 + Foundation.exp($1 - m) })
    }

    /// `text` up to the first of `stops`, trimmed.
    static func cut(_ text: String, at stops: [String]) -> String {
        var end = text.endIndex
        for stop in stops where !stop.isEmpty {
            if let r = text.range(of: stop), r.lowerBound < end { end = r.lowerBound }
        }
        return text[..<end].trimmingCharacters(in: .whitespacesAndNewlines)
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
        var found = [[String]](repeating: [], count: sentences.count), failures = 0
        for (i, owner) in owners.enumerated() {
            let sentence = sentences[owner.sentence]
            let parsed = MentionParser.parse(answers[i] ?? "", tokens: sentence.tokens, type: owner.type)
            if parsed.spans.isEmpty && !parsed.unmatched.isEmpty { failures += 1 }
            var c = Metrics.matchSpans(gold: sentence.entities.filter { $0.type == owner.type }, predicted: parsed.spans)
            c.falsePositives += parsed.unmatched.count
            counts[owner.sentence] += c
            found[owner.sentence] += parsed.spans.map { describe($0, sentence) } + parsed.unmatched.map { "\($0) (not in sentence)" }
        }
        let predictions = sentences.enumerated().map { n, s in
            Prediction(id: s.id, gold: s.entities.map { describe($0, s) }.joined(separator: "; "),
                       predicted: found[n].joined(separator: "; "))
        }
        return TaskRun(task: .ner, scored: [ScoredRun(scoring: .generate, outcomes: .spans(counts), parseFailures: failures)],
                       predictions: predictions, seconds: 0)
    }

    func describe(_ span: EntitySpan, _ sentence: NERSentence) -> String {
        "\(sentence.tokens[span.start..<span.end].joined(separator: " ")) [\(span.start),\(span.end)) \(span.type)"
    }
}
