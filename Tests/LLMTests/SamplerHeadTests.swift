import Foundation
import XCTest
@testable import LLM
import Tensor

/// The sampler sorts only the head of the vocabulary that top-k / top-p / min-p can keep; it must
/// give the distribution a full sort gives (same tokens, same order, same probabilities).
final class SamplerHeadTests: XCTestCase {
    /// The straightforward algorithm: sort all V tokens, then cut.
    func fullSort(_ logits: [Float], _ p: SamplingParameters) -> [(id: Int, probability: Float)] {
        var order = Array(logits.indices)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if p.topK > 0 && p.topK < order.count { order = Array(order.prefix(p.topK)) }
        let maxLogit = logits[order[0]]
        var probs = order.map { Double(exp((logits[$0] - maxLogit) / p.temperature)) }
        let total = probs.reduce(0, +)
        probs = probs.map { $0 / total }
        var keep = probs.count
        if p.topP < 1 {
            var mass = 0.0
            for (i, q) in probs.enumerated() {
                mass += q
                if mass >= Double(p.topP) { keep = i + 1; break }
            }
        }
        if p.minP > 0 {
            let threshold = Double(p.minP) * probs[0]
            keep = min(keep, max(1, probs.prefix(keep).firstIndex { $0 < threshold } ?? keep))
        }
        let kept = probs.prefix(keep).reduce(0, +)
        return (0..<keep).map { (order[$0], Float(probs[$0] / kept)) }
    }

    func testHeadSortGivesTheFullSortDistribution() throws {
        var rng = SplitMix64(seed: 3)
        var checked = 0, worst: Float = 0
        for spread: Float in [1, 4, 12] {
            // Logit rows like a model's: V = 49,152, some ties (rounded to 1/64).
            let logits = (0..<49_152).map { _ in ((rng.nextUnitFloat() * 2 - 1) * spread * 64).rounded() / 64 }
            for temperature: Float in [0.7, 1, 1.5] {
                for (topK, topP, minP) in [(0, 0.98, 0), (0, 0.9, 0.05), (0, 1, 0.05), (40, 0.95, 0), (40, 1, 0), (0, 1, 0)] as [(Int, Float, Float)] {
                    let params = SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP)
                    let ours = try Sampler(params).distribution(logits: logits, history: [])
                    let reference = fullSort(logits, params)
                    XCTAssertEqual(ours.map(\.id), reference.map(\.id), "spread \(spread) T \(temperature) k \(topK) p \(topP) min-p \(minP)")
                    for (a, b) in zip(ours, reference) { worst = max(worst, abs(a.probability - b.probability)) }
                    checked += 1
                }
            }
        }
        print("sampler head vs full sort: \(checked) settings, same tokens in the same order; max probability difference \(worst)")
        XCTAssertLessThan(worst, 1e-6)
    }
}
