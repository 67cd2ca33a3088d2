import Foundation
import Tensor
import XCTest
@testable import LLM

/// The opt-in bfloat16 weight copies (`Options.weightFormat = .bfloat16`, AVX-512 BF16) against
/// `Tests/Fixtures/golden/smollm2_logits.json`: prompt logits of every golden case with a looser
/// tolerance than the float32 path (each product keeps about 3 significant digits), and batched
/// greedy decoding through the bfloat16 kernel agreeing with the golden continuation's start.
final class BFloat16WeightsTests: XCTestCase {
    func testBFloat16PromptLogitsStayNearGolden() throws {
        try XCTSkipUnless(PackedMatrix.bfloat16IsNative, "this CPU has no AVX-512 BF16 (the scalar fallback is tested in TensorTests)")
        var options = LlamaModel.Options()
        options.weightFormat = .bfloat16
        let model = try LlamaModel(file: try SharedModel.open(), options: options)
        XCTAssertEqual(model.weights.layers[0].query.packed?.format, .bfloat16)
        let v = model.config.vocabularySize
        for (n, g) in try LlamaGoldenTests.cases().enumerated() {
            let cache = model.makeCache(capacity: g.ids.count + 1, precision: .f16)
            let logits = try model.forward([.init(cache: cache, tokens: g.ids)], logits: .all)
            let last = Array(logits[((g.ids.count - 1) * v)...])
            var maxDiff: Float = 0
            for (id, expected) in zip(g.top20IDs, g.top20Logits) { maxDiff = max(maxDiff, abs(last[id] - expected)) }
            var nll = 0.0
            for t in 0..<(g.ids.count - 1) {
                let row = logits[(t * v)..<((t + 1) * v)]
                let m = row.max()!
                nll += Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) }) - Double(row[row.startIndex + g.ids[t + 1]])
            }
            nll /= Double(g.ids.count - 1)
            let top = last.indices.max { last[$0] < last[$1] }!
            print("bfloat16 golden case \(n): top-20 max |diff| \(maxDiff), mean NLL \(nll) vs \(g.meanNLL) "
                  + "(diff \(abs(nll - g.meanNLL))), argmax \(top) vs \(g.top20IDs[0])")
            XCTAssertLessThan(maxDiff, 0.25, "case \(n) top-20 logits")
            XCTAssertEqual(nll, g.meanNLL, accuracy: 2e-2, "case \(n) mean NLL")
            XCTAssertEqual(top, g.top20IDs[0], "case \(n) argmax")
        }
    }
}
