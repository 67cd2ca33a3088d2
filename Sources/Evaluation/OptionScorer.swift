import Foundation
import LLM

/// One item to score: a prompt, the token ids of each answer option after it, and how many
/// tokens of a greedy answer to decode from the same prompt.
public struct ScoringRequest: Sendable, Equatable {
    public var prompt: [Int]
    public var options: [[Int]]
    /// Most tokens of the greedy answer (0: none).
    public var answerTokens: Int

    public init(prompt: [Int], options: [[Int]], answerTokens: Int = 0) {
        self.prompt = prompt
        self.options = options
        self.answerTokens = answerTokens
    }
}

/// What the scorer found for one item.
public struct ScoredItem: Sendable, Equatable {
    /// Each option's log-probability, in request order.
    public var logProbs: [Double]
    /// The greedy answer's token ids, without the stop token that ended it.
    public var answer: [Int]
}

/// Scores answer options by the model's log-probability: for option tokens o_1..o_n after prompt
/// p, `score = Σ_j log P(o_j | p, o_<j)` (a sum, not a mean: the labels of a task are short and of
/// similar length, and the sum is the probability of the exact answer text).
///
/// Batched: a step prefills the prompts of several items together (one segment each, logits of
/// the last row only: the distribution of every option's first token). When an option has more
/// tokens, its prompt cache is copied and the option's tokens but the last run as one more
/// segment with logits on every row (`.all`), all such segments of the batch in one step. When
/// every option is a single token (yes/no/maybe, letters) the prefill step is all there is.
///
/// Greedy answers continue from the same prompt caches: the prefill's last row gives the first
/// token, then one decode step per further token runs every unfinished item of the batch together.
public final class OptionScorer {
    public let model: any CausalLanguageModel
    /// Most items prefilled in one step.
    public let maxBatchItems: Int
    /// Most prompt tokens in one step (at least one item always goes).
    public let maxBatchTokens: Int

    /// - Parameters:
    ///   - maxBatchItems: items per step (default 8).
    ///   - maxBatchTokens: prompt tokens per step (default 4,096).
    public init(model: any CausalLanguageModel, maxBatchItems: Int = 8, maxBatchTokens: Int = 4096) {
        self.model = model
        self.maxBatchItems = max(1, maxBatchItems)
        self.maxBatchTokens = max(1, maxBatchTokens)
    }

    /// Log-probabilities of every option of every request, `[item][option]`.
    /// - Parameter progress: called after each step with the number of items scored so far;
    ///   returning `false` stops (the result then has only the items scored so far).
    /// - Throws: `ModelError` (empty prompt, token out of range, context overflow).
    public func score(_ requests: [ScoringRequest], progress: (Int) -> Bool = { _ in true }) throws -> [[Double]] {
        try scoreAndAnswer(requests, stopTokens: [], progress: progress).map(\.logProbs)
    }

    /// Log-probabilities of every option and the greedy answer of every request.
    /// - Parameters:
    ///   - stopTokens: tokens that end a greedy answer (end of sequence, end of turn).
    ///   - progress: as in `score`.
    /// - Throws: `ModelError` (empty prompt, token out of range, context overflow).
    public func scoreAndAnswer(_ requests: [ScoringRequest], stopTokens: Set<Int>,
                               progress: (Int) -> Bool = { _ in true }) throws -> [ScoredItem] {
        var out: [ScoredItem] = []
        out.reserveCapacity(requests.count)
        var start = 0
        while start < requests.count {
            var end = start + 1, tokens = requests[start].prompt.count
            while end < requests.count, end - start < maxBatchItems, tokens + requests[end].prompt.count <= maxBatchTokens {
                tokens += requests[end].prompt.count
                end += 1
            }
            out += try scoreBatch(Array(requests[start..<end]), stopTokens: stopTokens)
            start = end
            if !progress(out.count) { break }
        }
        return out
    }

    /// Scores one batch of items: a prefill step, one step for the options' later tokens, then the
    /// greedy answers' decode steps.
    func scoreBatch(_ batch: [ScoringRequest], stopTokens: Set<Int>) throws -> [ScoredItem] {
        let v = model.config.vocabularySize
        let caches = batch.map { r in
            model.makeCache(capacity: r.prompt.count + max(0, (r.options.map(\.count).max() ?? 1) - 1, r.answerTokens - 1))
        }
        // (B, V) logits of each prompt's last position: the first option token's distribution.
        let first = try model.forward(zip(caches, batch).map { .init(cache: $0, tokens: $1.prompt) }, logits: .last)
        var scores: [[Double]] = batch.map { r in Array(repeating: 0, count: r.options.count) }
        for (b, r) in batch.enumerated() {
            let row = LogSoftmaxRow(first, offset: b * v, count: v)
            for (o, option) in r.options.enumerated() {
                guard let t = option.first else { scores[b][o] = -.infinity; continue }
                scores[b][o] = row.logProb(t)
            }
        }
        // Later tokens: one segment per multi-token option, on a copy of its prompt's cache.
        var segments: [LlamaModel.Segment] = [], owners: [(item: Int, option: Int)] = []
        for (b, r) in batch.enumerated() {
            for (o, option) in r.options.enumerated() where option.count > 1 {
                let cache = model.makeCache(capacity: caches[b].count + option.count - 1)
                cache.copy(from: caches[b])
                segments.append(.init(cache: cache, tokens: Array(option.dropLast())))
                owners.append((b, o))
            }
        }
        if !segments.isEmpty {
            // (ΣT, V): row j of a segment predicts option token j + 1.
            let rows = try model.forward(segments, logits: .all)
            var offset = 0
            for (s, owner) in owners.enumerated() {
                let option = batch[owner.item].options[owner.option]
                for j in 0..<segments[s].tokens.count {
                    let row = LogSoftmaxRow(rows, offset: (offset + j) * v, count: v)
                    scores[owner.item][owner.option] += row.logProb(option[j + 1])
                }
                offset += segments[s].tokens.count
            }
        }
        // Greedy answers on the prompt caches: the first token from the prefill rows.
        var answers = [[Int]](repeating: [], count: batch.count), active: [Int] = []
        func take(_ logits: [Float], row: Int, item b: Int) {
            let t = argmax(logits, offset: row * v, count: v)
            if stopTokens.contains(t) { return }
            answers[b].append(t)
            if answers[b].count < batch[b].answerTokens { active.append(b) }
        }
        for b in batch.indices where batch[b].answerTokens > 0 { take(first, row: b, item: b) }
        while !active.isEmpty {
            let step = active
            active = []
            // (B', V): one new token per unfinished answer.
            let logits = try model.forward(step.map { .init(cache: caches[$0], tokens: [answers[$0].last!]) }, logits: .last)
            for (row, b) in step.enumerated() { take(logits, row: row, item: b) }
        }
        return zip(scores, answers).map { ScoredItem(logProbs: $0, answer: $1) }
    }

    /// The index of the largest of `count` logits from `offset` (the first on ties).
    func argmax(_ logits: [Float], offset: Int, count: Int) -> Int {
        var best = 0
        for i in 1..<count where logits[offset + i] > logits[offset + best] { best = i }
        return best
    }
}

/// The log-softmax of one logit row, computed in double precision: `x_t - max - log Σ exp(x - max)`.
struct LogSoftmaxRow {
    let logits: ArraySlice<Float>
    let logNormalizer: Double

    init(_ all: [Float], offset: Int, count: Int) {
        logits = all[offset..<(offset + count)]
        let m = Double(logits.max() ?? 0)
        var sum = 0.0
        for x in logits { sum += Foundation.exp(Double(x) - m) }
        logNormalizer = m + Foundation.log(sum)
    }

    func logProb(_ token: Int) -> Double {
        Double(logits[logits.startIndex + token]) - logNormalizer
    }
}
