import XCTest
@testable import LLM
import Tensor

/// Sampling on small logit vectors with exact expectations.
final class SamplerTests: XCTestCase {
    // Probabilities at temperature 1: softmax([log .5, log .3, log .15, log .05]).
    let logits: [Float] = [0.5, 0.3, 0.15, 0.05].map { Float(log($0)) }

    func testGreedyIsArgmaxFirstOnTies() throws {
        var s = try Sampler()
        XCTAssertEqual(s.next(logits: [1, 3, 3, 2], history: []), 1)
        var k1 = try Sampler(SamplingParameters(temperature: 5, topK: 1, seed: 9))
        XCTAssertEqual(k1.next(logits: [1, 3, 2], history: []), 1)
    }

    func testTopKTopPMinPKeepExactSets() throws {
        func ids(_ p: SamplingParameters) throws -> [Int] {
            try Sampler(p).distribution(logits: logits, history: []).map(\.id)
        }
        XCTAssertEqual(try ids(SamplingParameters(temperature: 1)), [0, 1, 2, 3])
        XCTAssertEqual(try ids(SamplingParameters(temperature: 1, topK: 2)), [0, 1])
        XCTAssertEqual(try ids(SamplingParameters(temperature: 1, topP: 0.79)), [0, 1])  // .5 + .3 >= .79
        XCTAssertEqual(try ids(SamplingParameters(temperature: 1, topP: 0.81)), [0, 1, 2])
        XCTAssertEqual(try ids(SamplingParameters(temperature: 1, minP: 0.25)), [0, 1, 2])  // .15 >= .125
        XCTAssertEqual(try ids(SamplingParameters(temperature: 1, minP: 0.35)), [0, 1])  // .15 < .175
        let d = try Sampler(SamplingParameters(temperature: 1, topK: 2)).distribution(logits: logits, history: [])
        XCTAssertEqual(d[0].probability, 0.625, accuracy: 1e-6)  // .5 / (.5 + .3)
        XCTAssertEqual(d[1].probability, 0.375, accuracy: 1e-6)
        // Temperature 0.5 squares the odds: .5^2 : .3^2 = .25 : .09.
        let t = try Sampler(SamplingParameters(temperature: 0.5, topK: 2)).distribution(logits: logits, history: [])
        XCTAssertEqual(t[0].probability, Float(0.25 / 0.34), accuracy: 1e-6)
    }

    func testPenalties() throws {
        var rep = try Sampler(SamplingParameters(repetitionPenalty: 2))
        XCTAssertEqual(rep.next(logits: [2, 1.5, -1], history: [0]), 1)  // 2 / 2 = 1 < 1.5
        let neg = try Sampler(SamplingParameters(temperature: 1, topK: 3, repetitionPenalty: 2))
            .distribution(logits: [0, 0, -1], history: [2])
        XCTAssertEqual(neg.last!.probability, Float(exp(-2.0) / (2 + exp(-2.0))), accuracy: 1e-6)  // -1 * 2
        var freq = try Sampler(SamplingParameters(frequencyPenalty: 0.4))
        XCTAssertEqual(freq.next(logits: [2, 1.5], history: [0]), 0)  // 1.6 > 1.5
        XCTAssertEqual(freq.next(logits: [2, 1.5], history: [0, 0]), 1)  // 1.2 < 1.5
        // Only the last `penaltyLastN` tokens count.
        var window = try Sampler(SamplingParameters(frequencyPenalty: 0.4, penaltyLastN: 1))
        XCTAssertEqual(window.next(logits: [2, 1.5], history: [0, 0, 1]), 0)
    }

    /// DRY: the token that would continue a repeated sequence loses multiplier · base^(L − allowed),
    /// L the length of the repeat; shorter repeats and the prompt are free.
    func testDRYPushesDownTheTokenThatContinuesARepeat() throws {
        var p = SamplingParameters()
        p.dryMultiplier = 0.8
        let dry = try Sampler(p)
        // Generated 5 6 7 8 | 5 6 7: "5 6 7" (L = 3) was followed by 8, so 8 loses 0.8 · 1.75^1 = 1.4.
        var logits = [Float](repeating: 0, count: 10)
        Sampler.applyDRY(&logits, generated: [5, 6, 7, 8, 5, 6, 7], parameters: p)
        XCTAssertEqual(logits[8], -1.4, accuracy: 1e-6)
        XCTAssertEqual(logits.enumerated().filter { $0.offset != 8 }.map(\.element), [Float](repeating: 0, count: 9))
        // A repeat of 1 token (L = 1 < 2) is free: "7" was followed by 8 once, now "9 7".
        logits = [Float](repeating: 0, count: 10)
        Sampler.applyDRY(&logits, generated: [7, 8, 9, 7], parameters: p)
        XCTAssertEqual(logits, [Float](repeating: 0, count: 10))
        // The longer the repeat, the harder: L = 6 gives 0.8 · 1.75^4.
        logits = [Float](repeating: 0, count: 10)
        Sampler.applyDRY(&logits, generated: [1, 2, 3, 4, 5, 6, 9, 1, 2, 3, 4, 5, 6], parameters: p)
        XCTAssertEqual(logits[9], -0.8 * pow(1.75, 4), accuracy: 1e-4)
        // Through the sampler, greedy: 8 (logit 1) would continue the loop, so 3 (logit 0) wins;
        // the same tokens in the prompt are not the answer's repeat.
        var greedy = try Sampler(p)
        greedy.promptLength = 0
        var row = [Float](repeating: -5, count: 10)
        row[8] = 1; row[3] = 0
        XCTAssertEqual(greedy.next(logits: row, history: [5, 6, 7, 8, 5, 6, 7]), 3)
        greedy.promptLength = 4
        XCTAssertEqual(greedy.next(logits: row, history: [5, 6, 7, 8, 5, 6, 7]), 8, "the repeat's first copy is the prompt")
        XCTAssertEqual(dry.parameters.dryMultiplier, 0.8)
        var off = try Sampler()
        XCTAssertEqual(off.next(logits: row, history: [5, 6, 7, 8, 5, 6, 7]), 8, "off by default")
    }

    func testSeedReproducesAndFrequenciesFollowProbabilities() throws {
        let p = SamplingParameters(temperature: 1, seed: 42)
        var a = try Sampler(p), b = try Sampler(p)
        let drawsA = (0..<2000).map { _ in a.next(logits: logits, history: []) }
        let drawsB = (0..<2000).map { _ in b.next(logits: logits, history: []) }
        XCTAssertEqual(drawsA, drawsB)
        var c = try Sampler(SamplingParameters(temperature: 1, seed: 43))
        XCTAssertNotEqual(drawsA, (0..<2000).map { _ in c.next(logits: logits, history: []) })
        let share = Double(drawsA.filter { $0 == 0 }.count) / 2000
        print("seeded sampler: token 0 drawn \(share) of the time (p = 0.5)")
        XCTAssertEqual(share, 0.5, accuracy: 0.05)
        // The generator's first output for seed 0 is fixed (xoshiro256** over SplitMix64).
        var x = Xoshiro256(seed: 0)
        let first = x.next()
        var y = Xoshiro256(seed: 0)
        XCTAssertEqual(first, y.next())
    }

    func testInvalidValuesThrow() {
        let bad: [(SamplingParameters, String)] = [
            (SamplingParameters(topP: 2), "top-p"), (SamplingParameters(temperature: -1), "temperature"),
            (SamplingParameters(topP: 0), "top-p"), (SamplingParameters(minP: 1.5), "min-p"),
            (SamplingParameters(topK: -3), "top-k"), (SamplingParameters(repetitionPenalty: 0), "repeat-penalty"),
            (SamplingParameters(temperature: .nan), "temperature"),
            ({ var p = SamplingParameters(); p.dryMultiplier = -1; return p }(), "dry-multiplier"),
            ({ var p = SamplingParameters(); p.dryBase = 0.5; return p }(), "dry-base"),
            ({ var p = SamplingParameters(); p.dryAllowedLength = 0; return p }(), "dry-allowed-length"),
        ]
        for (p, name) in bad {
            XCTAssertThrowsError(try Sampler(p)) { error in
                guard case let SamplingError.invalidValue(n, _, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(n, name)
                XCTAssertTrue(error.localizedDescription.contains(name), error.localizedDescription)
            }
        }
    }
}
