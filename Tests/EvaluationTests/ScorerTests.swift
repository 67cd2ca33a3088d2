import Foundation
import LLM
import XCTest
@testable import Evaluation

/// The option scorer on the real SmolLM2 against a direct computation from `forward(.all)`.
final class ScorerTests: XCTestCase {
    func smolLM2() throws -> (model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate) {
        try SmolLM2.load()
    }

    /// Σ_j log P(o_j | prompt, o_<j) from one `.all` forward over prompt + option, in a fresh cache.
    func direct(_ model: any CausalLanguageModel, prompt: [Int], option: [Int]) throws -> Double {
        let tokens = prompt + option, v = model.config.vocabularySize
        let cache = model.makeCache(capacity: tokens.count)
        let logits = try model.forward([.init(cache: cache, tokens: tokens)], logits: .all)  // (T, V)
        var sum = 0.0
        for (j, t) in option.enumerated() {
            sum += LogSoftmaxRow(logits, offset: (prompt.count - 1 + j) * v, count: v).logProb(t)
        }
        return sum
    }

    func requests(_ tokenizer: any Tokenizer, _ template: ChatTemplate) throws -> [ScoringRequest] {
        let builder = PromptBuilder(template: template, tokenizer: tokenizer)
        let questions = [
            "Question: Is aspirin an anti-inflammatory drug?",
            "Context: Metformin lowered HbA1c by 1.1% versus placebo in 412 adults with type 2 diabetes.\nQuestion: Does metformin lower HbA1c?",
            "Question: Can vitamin C cure the common cold?",
        ]
        // Single- and multi-token options, so both the prefill and the continuation step are used.
        let options = ["yes", "no", "maybe", "it depends on the dose", "not enough evidence"].map(builder.answerTokens)
        XCTAssertTrue(options.contains { $0.count == 1 } && options.contains { $0.count > 2 })
        return try questions.map { q in
            ScoringRequest(prompt: try builder.encode(instruction: PromptBuilder.instruction(for: .pubmedqa), demonstrations: [], input: q),
                           options: options)
        }
    }

    func testScoresMatchDirectLogProbabilities() throws {
        let (model, tokenizer, template) = try smolLM2()
        let reqs = try requests(tokenizer, template)
        let scored = try OptionScorer(model: model, maxBatchItems: 8).score(reqs)
        var maxDiff = 0.0
        for (r, req) in reqs.enumerated() {
            for (o, option) in req.options.enumerated() {
                let want = try direct(model, prompt: req.prompt, option: option)
                maxDiff = max(maxDiff, abs(want - scored[r][o]))
                XCTAssertTrue(scored[r][o].isFinite && scored[r][o] < 0)
            }
        }
        print("option log-probabilities vs direct forward(.all) over prompt+option: max |diff| = \(maxDiff)")
        // The scorer reads the prompt's keys and values back from an f16 cache and runs shorter
        // steps (quantized kernels up to 64 rows, dense float32 above); the direct pass runs
        // prompt + option in one step. They differ by that rounding only.
        XCTAssertLessThan(maxDiff, 2e-2)
    }

    func testBatchedEqualsUnbatched() throws {
        let (model, tokenizer, template) = try smolLM2()
        let reqs = try requests(tokenizer, template)
        let batched = try OptionScorer(model: model, maxBatchItems: 8).score(reqs)
        let single = try OptionScorer(model: model, maxBatchItems: 1).score(reqs)
        let diff = zip(batched.joined(), single.joined()).map { abs($0 - $1) }.max() ?? .infinity
        print("batched (3 items per step) vs one item per step: max |diff| = \(diff)")
        // A step of at most 64 rows runs the quantized kernels (int8 activations), a longer one
        // the dense float32 copies: one item alone and three together take different kernels.
        XCTAssertLessThan(diff, 1e-2)
        // Progress counts every item and a false return stops after the first step.
        var seen: [Int] = []
        let partial = try OptionScorer(model: model, maxBatchItems: 2).score(reqs) { seen.append($0); return false }
        XCTAssertEqual(seen, [2])
        XCTAssertEqual(partial.count, 2)
    }
}

/// The real SmolLM2, loaded once for every test of this target.
enum SmolLM2 {
    static let loaded: (model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate)? = {
        guard let file = try? GGUFFile(path: Paths.smolLM2), let model = try? loadLanguageModel(file: file),
              let tokenizer = try? TokenizerFactory.make(metadata: file.metadata),
              let template = try? ChatTemplate(metadata: file.metadata) else { return nil }
        return (model, tokenizer, template)
    }()

    static func load() throws -> (model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate) {
        try XCTUnwrap(loaded, "models/SmolLM2-135M-Instruct.Q4_1.gguf is missing: run scripts/setup")
    }
}
