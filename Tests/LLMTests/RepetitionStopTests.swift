import XCTest
@testable import LLM

/// The loop stop: the rule on fixed token sequences, then SmolLM2 caught in a real greedy loop.
final class RepetitionStopTests: XCTestCase {
    /// The first prefix of `tokens` the rule calls a loop (its length), as generation would see it.
    func firstStop(_ rule: RepetitionStop, _ tokens: [Int]) -> Int? {
        (1...tokens.count).first { rule.loop(in: Array(tokens.prefix($0))) != nil }
    }

    func testRuleOnDeterministicSequences() {
        let rule = RepetitionStop(repeats: 2, minTokens: 32, maxPeriod: 128)
        let sentence = Array(100..<120)  // a 20-token "sentence"
        let intro = Array(1...30)
        // Written twice in a row: stops at the last token of the second copy.
        XCTAssertEqual(firstStop(rule, intro + sentence + sentence + [7, 8]), 30 + 40)
        XCTAssertEqual(rule.loop(in: intro + sentence + sentence)?.period, 20)
        XCTAssertEqual(rule.loop(in: intro + sentence + sentence)?.copies, 2)
        // Once with other text in between: no loop.
        XCTAssertNil(firstStop(rule, intro + sentence + [5] + sentence))
        // A short span must run for 32 tokens: "a, a, a, …" (period 2) stops after 16 copies, not 2.
        let pair = [9, 10]
        XCTAssertEqual(firstStop(rule, intro + Array(repeating: pair, count: 20).joined()), 30 + 32)
        XCTAssertNil(firstStop(rule, intro + Array(repeating: pair, count: 15).joined()))
        // One token 31 times is a list or a rule of dashes; 32 times is a loop.
        XCTAssertNil(firstStop(rule, Array(repeating: 5, count: 31)))
        XCTAssertEqual(firstStop(rule, Array(repeating: 5, count: 40)), 32)
        // A span longer than maxPeriod is not looked for.
        let long = Array(200..<340)  // 140 tokens
        XCTAssertNil(firstStop(rule, long + long))
        XCTAssertNotNil(firstStop(RepetitionStop(repeats: 2, minTokens: 32, maxPeriod: 140), long + long))
        // Three copies needed: two are not enough.
        let three = RepetitionStop(repeats: 3, minTokens: 48, maxPeriod: 128)
        XCTAssertNil(firstStop(three, intro + sentence + sentence))
        XCTAssertEqual(firstStop(three, intro + sentence + sentence + sentence), 30 + 60)
        // Too short to judge, and invalid settings.
        XCTAssertNil(rule.loop(in: []))
        XCTAssertNil(rule.loop(in: [1]))
        XCTAssertThrowsError(try RepetitionStop(repeats: 1).validate())
        XCTAssertThrowsError(try RepetitionStop(minTokens: 0).validate())
        XCTAssertThrowsError(try RepetitionStop(maxPeriod: 0).validate())
        XCTAssertThrowsError(try GenerationRequest(prompt: [1], repetitionStop: RepetitionStop(repeats: 0)).fittedPrompt(contextLength: 100))
    }

    /// SmolLM2's chat prompt for a PubMedQA dev question it answers, greedily, by repeating a paragraph.
    static func loopingQuestion() throws -> [Int] {
        try SharedModel.bpe().encode("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                                     + "<|im_start|>user\nIs there still a need for living-related liver transplantation in children?<|im_end|>\n"
                                     + "<|im_start|>assistant\n", addBOS: false, parseSpecial: true)
    }

    /// SmolLM2, greedy, on a PubMedQA dev question it answers by repeating a paragraph: with the
    /// default rule it stops with `.repetition` at the first repeat, its text a prefix of the
    /// unstopped answer; without the rule it runs to the limit.
    func testSmolLM2GreedyLoopStopsWithRepetition() throws {
        let gen = TextGenerator(model: try SharedLlama.model(), tokenizer: try SharedModel.bpe())
        let tok = try SharedModel.bpe()
        let prompt = try Self.loopingQuestion()
        let maxTokens = 200
        let stopped = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: maxTokens, repetitionStop: .default))
        let free = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: maxTokens))
        let loop = RepetitionStop.default.loop(in: stopped.tokens)
        print("loop stop: \(stopped.finishReason) after \(stopped.tokens.count) tokens (period \(loop?.period ?? 0), copies \(loop?.copies ?? 0)); "
              + "without it: \(free.finishReason) after \(free.tokens.count); tail \(String(stopped.text.suffix(160)).debugDescription)")
        XCTAssertEqual(stopped.finishReason, .repetition)
        XCTAssertLessThan(stopped.tokens.count, maxTokens)
        XCTAssertNotNil(loop)
        XCTAssertNil(RepetitionStop.default.loop(in: Array(stopped.tokens.dropLast())), "stops at the first token that makes a loop")
        XCTAssertEqual(free.finishReason, .length, "off by default")
        XCTAssertEqual(Array(free.tokens.prefix(stopped.tokens.count)), stopped.tokens)
        XCTAssertTrue(free.text.hasPrefix(stopped.text))
        // Batched generation stops it the same way.
        var batched: GenerationResult?
        gen.generateBatch([GenerationRequest(prompt: prompt, maxTokens: maxTokens, repetitionStop: .default),
                           GenerationRequest(prompt: tok.encode("Insulin is"), maxTokens: 8)], maxBatch: 2) { i, r in
            if i == 0 { batched = try? r.get() }
        }
        XCTAssertEqual(batched?.tokens, stopped.tokens)
        XCTAssertEqual(batched?.finishReason, .repetition)
    }

    /// The same looping question with DRY (0.8, `ask`'s default): the paragraph is not repeated,
    /// so the loop stop never fires; without DRY it does. Batched generation samples the same.
    func testSmolLM2DRYPreventsTheLoop() throws {
        let gen = TextGenerator(model: try SharedLlama.model(), tokenizer: try SharedModel.bpe())
        let tok = try SharedModel.bpe()
        let prompt = try Self.loopingQuestion()
        var dry = SamplingParameters()
        dry.dryMultiplier = 0.8
        let request = GenerationRequest(prompt: prompt, maxTokens: 200, sampling: dry, repetitionStop: .default)
        let prevented = try gen.generate(request)
        let looped = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: 200, repetitionStop: .default))
        print("DRY: \(prevented.finishReason) after \(prevented.tokens.count) tokens, tail \(String(prevented.text.suffix(160)).debugDescription); "
              + "without: \(looped.finishReason) after \(looped.tokens.count)")
        XCTAssertEqual(looped.finishReason, .repetition)
        XCTAssertNotEqual(prevented.finishReason, .repetition)
        XCTAssertNil(RepetitionStop.default.loop(in: prevented.tokens), "the answer does not end in a loop")
        var batched: GenerationResult?
        gen.generateBatch([request, GenerationRequest(prompt: tok.encode("Insulin is"), maxTokens: 8)], maxBatch: 2) { i, r in
            if i == 0 { batched = try? r.get() }
        }
        XCTAssertEqual(batched?.tokens, prevented.tokens)
    }
}
