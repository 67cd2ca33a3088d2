import Foundation
import XCTest
@testable import Evaluation

/// Metrics, span matching, the NER parse rule and the statistics, on hand-worked cases.
final class MetricsTests: XCTestCase {
    // MARK: Classification

    func testAccuracyClassAndMacroF1() {
        // class 0: tp 1, fp 1, fn 1 -> F1 2/4 = 0.5; class 1: tp 2, fp 1, fn 0 -> 4/5 = 0.8;
        // class 2: tp 1, fp 0, fn 1 -> 2/3. Macro = (0.5 + 0.8 + 2/3) / 3 = 0.655556.
        let gold = [0, 0, 1, 1, 2, 2], predicted = [0, 1, 1, 1, 2, 0]
        XCTAssertEqual(Metrics.accuracy(gold: gold, predicted: predicted), 4.0 / 6.0, accuracy: 1e-12)
        XCTAssertEqual(Metrics.classF1(gold: gold, predicted: predicted, positive: 0), 0.5, accuracy: 1e-12)
        XCTAssertEqual(Metrics.classF1(gold: gold, predicted: predicted, positive: 1), 0.8, accuracy: 1e-12)
        XCTAssertEqual(Metrics.macroF1(gold: gold, predicted: predicted, labelCount: 3), (0.5 + 0.8 + 2.0 / 3.0) / 3, accuracy: 1e-12)
        // A class never gold nor predicted does not count (scikit-learn with labels = present classes).
        XCTAssertEqual(Metrics.macroF1(gold: [0, 1], predicted: [0, 0], labelCount: 3), (2.0 / 3.0 + 0) / 2, accuracy: 1e-12)
        let outcomes = ItemOutcomes.labels(gold: gold, predicted: predicted, labelCount: 3)
        XCTAssertEqual(outcomes.metric(.macroF1), (0.5 + 0.8 + 2.0 / 3.0) / 3, accuracy: 1e-12)
        XCTAssertEqual(outcomes.metric(.accuracy, indices: [0, 0, 1]), 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(outcomes.correct, [true, false, true, true, true, false])
    }

    func testSpanMatching() {
        let gold = [EntitySpan(start: 0, end: 2, type: "Chemical"), EntitySpan(start: 5, end: 6, type: "Chemical")]
        let predicted = [EntitySpan(start: 0, end: 2, type: "Chemical"), EntitySpan(start: 5, end: 7, type: "Chemical"),
                         EntitySpan(start: 9, end: 10, type: "Chemical"), EntitySpan(start: 0, end: 2, type: "Disease")]
        let c = Metrics.matchSpans(gold: gold, predicted: predicted)
        XCTAssertEqual(c, SpanCounts(truePositives: 1, falsePositives: 3, falseNegatives: 1))
        XCTAssertEqual(c.precision, 0.25, accuracy: 1e-12)
        XCTAssertEqual(c.recall, 0.5, accuracy: 1e-12)
        XCTAssertEqual(c.f1, 2.0 / 6.0, accuracy: 1e-12)  // 2tp / (2tp + fp + fn)
        // Micro-averaged over sentences: (tp 1, fp 3, fn 1) + (tp 2, fp 0, fn 2) -> P 3/6, R 3/6.
        let o = ItemOutcomes.spans([c, SpanCounts(truePositives: 2, falsePositives: 0, falseNegatives: 2)])
        XCTAssertEqual(o.metric(.precision), 0.5, accuracy: 1e-12)
        XCTAssertEqual(o.metric(.f1), 0.5, accuracy: 1e-12)
        XCTAssertEqual(SpanCounts().f1, 0)
    }

    func testIOBSpans() {
        XCTAssertEqual(EvalDataLoader.spans(["B-Chemical", "I-Chemical", "O", "I-Chemical", "B-Disease", "B-Disease", "I-Chemical"]), [
            EntitySpan(start: 0, end: 2, type: "Chemical"), EntitySpan(start: 3, end: 4, type: "Chemical"),
            EntitySpan(start: 4, end: 5, type: "Disease"), EntitySpan(start: 5, end: 6, type: "Disease"),
            EntitySpan(start: 6, end: 7, type: "Chemical"),
        ])
    }

    // MARK: NER parse rule

    let tokens = ["22", "-", "oxacalcitriol", "suppresses", "PTH", ",", "and", "calcitriol", "reduces", "PTH", "."]

    func testMentionsOnePerLine() {
        let p = MentionParser.parse("- 22-oxacalcitriol\n2. PTH\n\"Vitamin D\"\nnone\n", tokens: tokens, type: "Chemical")
        XCTAssertEqual(p.spans, [EntitySpan(start: 0, end: 3, type: "Chemical"), EntitySpan(start: 4, end: 5, type: "Chemical"),
                                 EntitySpan(start: 9, end: 10, type: "Chemical")])
        XCTAssertEqual(p.unmatched, ["Vitamin D"])
    }

    func testMentionsCommaSemicolonColon() {
        let spans = [EntitySpan(start: 4, end: 5, type: "C"), EntitySpan(start: 7, end: 8, type: "C"), EntitySpan(start: 9, end: 10, type: "C")]
        XCTAssertEqual(MentionParser.parse("Calcitriol, pth.", tokens: tokens, type: "C").spans, spans)
        XCTAssertEqual(MentionParser.parse("calcitriol; PTH", tokens: tokens, type: "C").spans, spans)
        XCTAssertEqual(MentionParser.parse("Chemicals: calcitriol, PTH", tokens: tokens, type: "C").spans, spans)
        XCTAssertEqual(MentionParser.parse("None", tokens: tokens, type: "C"), MentionParser.Parsed(spans: [], unmatched: []))
        // A comma inside a mention that matches as a whole is not split: "PTH , and" is tokens 4..<7.
        XCTAssertEqual(MentionParser.parse("PTH, and", tokens: tokens, type: "C").spans, [EntitySpan(start: 4, end: 7, type: "C")])
        // Repeated unmatched mentions count once.
        XCTAssertEqual(MentionParser.parse("aspirin\nAspirin", tokens: tokens, type: "C").unmatched, ["aspirin"])
        XCTAssertEqual(MentionParser.locate("pth", in: tokens.map { $0.lowercased() }), [4..<5, 9..<10])
    }

    // MARK: Statistics

    func testMcNemarHandWorked() {
        // b = 1, c = 9: p = 2 * (C(10,0) + C(10,1)) / 2^10 = 22 / 1024.
        XCTAssertEqual(Statistics.mcNemarExact(b: 1, c: 9), 22.0 / 1024.0, accuracy: 1e-12)
        XCTAssertEqual(Statistics.mcNemarExact(b: 9, c: 1), 22.0 / 1024.0, accuracy: 1e-12)
        // b = 0, c = 6: p = 2 / 64.
        XCTAssertEqual(Statistics.mcNemarExact(b: 0, c: 6), 2.0 / 64.0, accuracy: 1e-12)
        XCTAssertEqual(Statistics.mcNemarExact(b: 5, c: 5), 1)
        XCTAssertEqual(Statistics.mcNemarExact(b: 0, c: 0), 1)
        // b = 40, c = 60: scipy.stats.binomtest(40, 100).pvalue = 0.056887933640980784.
        XCTAssertEqual(Statistics.mcNemarExact(b: 40, c: 60), 0.056887933640980784, accuracy: 1e-9)
        // The table: items 0-1 only base right (b = 2), items 2-5 only other right (c = 4), p = 2 * 7/64.
        let base = [true, true, false, false, false, false, true, false]
        let other = [false, false, true, true, true, true, true, false]
        let t = Statistics.mcNemar(base: base, other: other)
        XCTAssertEqual(t.b, 2)
        XCTAssertEqual(t.c, 4)
        XCTAssertEqual(t.p, 2 * 22.0 / 64.0, accuracy: 1e-12)
    }

    func testPercentile() {
        XCTAssertEqual(Statistics.percentile([4, 1, 3, 2], 0.5), 2.5)  // numpy.percentile([1,2,3,4], 50)
        XCTAssertEqual(Statistics.percentile([1, 2, 3, 4, 5], 0.025), 1.1, accuracy: 1e-12)
    }

    /// 200 items, 120 right: the interval holds the point estimate, is reproducible with its seed,
    /// and its width is close to the normal approximation 2 * 1.96 * sqrt(p(1-p)/n) = 0.1358.
    func testBootstrapInterval() {
        let gold = [Int](repeating: 0, count: 200)
        let predicted = (0..<200).map { $0 % 5 < 3 ? 0 : 1 }
        let o = ItemOutcomes.labels(gold: gold, predicted: predicted, labelCount: 2)
        let point = o.metric(.accuracy)
        XCTAssertEqual(point, 0.6, accuracy: 1e-12)
        let a = Statistics.bootstrapInterval(o, metric: .accuracy, seed: 3)
        let b = Statistics.bootstrapInterval(o, metric: .accuracy, seed: 3)
        let c = Statistics.bootstrapInterval(o, metric: .accuracy, seed: 4)
        XCTAssertEqual(a.low, b.low)
        XCTAssertEqual(a.high, b.high)
        XCTAssertNotEqual(Statistics.resampleIndices(count: 200, resamples: 5, seed: 3),
                          Statistics.resampleIndices(count: 200, resamples: 5, seed: 4), "another seed gives other resamples")
        XCTAssertGreaterThanOrEqual(c.low, 0.5)
        XCTAssertLessThanOrEqual(c.high, 0.7)
        XCTAssertLessThan(a.low, point)
        XCTAssertGreaterThan(a.high, point)
        let width = a.high - a.low, normal = 2 * 1.96 * (0.6 * 0.4 / 200).squareRoot()
        print("bootstrap 95% interval [\(a.low), \(a.high)], width \(width), normal approximation \(normal)")
        XCTAssertEqual(width, normal, accuracy: 0.25 * normal)
    }

    func testPairedBootstrap() {
        let gold = [Int](repeating: 0, count: 100)
        let base = ItemOutcomes.labels(gold: gold, predicted: (0..<100).map { $0 % 2 }, labelCount: 2)
        let better = ItemOutcomes.labels(gold: gold, predicted: (0..<100).map { $0 % 10 == 0 ? 1 : 0 }, labelCount: 2)
        XCTAssertEqual(Statistics.pairedBootstrap(base: base, other: base, metric: .positiveF1, seed: 0), 1)
        let p = Statistics.pairedBootstrap(base: base, other: better, metric: .positiveF1, seed: 0)
        print("paired bootstrap p for F1 0.667 -> 0.947 on 100 items: \(p)")
        XCTAssertLessThan(p, 0.01)
        // A one-item difference on 100 items is far from significant.
        let almost = ItemOutcomes.labels(gold: gold, predicted: (0..<100).map { $0 % 2 == 1 && $0 != 1 ? 1 : 0 }, labelCount: 2)
        XCTAssertGreaterThan(Statistics.pairedBootstrap(base: base, other: almost, metric: .positiveF1, seed: 0), 0.3)
    }
}
