import Foundation
import XCTest
@testable import Generator

final class RougeTests: XCTestCase {
    /// Against Google's rouge_score on 347 pairs of real texts (Fixtures/make_rouge_golden.py).
    func testMatchesRougeScoreGolden() throws {
        let data = try Data(contentsOf: Paths.fixtures.appendingPathComponent("rouge_golden.json"))
        let pairs = try XCTUnwrap((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["pairs"] as? [[String: Any]])
        XCTAssertGreaterThan(pairs.count, 300)
        var maxDiff = 0.0
        for p in pairs {
            let a = p["a"] as! String, b = p["b"] as! String, f = (p["f"] as! NSNumber).doubleValue
            let ours = RougeL.score(a, b)
            maxDiff = max(maxDiff, abs(ours - f))
            XCTAssertEqual(ours, f, accuracy: 1e-12, "\(a) | \(b)")
        }
        print("ROUGE-L vs rouge_score: \(pairs.count) pairs, max |diff| = \(maxDiff)")
    }

    /// The bit-parallel LCS equals the dynamic programme for lengths across word boundaries.
    func testBitParallelLCSMatchesDP() {
        var rng = SeededRandom(seed: 11)
        var checked = 0
        for m in [1, 5, 63, 64, 65, 127, 128, 129, 200] {
            for n in [0, 1, 7, 64, 70, 150, 300] {
                for alphabet in [2, 5, 40] {
                    let a = (0..<m).map { _ in Int32(rng.next() % UInt64(alphabet)) }
                    let b = (0..<n).map { _ in Int32(rng.next() % UInt64(alphabet)) }
                    XCTAssertEqual(RougeL.lcs(a, b), RougeL.lcsDP(a, b), "m=\(m) n=\(n) alphabet=\(alphabet)")
                    XCTAssertEqual(LCSPattern(a).lcs(with: b), RougeL.lcsDP(a, b), "pattern m=\(m) n=\(n)")
                    checked += 1
                }
            }
        }
        print("bit-parallel LCS = DP on \(checked) random pairs")
    }

    /// The pruned index returns the same best score as scoring every pair, and prunes most pairs.
    func testIndexMaxEqualsBruteForce() throws {
        let seeds = try SeedLoader.load(path: Paths.seeds)
        let pqa = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Paths.data("pubmedqa/pqal_dev.json")))) as! [String: [String: Any]]
        let questions = pqa.keys.sorted().map { pqa[$0]!["QUESTION"] as! String }
        var index = RougeLIndex()
        var kept: [String] = []
        for q in questions.prefix(300) { index.add(q); kept.append(q) }
        var maxDiff = 0.0
        for probe in seeds.map(\.instruction) + questions.suffix(100) + ["Is aspirin effective?", "", "zzz qqq"] {
            let brute = kept.map { RougeL.score(probe, $0) }.max() ?? 0
            let fast = index.maxScore(probe)
            maxDiff = max(maxDiff, abs(brute - fast.score))
            XCTAssertEqual(fast.score, brute, accuracy: 1e-12, probe)
            if let i = fast.index { XCTAssertEqual(RougeL.score(probe, kept[i]), fast.score, accuracy: 1e-12) }
        }
        let total = index.exactComparisons + index.prunedComparisons
        print("RougeLIndex: max |diff| vs brute force = \(maxDiff); exact LCS on \(index.exactComparisons) of \(total) pairs")
        XCTAssertLessThan(Double(index.exactComparisons), 0.5 * Double(total))
    }
}
