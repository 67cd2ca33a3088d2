import Foundation
import XCTest
@testable import LLM

/// Gemma 3 270M against `Tests/Fixtures/golden/gemma3_270m_logits.json` (transformers' GGUF loader,
/// float32): prompt ids, top-20 logits at the last position within 2e-2, per-position
/// log-probabilities and mean NLL within 1e-3, and the 24 greedy tokens identical.
final class Gemma3ModelTests: XCTestCase {
    func testGoldenLogitsNLLAndGreedy() throws {
        _ = try SharedGemma.open()
        let model = try SharedGemma.model()
        let tok = try SharedGemma.spm()
        XCTAssertEqual(model.config.layerCount, 18)
        XCTAssertEqual((0..<18).filter { model.config.slidingWindow[$0] == nil }, [5, 11, 17])
        XCTAssertEqual(model.config.slidingWindow[0], 512)
        XCTAssertEqual(model.config.ropeBase[5], 1_000_000)
        XCTAssertEqual(model.config.ropeBase[4], 10_000)
        let golden = try TestPaths.json("gemma3_270m_logits.json")
        let cases = try XCTUnwrap(golden["cases"] as? [[String: Any]])
        XCTAssertFalse(cases.isEmpty)
        let V = model.config.vocabularySize
        for c in cases {
            let prompt = try XCTUnwrap(c["prompt"] as? String)
            let ids = try XCTUnwrap(c["ids"] as? [Int])
            XCTAssertEqual(tok.encode(prompt, addBOS: true, parseSpecial: true), ids)
            let logits = try model.forward(ids, allRows: true)  // (T, V)

            // Top-20 logits at the last position.
            let last = Array(logits[((ids.count - 1) * V)...])
            let topIDs = try XCTUnwrap(c["last_top20_ids"] as? [Int])
            let topLogits = try XCTUnwrap(c["last_top20_logits"] as? [Double])
            var maxLogitDiff: Float = 0
            for (id, value) in zip(topIDs, topLogits) { maxLogitDiff = max(maxLogitDiff, abs(last[id] - Float(value))) }
            let ours = last.indices.sorted { last[$0] > last[$1] }.prefix(5)
            XCTAssertEqual(Array(ours), Array(topIDs.prefix(5)), "top-5 order")

            // Log-probabilities of the next tokens and the mean NLL.
            let expectedLP = try XCTUnwrap(c["next_token_logprobs"] as? [Double])
            var maxLPDiff: Double = 0, nll: Double = 0
            for t in 0..<(ids.count - 1) {
                let row = logits[(t * V)..<((t + 1) * V)]
                let m = row.max()!
                let logSum = Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) })
                let lp = Double(row[row.startIndex + ids[t + 1]]) - logSum
                maxLPDiff = max(maxLPDiff, abs(lp - expectedLP[t]))
                nll -= lp
            }
            nll /= Double(ids.count - 1)
            let expectedNLL = try XCTUnwrap(c["mean_nll"] as? Double)

            let greedy = try model.greedy(ids, count: 24)
            let expectedGreedy = try XCTUnwrap(c["greedy_24"] as? [Int])
            print(String(format: "gemma3 %@: top-20 max |dlogit| %.2e, max |dlogprob| %.2e, NLL %.5f vs %.5f (|d| %.2e), greedy %d/24",
                         String(prompt.prefix(30)).debugDescription, maxLogitDiff, maxLPDiff, nll, expectedNLL,
                         abs(nll - expectedNLL), zip(greedy, expectedGreedy).filter { $0 == $1 }.count))
            XCTAssertLessThan(maxLogitDiff, 2e-2, prompt)
            XCTAssertLessThan(abs(nll - expectedNLL), 1e-3, prompt)
            XCTAssertEqual(greedy, expectedGreedy, prompt)
            XCTAssertEqual(tok.decode(greedy), c["greedy_24_text"] as? String)
        }
    }

    func testRejectsOtherArchitectures() throws {
        let smol = try SharedModel.open()
        XCTAssertThrowsError(try Gemma3Model(file: smol)) { error in
            XCTAssertEqual(error as? ModelError, .unsupportedArchitecture(path: smol.path, architecture: "llama",
                                                                          supported: ["gemma3"]))
        }
    }
}
