import XCTest
@testable import LLM

/// Single-stream and batched generation on SmolLM2.
final class GenerationTests: XCTestCase {
    func generator() throws -> TextGenerator {
        TextGenerator(model: try SharedLlama.model(), tokenizer: try SharedModel.bpe())
    }

    /// Continuous batching gives the single-stream greedy tokens: the golden prompts (whose 24
    /// greedy tokens are known) plus others, more requests than slots so finished sequences are
    /// replaced, in a batch large enough for the sgemm path and one small enough for the
    /// quantized kernels.
    func testBatchedEqualsSingleStreamAndGolden() throws {
        let gen = try generator()
        let tok = try SharedModel.bpe()
        let golden = try LlamaGoldenTests.cases()
        var requests = golden.map { GenerationRequest(prompt: $0.ids, maxTokens: 24, stopAtEndOfSequence: false) }
        for (i, text) in ["Vitamin C deficiency causes", "The capital of France is", "def fibonacci(n):",
                          "Insulin is produced by", "In 1905, Albert Einstein"].enumerated() {
            requests.append(GenerationRequest(prompt: tok.encode(text), maxTokens: 8 + 4 * i))
        }
        let single = try requests.map { try gen.generate($0) }
        for (g, s) in zip(golden, single) { XCTAssertEqual(s.tokens, g.greedy, "single-stream vs golden") }
        for maxBatch in [3, 8] {
            var batched = [Int: GenerationResult]()
            var order = [Int]()
            gen.generateBatch(requests, maxBatch: maxBatch) { i, result in
                order.append(i)
                batched[i] = try? result.get()
            }
            XCTAssertEqual(Set(order), Set(requests.indices))
            var same = 0
            for i in requests.indices {
                XCTAssertEqual(batched[i]?.tokens, single[i].tokens, "request \(i), maxBatch \(maxBatch)")
                XCTAssertEqual(batched[i]?.text, single[i].text)
                if batched[i]?.tokens == single[i].tokens { same += 1 }
            }
            print("batched (maxBatch \(maxBatch)) = single stream for \(same)/\(requests.count) requests; finish order \(order)")
        }
    }

    /// Prompts sharing a long prefix (a system turn and the same instructions): the prefix is
    /// prefilled once and copied into every cache; the greedy tokens equal single-stream ones, and
    /// a prompt that is all prefix, one that shares little, and a lone request still work.
    func testSharedPromptPrefixGivesSingleStreamTokens() throws {
        let gen = try generator()
        let tok = try SharedModel.bpe()
        let head = "<|im_start|>system\nYou are a biomedical expert. Answer in one short sentence, citing the mechanism.<|im_end|>\n<|im_start|>user\n"
        let questions = ["What does metformin inhibit?", "Which enzyme does aspirin block?", "What causes scurvy?",
                         "Where is insulin made?", "What does warfarin antagonise?"]
        var prompts = questions.map { tok.encode(head + $0 + "<|im_end|>\n<|im_start|>assistant\n", addBOS: false, parseSpecial: true) }
        let shared = TextGenerator.commonPrefix(prompts)
        XCTAssertGreaterThanOrEqual(shared.count, TextGenerator.minSharedPrefix)
        prompts.append(shared)  // all prefix: prefilled in full, not from the shared cache
        let requests = prompts.map { GenerationRequest(prompt: $0, maxTokens: 16, stopAtEndOfSequence: false) }
        let single = try requests.map { try gen.generate($0) }
        for maxBatch in [2, 6] {
            var batched = [Int: GenerationResult]()
            gen.generateBatch(requests, maxBatch: maxBatch) { i, result in batched[i] = try? result.get() }
            for i in requests.indices {
                XCTAssertEqual(batched[i]?.tokens, single[i].tokens, "request \(i), maxBatch \(maxBatch)")
            }
        }
        // Sharing too little to bother, and one request alone.
        let other = GenerationRequest(prompt: tok.encode("Vitamin C deficiency causes"), maxTokens: 8)
        var results = [Int: GenerationResult]()
        gen.generateBatch([requests[0], other], maxBatch: 2) { i, r in results[i] = try? r.get() }
        XCTAssertEqual(results[0]?.tokens, single[0].tokens)
        XCTAssertEqual(results[1]?.tokens, try gen.generate(other).tokens)
        print("shared prefix \(shared.count) of \(prompts.map(\.count)) prompt tokens: batched = single stream")
    }

    func testStreamingTextAndStops() throws {
        let gen = try generator()
        let tok = try SharedModel.bpe()
        let prompt = tok.encode("The mitochondria is the powerhouse of the")
        var pieces = [String]()
        let full = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: 24, stopAtEndOfSequence: false)) {
            pieces.append($0); return .more
        }
        XCTAssertEqual(pieces.joined(), full.text)
        XCTAssertEqual(full.text, tok.decode(full.tokens, skipSpecial: true))
        XCTAssertEqual(full.finishReason, .length)
        // Golden greedy text: " cell, responsible for energy production. Mitochondria are ..."
        let stopped = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: 24, stopStrings: ["energy prod"]))
        XCTAssertEqual(stopped.text, " cell, responsible for ")
        XCTAssertEqual(stopped.finishReason, .stopString)
        XCTAssertEqual(stopped.stopString, "energy prod")
        var count = 0
        let cancelled = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: 24)) { _ in
            count += 1; return count == 3 ? .stop : .more
        }
        XCTAssertEqual(cancelled.finishReason, .cancelled)
        XCTAssertEqual(cancelled.tokens.count, 3)
        // Control tokens never reach the text; generation ends at <|im_end|> (eos = 2) or the limit.
        let chat = try gen.generate(GenerationRequest(prompt: try LlamaGoldenTests.cases()[0].ids, maxTokens: 60))
        XCTAssertEqual(chat.text, tok.decode(chat.tokens, skipSpecial: true))
        XCTAssertFalse(chat.text.contains("<|im"))
        XCTAssertEqual(chat.finishReason == .endOfSequence, chat.tokens.last == 2)
    }

    func testSeededSamplingIsReproducible() throws {
        let gen = try generator()
        let prompt = try SharedModel.bpe().encode("Once upon a time")
        let p = SamplingParameters(temperature: 0.9, topK: 40, topP: 0.95, minP: 0.05, repetitionPenalty: 1.1, seed: 7)
        let a = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: 20, sampling: p))
        let b = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: 20, sampling: p))
        XCTAssertEqual(a.tokens, b.tokens)
        var other = p
        other.seed = 8
        let c = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: 20, sampling: other))
        XCTAssertNotEqual(a.tokens, c.tokens)

        // Batched, the sequences sample concurrently (each with its own seeded sampler): the same
        // tokens as one at a time. Four rows keep the float kernels of a single stream (more rows
        // switch to the integer kernels, whose ~1e-5 logit differences can flip a sampled draw).
        let requests = (0..<6).map { i -> GenerationRequest in
            var s = p
            s.seed = UInt64(10 + i)
            return GenerationRequest(prompt: prompt, maxTokens: 16, sampling: s)
        }
        let single = try requests.map { try gen.generate($0).tokens }
        var batched = [Int: [Int]]()
        gen.generateBatch(requests, maxBatch: 4) { i, r in batched[i] = try? r.get().tokens }
        XCTAssertEqual(requests.indices.map { batched[$0] ?? [] }, single)
        XCTAssertGreaterThan(Set(single).count, 3, "different seeds, different samples")
    }

    func testBadRequestsGiveTypedErrors() throws {
        let gen = try generator()
        let context = gen.model.config.contextLength
        XCTAssertThrowsError(try gen.generate(GenerationRequest(prompt: []))) {
            XCTAssertEqual($0 as? ModelError, .emptyPrompt)
        }
        let long = [Int](repeating: 260, count: context - 10)
        XCTAssertThrowsError(try gen.generate(GenerationRequest(prompt: long, maxTokens: 20))) {
            XCTAssertEqual($0 as? ModelError, .contextOverflow(tokens: context + 10, contextLength: context))
        }
        XCTAssertEqual(try GenerationRequest(prompt: long, maxTokens: 20, overflow: .truncatePrompt)
            .fittedPrompt(contextLength: context).count, context - 20)
        XCTAssertThrowsError(try gen.generate(GenerationRequest(prompt: [1], sampling: SamplingParameters(topP: 2)))) {
            XCTAssertEqual($0 as? SamplingError, .invalidValue(name: "top-p", value: "2.0", expected: "in (0, 1]"))
        }
        XCTAssertThrowsError(try gen.generate(GenerationRequest(prompt: [49152]))) {
            XCTAssertEqual($0 as? ModelError, .tokenOutOfRange(token: 49152, vocabularySize: 49152))
        }
        // In a batch, a bad request fails alone.
        var outcomes = [Int: Bool]()
        gen.generateBatch([GenerationRequest(prompt: []), GenerationRequest(prompt: [504], maxTokens: 2)]) { i, r in
            outcomes[i] = (try? r.get()) != nil
        }
        XCTAssertEqual(outcomes, [0: false, 1: true])
    }
}
