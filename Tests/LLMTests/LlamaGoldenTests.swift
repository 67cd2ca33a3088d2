import Foundation
import XCTest
@testable import LLM

/// The SmolLM2 forward pass against `Tests/Fixtures/golden/smollm2_logits.json` (transformers, float32
/// weights dequantized from the same GGUF): same ids, top-20 logits at the last position within
/// 2e-2, mean NLL within 1e-3, and the 24 greedy tokens identical when generated with the KV
/// cache. Checked twice: the float32 reference path (sgemm, f32 cache) and the fast path
/// (fused quantized decode kernels, f16 cache), which is also compared with the reference.
final class LlamaGoldenTests: XCTestCase {
    static func cases() throws -> [GoldenLogits.Case] { try GoldenLogits.cases("smollm2_logits.json") }

    func testConfig() throws {
        let model = try SharedLlama.model()
        let c = model.config
        XCTAssertEqual([c.embeddingLength, c.layerCount, c.feedForwardLength, c.headCount, c.kvHeadCount, c.headSize,
                        c.vocabularySize, c.contextLength], [576, 30, 1536, 9, 3, 64, 49152, 8192])
        XCTAssertEqual(c.ropeBase[0], 100_000)
        XCTAssertEqual(c.ropeStyle, .adjacentPairs)
        XCTAssertTrue(model.weights.tiedEmbeddings)
        XCTAssertEqual(model.weights.layers[0].query.type, .q4_1)
        XCTAssertEqual(model.weights.tokenEmbedding.type, .q8_0)
    }

    func testReferenceMatchesGolden() throws {
        try checkGolden(kernels: .reference, precision: .f32)
    }

    func testFastPathMatchesGolden() throws {
        try checkGolden(kernels: .fast, precision: .f16)
    }

    /// Decode logits of the fused quantized kernels against the float32 reference, position by
    /// position on the same tokens: the default (int16-activation integer kernels on AVX2 CPUs)
    /// and the float kernels (`integerKernelMinRows: 5`), which carry only float32 rounding.
    func testFastDecodeMatchesReference() throws {
        let floatDecode = try LlamaModel(file: try SharedModel.open(), options: .init(integerKernelMinRows: 5))
        for (model, name, tolerance) in [(try SharedLlama.model(), "default", Float(1.2e-2)), (floatDecode, "float kernels", 5e-3)] {
            let ids = try Self.cases()[1].ids
            let ref = model.makeCache(capacity: 64, precision: .f32), fast = model.makeCache(capacity: 64, precision: .f32)
            var maxDiff: Float = 0, maxLogit: Float = 0
            for id in ids {
                let a = try model.forward([.init(cache: ref, tokens: [id])], kernels: .reference)
                let b = try model.forward([.init(cache: fast, tokens: [id])], kernels: .fast)
                for (x, y) in zip(a, b) { maxDiff = max(maxDiff, abs(x - y)); maxLogit = max(maxLogit, abs(x)) }
            }
            print("fast (\(name)) vs reference decode logits: max |diff| \(maxDiff) (max |logit| \(maxLogit))")
            XCTAssertLessThan(maxDiff, tolerance, name)
        }
    }

    private func checkGolden(kernels: LlamaModel.Options.Kernels, precision: KVCache.Precision) throws {
        let tokenizer = try SharedModel.bpe()
        for g in try Self.cases() {
            XCTAssertEqual(tokenizer.encode(g.prompt, addBOS: false, parseSpecial: true), g.ids, "ids of \(g.prompt)")
        }
        try GoldenLogits.check(try SharedLlama.model(), try Self.cases(), kernels: kernels, precision: precision, label: "golden")
    }
}

/// A logits golden file (`*_logits.json`: per prompt the ids, the top-20 logits at the last
/// position, the mean NLL and 24 greedy tokens) and the check of a Llama-family model against it.
enum GoldenLogits {
    struct Case {
        let prompt: String
        let ids: [Int]
        let top20IDs: [Int]
        let top20Logits: [Float]
        let meanNLL: Double
        let greedy: [Int]
    }

    static func cases(_ file: String) throws -> [Case] {
        let golden = try TestPaths.json(file)
        let items = try XCTUnwrap(golden["cases"] as? [[String: Any]])
        return try items.map { item in
            Case(prompt: try XCTUnwrap(item["prompt"] as? String), ids: try XCTUnwrap(item["ids"] as? [Int]),
                 top20IDs: try XCTUnwrap(item["last_top20_ids"] as? [Int]),
                 top20Logits: try XCTUnwrap(item["last_top20_logits"] as? [Double]).map(Float.init),
                 meanNLL: try XCTUnwrap(item["mean_nll"] as? Double),
                 greedy: try XCTUnwrap(item["greedy_24"] as? [Int]))
        }
    }

    /// Top-20 logits at the last position within 2e-2, mean NLL within 1e-3, and the 24 greedy
    /// tokens identical when generated through the KV cache; the differences are printed.
    static func check(_ model: LlamaModel, _ cases: [Case], kernels: LlamaModel.Options.Kernels,
                      precision: KVCache.Precision, label: String) throws {
        let v = model.config.vocabularySize
        for (n, g) in cases.enumerated() {
            let cache = model.makeCache(capacity: g.ids.count + 24, precision: precision)
            let logits = try model.forward([.init(cache: cache, tokens: g.ids)], logits: .all, kernels: kernels)
            XCTAssertEqual(logits.count, g.ids.count * v)

            // Top-20 logits at the last position.
            let last = Array(logits[((g.ids.count - 1) * v)...])
            var maxDiff: Float = 0
            for (id, expected) in zip(g.top20IDs, g.top20Logits) { maxDiff = max(maxDiff, abs(last[id] - expected)) }
            let ours = last.indices.sorted { last[$0] > last[$1] }.prefix(5)
            XCTAssertEqual(Array(ours), Array(g.top20IDs.prefix(5)), "case \(n) top-5 ids")

            // Mean NLL of each next token.
            var nll = 0.0
            for t in 0..<(g.ids.count - 1) {
                let row = logits[(t * v)..<((t + 1) * v)]
                let m = row.max()!
                let logSum = Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) })
                nll += logSum - Double(row[row.startIndex + g.ids[t + 1]])
            }
            nll /= Double(g.ids.count - 1)

            // 24 greedy tokens through the KV cache.
            var generated = [Int]()
            var next = argmax(last)
            for _ in 0..<24 {
                generated.append(next)
                next = argmax(try model.forward([.init(cache: cache, tokens: [next])], kernels: kernels))
            }
            print("\(label) case \(n) [\(kernels), \(precision) cache]: top-20 max |diff| \(maxDiff), "
                  + "mean NLL \(nll) vs \(g.meanNLL) (diff \(abs(nll - g.meanNLL))), greedy \(generated == g.greedy ? "identical" : "DIFFERENT \(generated)")")
            XCTAssertLessThan(maxDiff, 2e-2, "case \(n) top-20 logits")
            XCTAssertEqual(nll, g.meanNLL, accuracy: 1e-3, "case \(n) mean NLL")
            XCTAssertEqual(generated, g.greedy, "case \(n) greedy tokens")
        }
    }
}

func argmax(_ x: [Float]) -> Int {
    var best = 0
    for i in x.indices where x[i] > x[best] { best = i }
    return best
}

/// The SmolLM2 model, loaded once per test run (with float32 weight copies for both paths).
enum SharedLlama {
    private static let loaded = Result { try LlamaModel(file: try SharedModel.open()) }
    static func model() throws -> LlamaModel {
        _ = try TestPaths.smolLM2Path()
        return try loaded.get()
    }
}
