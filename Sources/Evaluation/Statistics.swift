import Foundation
import Tensor

/// Confidence intervals and paired significance tests over per-item outcomes.
///
/// - Interval: the percentile bootstrap. Items are resampled with replacement `resamples` times
///   (default 1,000) from a generator seeded by `seed`; the interval is the 2.5th and 97.5th
///   percentile of the metric over the resamples.
/// - Paired test, accuracy: the exact (binomial) McNemar test on the items one model answers
///   right and the other wrong, two-sided.
/// - Paired test, F1 metrics (which do not decompose over items): the paired bootstrap. Both
///   models are scored on the same resampled items; with the observed difference d and the
///   resampled differences d*, p = (1 + #{|d* − d| ≥ |d|}) / (1 + resamples) (the bootstrap
///   distribution shifted to the null hypothesis of no difference; two-sided).
public enum Statistics {
    /// Default number of bootstrap resamples.
    public static let defaultResamples = 1000

    /// The resampled item indices: `resamples` lists of `count` indices, the same for a given seed.
    public static func resampleIndices(count: Int, resamples: Int, seed: UInt64) -> [[Int]] {
        var rng = Xoshiro256(seed: seed)
        return (0..<resamples).map { _ in (0..<count).map { _ in count == 0 ? 0 : Int(rng.next() % UInt64(count)) } }
    }

    /// The 95% percentile-bootstrap interval of `metric` over `outcomes`.
    public static func bootstrapInterval(_ outcomes: ItemOutcomes, metric: Metric, resamples: Int = defaultResamples,
                                         seed: UInt64, level: Double = 0.95) -> (low: Double, high: Double) {
        bootstrapInterval(count: outcomes.count, resamples: resamples, seed: seed, level: level) {
            outcomes.metric(metric, indices: $0)
        }
    }

    /// The percentile-bootstrap interval of any statistic of `count` items.
    /// - Parameter statistic: the statistic over the items at the given indices (repeats allowed).
    public static func bootstrapInterval(count: Int, resamples: Int = defaultResamples, seed: UInt64, level: Double = 0.95,
                                         statistic: ([Int]) -> Double) -> (low: Double, high: Double) {
        guard count > 0 else { return (.nan, .nan) }
        let values = resampleIndices(count: count, resamples: resamples, seed: seed).map(statistic)
        return (percentile(values, (1 - level) / 2), percentile(values, 1 - (1 - level) / 2))
    }

    /// Linear-interpolated percentile (NumPy's default) of `values`, `q` in 0...1.
    public static func percentile(_ values: [Double], _ q: Double) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return .nan }
        let pos = q * Double(s.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, s.count - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - Double(lo))
    }

    /// Two-sided exact McNemar p-value from the discordant counts: `b` items only the first
    /// model answers right, `c` only the second. p = min(1, 2 · P(X ≤ min(b, c))), X ~ Bin(b + c, ½);
    /// 1 when there is no discordant item.
    public static func mcNemarExact(b: Int, c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        let k = min(b, c)
        // Σ_{i ≤ k} C(n, i) / 2^n, in log space so large n does not overflow.
        var logTerms: [Double] = []
        for i in 0...k { logTerms.append(logChoose(n, i) - Double(n) * Foundation.log(2.0)) }
        let m = logTerms.max()!
        let tail = Foundation.exp(m) * logTerms.reduce(0) { $0 + Foundation.exp($1 - m) }
        return min(1, 2 * tail)
    }

    /// McNemar's test of two models on the same items (`correct` flags in item order).
    /// - Returns: the discordant counts and the p-value.
    public static func mcNemar(base: [Bool], other: [Bool]) -> (b: Int, c: Int, p: Double) {
        precondition(base.count == other.count, "McNemar needs the same items")
        var b = 0, c = 0
        for (x, y) in zip(base, other) {
            if x && !y { b += 1 } else if !x && y { c += 1 }
        }
        return (b, c, mcNemarExact(b: b, c: c))
    }

    /// Paired bootstrap p-value of the difference `other − base` in `metric` (see the type's notes).
    public static func pairedBootstrap(base: ItemOutcomes, other: ItemOutcomes, metric: Metric,
                                       resamples: Int = defaultResamples, seed: UInt64) -> Double {
        precondition(base.count == other.count, "a paired test needs the same items")
        return pairedBootstrap(count: base.count, resamples: resamples, seed: seed) {
            other.metric(metric, indices: $0) - base.metric(metric, indices: $0)
        }
    }

    /// Paired bootstrap p-value of any difference of two models on the same `count` items.
    /// - Parameter difference: `other − base` over the items at the given indices (repeats allowed).
    public static func pairedBootstrap(count: Int, resamples: Int = defaultResamples, seed: UInt64,
                                       difference: ([Int]) -> Double) -> Double {
        let d = difference(Array(0..<count))
        guard d != 0, d.isFinite else { return 1 }
        var extreme = 0
        for idx in resampleIndices(count: count, resamples: resamples, seed: seed) {
            if abs(difference(idx) - d) >= abs(d) { extreme += 1 }
        }
        return Double(1 + extreme) / Double(1 + resamples)
    }

    static func logChoose(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }
}
