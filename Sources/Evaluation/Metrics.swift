import Foundation

/// Per-item outcomes of one model on one task, from which every metric (and every bootstrap
/// resample of it) is computed.
public enum ItemOutcomes: Sendable, Equatable {
    /// Label tasks: the gold and predicted label index of each item; `labelCount` labels.
    case labels(gold: [Int], predicted: [Int], labelCount: Int)
    /// NER: true positives, false positives and false negatives of each sentence.
    case spans([SpanCounts])

    public var count: Int {
        switch self {
        case let .labels(gold, _, _): return gold.count
        case let .spans(c): return c.count
        }
    }

    /// A metric over the items at `indices` (with repeats, for the bootstrap); all items when nil.
    public func metric(_ metric: Metric, indices: [Int]? = nil) -> Double {
        switch self {
        case let .labels(gold, predicted, labelCount):
            let idx = indices ?? Array(gold.indices)
            switch metric {
            case .accuracy: return Metrics.accuracy(gold: idx.map { gold[$0] }, predicted: idx.map { predicted[$0] })
            case .macroF1:
                return Metrics.macroF1(gold: idx.map { gold[$0] }, predicted: idx.map { predicted[$0] }, labelCount: labelCount)
            case .positiveF1, .f1:
                return Metrics.classF1(gold: idx.map { gold[$0] }, predicted: idx.map { predicted[$0] }, positive: 0)
            case .precision, .recall: return .nan
            }
        case let .spans(counts):
            let idx = indices ?? Array(counts.indices)
            var total = SpanCounts()
            for i in idx { total += counts[i] }
            switch metric {
            case .precision: return total.precision
            case .recall: return total.recall
            case .f1, .positiveF1: return total.f1
            case .accuracy, .macroF1: return .nan
            }
        }
    }

    /// Whether each item was answered correctly (label tasks), for McNemar's test.
    public var correct: [Bool]? {
        guard case let .labels(gold, predicted, _) = self else { return nil }
        return zip(gold, predicted).map { $0 == $1 }
    }
}

/// Entity-level counts of one sentence (or a sum of sentences).
public struct SpanCounts: Sendable, Equatable, Codable {
    public var truePositives = 0
    public var falsePositives = 0
    public var falseNegatives = 0

    public init(truePositives: Int = 0, falsePositives: Int = 0, falseNegatives: Int = 0) {
        self.truePositives = truePositives
        self.falsePositives = falsePositives
        self.falseNegatives = falseNegatives
    }

    public static func += (a: inout SpanCounts, b: SpanCounts) {
        a.truePositives += b.truePositives
        a.falsePositives += b.falsePositives
        a.falseNegatives += b.falseNegatives
    }

    /// tp / (tp + fp); 0 when nothing was predicted.
    public var precision: Double { Metrics.ratio(truePositives, truePositives + falsePositives) }
    /// tp / (tp + fn); 0 when there is no gold entity.
    public var recall: Double { Metrics.ratio(truePositives, truePositives + falseNegatives) }
    /// 2tp / (2tp + fp + fn); 0 when both sets are empty.
    public var f1: Double { Metrics.ratio(2 * truePositives, 2 * truePositives + falsePositives + falseNegatives) }
}

/// Classification and span metrics.
public enum Metrics {
    static func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }

    /// Fraction of items whose prediction equals the gold label; 0 for no items.
    public static func accuracy(gold: [Int], predicted: [Int]) -> Double {
        ratio(zip(gold, predicted).filter { $0 == $1 }.count, gold.count)
    }

    /// F1 of one class: 2tp / (2tp + fp + fn), 0 when the class is neither gold nor predicted.
    public static func classF1(gold: [Int], predicted: [Int], positive: Int) -> Double {
        var tp = 0, fp = 0, fn = 0
        for (g, p) in zip(gold, predicted) {
            if p == positive && g == positive { tp += 1 } else if p == positive { fp += 1 } else if g == positive { fn += 1 }
        }
        return ratio(2 * tp, 2 * tp + fp + fn)
    }

    /// Unweighted mean of the per-class F1 over the classes present in gold or predictions
    /// (scikit-learn's `f1_score(average="macro")` with `labels` = those classes).
    public static func macroF1(gold: [Int], predicted: [Int], labelCount: Int) -> Double {
        let present = Set(gold).union(predicted).filter { (0..<labelCount).contains($0) }
        guard !present.isEmpty else { return 0 }
        return present.map { classF1(gold: gold, predicted: predicted, positive: $0) }.reduce(0, +) / Double(present.count)
    }

    /// Exact-span matching: a predicted span counts when a gold span has the same start, end and type.
    public static func matchSpans(gold: [EntitySpan], predicted: [EntitySpan]) -> SpanCounts {
        let g = Set(gold), p = Set(predicted)
        let tp = g.intersection(p).count
        return SpanCounts(truePositives: tp, falsePositives: p.count - tp, falseNegatives: g.count - tp)
    }
}
