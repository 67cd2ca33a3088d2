import Foundation
import XCTest
@testable import LLM

extension SharedGemma {
    private static let loaded = Result { try Gemma3Model(file: try GGUFFile(path: url.path)) }

    /// The Gemma 3 270M model, loaded once per test run (about 400 MB of float32 weights).
    static func model(file: StaticString = #filePath, line: UInt = #line) throws -> Gemma3Model {
        _ = try open(file: file, line: line)
        return try loaded.get()
    }
}

/// The KV-cached, batched Gemma 3 forward pass (`Gemma3Model.forward(_:logits:)`, the engine
/// `TextGenerator` runs) against `Tests/Fixtures/golden/gemma3_270m_logits.json` and against itself
/// run one sequence at a time.
final class Gemma3CachedTests: XCTestCase {
    private struct Case {
        let ids: [Int]
        let topIDs: [Int]
        let topLogits: [Float]
        let nextLogprobs: [Double]
        let nll: Double
        let greedy: [Int]
    }

    private func cases() throws -> [Case] {
        let golden = try TestPaths.json("gemma3_270m_logits.json")
        let raw = try XCTUnwrap(golden["cases"] as? [[String: Any]])
        XCTAssertFalse(raw.isEmpty)
        return try raw.map { c in
            Case(ids: try XCTUnwrap(c["ids"] as? [Int]), topIDs: try XCTUnwrap(c["last_top20_ids"] as? [Int]),
                 topLogits: try XCTUnwrap(c["last_top20_logits"] as? [Double]).map(Float.init),
                 nextLogprobs: try XCTUnwrap(c["next_token_logprobs"] as? [Double]),
                 nll: try XCTUnwrap(c["mean_nll"] as? Double), greedy: try XCTUnwrap(c["greedy_24"] as? [Int]))
        }
    }

    private func argmax(_ x: ArraySlice<Float>) -> Int {
        var best = x.startIndex
        for i in x.indices where x[i] > x[best] { best = i }
        return best - x.startIndex
    }

    /// Prefill of every position (`.all`): top-20 logits and NLL against the golden file.
    func testCachedPrefillMatchesGolden() throws {
        let model = try SharedGemma.model()
        let V = model.config.vocabularySize
        for (n, g) in try cases().enumerated() {
            for kernels in [LlamaModel.Options.Kernels.reference, .fast] {
                let cache = model.makeCache(capacity: g.ids.count, precision: .f32)
                let logits = try model.forward([.init(cache: cache, tokens: g.ids)], logits: .all, kernels: kernels)
                XCTAssertEqual(cache.count, g.ids.count)
                let last = logits[((g.ids.count - 1) * V)...]
                var maxDiff: Float = 0
                for (id, value) in zip(g.topIDs, g.topLogits) { maxDiff = max(maxDiff, abs(last[last.startIndex + id] - value)) }
                var nll = 0.0, maxLP = 0.0
                for t in 0..<(g.ids.count - 1) {
                    let row = logits[(t * V)..<((t + 1) * V)]
                    let m = row.max()!
                    let lse = Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) })
                    let lp = Double(row[row.startIndex + g.ids[t + 1]]) - lse
                    maxLP = max(maxLP, abs(lp - g.nextLogprobs[t]))
                    nll -= lp
                }
                nll /= Double(g.ids.count - 1)
                print(String(format: "gemma3 cached prefill case %d [%@]: top-20 max |dlogit| %.2e, max |dlogprob| %.2e, NLL |d| %.2e",
                             n, "\(kernels)", maxDiff, maxLP, abs(nll - g.nll)))
                XCTAssertLessThan(maxDiff, 2e-2, "case \(n) \(kernels)")
                XCTAssertLessThan(abs(nll - g.nll), 1e-3, "case \(n) \(kernels)")
            }
        }
    }

    /// Prompt minus its last token prefilled, then decode one token at a time with the fast
    /// kernels and an f16 cache: the last prompt position's top-20 logits and the 24 greedy
    /// tokens against the golden file.
    func testCachedDecodeMatchesGoldenGreedy() throws {
        let model = try SharedGemma.model()
        for (n, g) in try cases().enumerated() {
            let cache = model.makeCache(capacity: g.ids.count + 24, precision: .f16)
            _ = try model.forward([.init(cache: cache, tokens: Array(g.ids.dropLast()))], logits: .last, kernels: .fast)
            var logits = try model.forward([.init(cache: cache, tokens: [g.ids.last!])], logits: .last, kernels: .fast)
            var maxDiff: Float = 0
            for (id, value) in zip(g.topIDs, g.topLogits) { maxDiff = max(maxDiff, abs(logits[id] - value)) }
            var generated = [Int]()
            for _ in 0..<24 {
                generated.append(argmax(logits[...]))
                if generated.count < 24 {
                    logits = try model.forward([.init(cache: cache, tokens: [generated.last!])], logits: .last, kernels: .fast)
                }
            }
            print(String(format: "gemma3 cached decode case %d [fast, f16 cache]: top-20 max |dlogit| %.2e, greedy %d/24",
                         n, maxDiff, zip(generated, g.greedy).filter { $0 == $1 }.count))
            XCTAssertLessThan(maxDiff, 2e-2, "case \(n)")
            XCTAssertEqual(generated, g.greedy, "case \(n)")
        }
    }

    /// All golden prompts prefilled in one step and decoded together give the same tokens as
    /// each prompt alone, and logits equal up to float summation order (f32 caches: with f16
    /// caches a last-bit difference can round a cached value the other way, ~4e-3 in logits).
    func testBatchedEqualsSingleStream() throws {
        let model = try SharedGemma.model()
        // Six prompts (each golden prompt and two shorter prefixes of it): decode steps of more than
        // four rows multiply the float32 weight copies (`gemmFewRows`), single streams the quantized kernels.
        let prompts = try cases().map(\.ids).flatMap { ids in [ids, Array(ids.dropLast()), Array(ids.dropLast(2))] }
        let steps = 12, V = model.config.vocabularySize

        func run(_ group: [[Int]]) throws -> (tokens: [[Int]], logits: [[Float]]) {
            let caches = group.map { model.makeCache(capacity: $0.count + steps, precision: .f32) }
            var logits = try model.forward(zip(caches, group).map { .init(cache: $0, tokens: $1) }, logits: .last)
            var tokens = [[Int]](repeating: [], count: group.count), all = [[Float]](repeating: [], count: group.count)
            for step in 0..<steps {
                for i in group.indices {
                    let row = logits[(i * V)..<((i + 1) * V)]
                    all[i] += row
                    tokens[i].append(argmax(row))
                }
                if step < steps - 1 {
                    logits = try model.forward(caches.indices.map { .init(cache: caches[$0], tokens: [tokens[$0].last!]) })
                }
            }
            return (tokens, all)
        }
        let batched = try run(prompts)
        var maxDiff: Float = 0
        for (i, p) in prompts.enumerated() {
            let single = try run([p])
            XCTAssertEqual(single.tokens[0], batched.tokens[i], "prompt \(i)")
            for (a, b) in zip(single.logits[0], batched.logits[i]) { maxDiff = max(maxDiff, abs(a - b)) }
        }
        print(String(format: "gemma3 batched (%d prompts) vs single-stream: max |dlogit| %.2e over %d steps",
                     prompts.count, maxDiff, steps))
        // The two paths round differently: single streams use int16 activations (within 8.8e-3 of
        // float32 logits, `LlamaGoldenTests`), the batched body float32 activations.
        XCTAssertLessThan(maxDiff, 1.2e-2)
    }

    /// Past the 512-position sliding window: a prompt prefilled in two chunks and then decoded
    /// token by token against the reference pass over the whole text (every position's logits).
    func testSlidingWindowAcrossChunksMatchesReference() throws {
        let model = try SharedGemma.model()
        let tok = try SharedGemma.spm()
        let text = String(repeating: "The mitochondria is the powerhouse of the cell, and ribosomes make proteins. ", count: 40)
        let ids = Array(tok.encode(text, addBOS: true, parseSpecial: true).prefix(560))
        XCTAssertEqual(ids.count, 560)
        XCTAssertEqual(model.config.slidingWindow[0], 512)
        let V = model.config.vocabularySize
        let reference = try model.forward(ids, allRows: true)  // (T, V)
        let cache = model.makeCache(capacity: ids.count, precision: .f32)
        var ours = try model.forward([.init(cache: cache, tokens: Array(ids[0..<500]))], logits: .all, kernels: .reference)
        ours += try model.forward([.init(cache: cache, tokens: Array(ids[500..<540]))], logits: .all, kernels: .reference)
        for t in 540..<560 {
            ours += try model.forward([.init(cache: cache, tokens: [ids[t]])], logits: .last, kernels: .reference)
        }
        var maxDiff: Float = 0
        for i in 0..<(ids.count * V) { maxDiff = max(maxDiff, abs(ours[i] - reference[i])) }
        let agree = (0..<ids.count).filter { t in
            argmax(ours[(t * V)..<((t + 1) * V)]) == argmax(reference[(t * V)..<((t + 1) * V)])
        }.count
        print(String(format: "gemma3 %d tokens (window 512), chunked cache vs reference: max |dlogit| %.2e, argmax %d/%d",
                     ids.count, maxDiff, agree, ids.count))
        XCTAssertLessThan(maxDiff, 1e-2)
        XCTAssertEqual(agree, ids.count)
    }

    /// `TextGenerator` over Gemma (greedy, f16 caches): one stream and continuous batching give
    /// the golden 24 tokens for every golden prompt.
    func testTextGeneratorGivesGoldenGreedy() throws {
        let generator = TextGenerator(model: try SharedGemma.model(), tokenizer: try SharedGemma.spm())
        let golden = try cases()
        let requests = golden.map { GenerationRequest(prompt: $0.ids, maxTokens: 24, stopAtEndOfSequence: false) }
        for (g, r) in zip(golden, requests) {
            XCTAssertEqual(try generator.generate(r).tokens, g.greedy)
        }
        var batched = [Int: [Int]]()
        generator.generateBatch(requests + requests, maxBatch: 3) { i, result in batched[i] = try? result.get().tokens }
        for i in 0..<(2 * golden.count) { XCTAssertEqual(batched[i], golden[i % golden.count].greedy, "request \(i)") }
    }

    /// `loadLanguageModel` picks the implementation from `general.architecture`.
    func testLoadLanguageModelDispatch() throws {
        let gemma = try loadLanguageModel(file: try SharedGemma.open())
        XCTAssertTrue(gemma is Gemma3Model)
        XCTAssertEqual(gemma.config.vocabularySize, 262_144)
        let smol = try loadLanguageModel(file: try SharedModel.open())
        XCTAssertTrue(smol is LlamaModel)
        XCTAssertEqual(smol.config.architecture, "llama")
    }

    /// Bad input gets typed errors and leaves the cache untouched.
    func testTypedErrors() throws {
        let model = try SharedGemma.model()
        let cache = model.makeCache(capacity: 4)
        XCTAssertThrowsError(try model.forward([.init(cache: cache, tokens: [])])) {
            XCTAssertEqual($0 as? ModelError, .emptyPrompt)
        }
        XCTAssertThrowsError(try model.forward([.init(cache: cache, tokens: [2, 262_144])])) {
            XCTAssertEqual($0 as? ModelError, .tokenOutOfRange(token: 262_144, vocabularySize: 262_144))
        }
        XCTAssertThrowsError(try model.forward([.init(cache: cache, tokens: [2, 3, 4, 5, 6])])) {
            XCTAssertEqual($0 as? ModelError, .contextOverflow(tokens: 5, contextLength: 4))
        }
        XCTAssertEqual(cache.count, 0)
    }
}
