import XCTest
@testable import LLM

/// `Attention.attendMany` (chunked causal products through the packed kernel) against a float64
/// masked softmax, with past positions, grouped heads, several chunks and a sliding window; and
/// the same bits for a row however the rows are split into steps.
final class AttentionTests: XCTestCase {
    func testAttendManyMatchesFloat64() {
        var rng = SystemRandomNumberGenerator()
        let hs = 16, groups = 2, w = groups * hs
        for (p, t, window) in [(0, 150, nil), (20, 150, 50), (7, Attention.causalChunk, 1), (0, 3, nil), (100, 1, 30)] as [(Int, Int, Int?)] {
            let n = p + t, qStride = 3 * hs
            let q = (0..<(t * qStride)).map { _ in Float.random(in: -1...1, using: &rng) }
            let keys = (0..<(n * w)).map { _ in Float.random(in: -1...1, using: &rng) }
            let values = (0..<(n * w)).map { _ in Float.random(in: -1...1, using: &rng) }
            var out = [Float](repeating: .nan, count: t * qStride)
            var scores = [Float](repeating: 0, count: t * n)
            let scale: Float = 0.7, group = 1
            scores.withUnsafeMutableBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    Attention.attendMany(q: q, qStride: qStride, t: t, past: p, keys: keys, values: values, width: w,
                                         group: group, headSize: hs, scale: scale, window: window,
                                         scores: s.baseAddress!, out: o.baseAddress!, outStride: qStride)
                }
            }
            var worst = 0.0
            for i in 0..<t {
                let last = p + i + 1, first = window.map { max(0, last - $0) } ?? 0
                let logits = (first..<last).map { j in
                    (0..<hs).reduce(0.0) { $0 + Double(q[i * qStride + $1]) * Double(keys[j * w + group * hs + $1]) } * Double(scale)
                }
                let m = logits.max()!, e = logits.map { exp($0 - m) }, z = e.reduce(0, +)
                for c in 0..<hs {
                    let ref = zip(first..<last, e).reduce(0.0) { $0 + $1.1 / z * Double(values[$1.0 * w + group * hs + c]) }
                    worst = max(worst, abs(ref - Double(out[i * qStride + c])))
                }
            }
            print("attendMany p \(p) t \(t) window \(window.map(String.init) ?? "none"): max |diff| vs float64 \(worst)")
            XCTAssertLessThan(worst, 1e-5)
        }
    }

    /// A prompt's rows attended in one step or split into two (the second with the first as
    /// past, as the shared-prefix prefill does) give bit-identical outputs: every element sums
    /// its terms in position order whatever the number of rows.
    func testSplittingRowsIntoStepsChangesNoBits() {
        var rng = SystemRandomNumberGenerator()
        let hs = 64, w = 3 * hs, group = 2, qStride = 9 * hs, t = 150
        let q = (0..<(t * qStride)).map { _ in Float.random(in: -2...2, using: &rng) }
        let keys = (0..<(t * w)).map { _ in Float.random(in: -2...2, using: &rng) }
        let values = (0..<(t * w)).map { _ in Float.random(in: -2...2, using: &rng) }
        func attend(rows r: Range<Int>, window: Int?) -> [Float] {
            var out = [Float](repeating: .nan, count: r.count * qStride)
            var scores = [Float](repeating: 0, count: r.count * r.upperBound)
            scores.withUnsafeMutableBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    q.withUnsafeBufferPointer { qp in
                        Attention.attendMany(q: qp.baseAddress! + r.lowerBound * qStride, qStride: qStride, t: r.count,
                                             past: r.lowerBound, keys: keys, values: values, width: w, group: group,
                                             headSize: hs, scale: 0.125, window: window, scores: s.baseAddress!,
                                             out: o.baseAddress!, outStride: qStride)
                    }
                }
            }
            return (0..<r.count).flatMap { Array(out[($0 * qStride)..<($0 * qStride + hs)]) }
        }
        for window in [nil, 40] as [Int?] {
            let whole = attend(rows: 0..<t, window: window)
            for split in [1, 5, 17, 64, 100] {
                let parts = attend(rows: 0..<split, window: window) + attend(rows: split..<t, window: window)
                let differing = zip(whole, parts).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "split at \(split), window \(window.map(String.init) ?? "none")")
            }
        }
    }

    /// Decode attention of a grouped-query group over an f16 cache (`ck_attend_f16`, every key
    /// and value row read once for the group) against a float64 softmax of the stored values, and
    /// against the per-head path, for both models' head sizes, with and without a window, with
    /// position counts that do and do not fill the kernel's blocks of 8.
    func testAttendGroupMatchesFloat64() {
        var rng = SystemRandomNumberGenerator()
        for (hs, kvHeads, heads, n, window) in [(64, 3, 3, 203, nil), (64, 3, 3, 5, nil), (256, 1, 4, 600, 512),
                                                (64, 2, 1, 64, nil), (32, 2, 6, 17, 9)] as [(Int, Int, Int, Int, Int?)] {
            let w = kvHeads * hs, group = kvHeads - 1, scale: Float = 0.3
            let cache = KVCache(layers: 2, width: w, capacity: n, precision: .f16)
            let keys = (0..<(n * w)).map { _ in Float.random(in: -2...2, using: &rng) }
            let values = (0..<(n * w)).map { _ in Float.random(in: -2...2, using: &rng) }
            cache.store(layer: 1, start: 0, rows: n, keys: keys, keyStride: w, values: values, valueStride: w)
            let q = (0..<(heads * hs)).map { _ in Float.random(in: -1...1, using: &rng) }
            var out = [Float](repeating: .nan, count: heads * hs), perHead = out
            var scores = [Float](repeating: 0, count: heads * n)
            q.withUnsafeBufferPointer { qp in
                scores.withUnsafeMutableBufferPointer { s in
                    out.withUnsafeMutableBufferPointer { o in
                        Attention.attendGroup(q: qp.baseAddress!, heads: heads, cache: cache, layer: 1, group: group, n: n,
                                              headSize: hs, scale: scale, window: window, scores: s.baseAddress!,
                                              out: o.baseAddress!)
                    }
                    perHead.withUnsafeMutableBufferPointer { o in
                        for h in 0..<heads {
                            Attention.attendOne(q: qp.baseAddress! + h * hs, cache: cache, layer: 1, group: group, n: n,
                                                headSize: hs, scale: scale, window: window, scores: s.baseAddress!,
                                                out: o.baseAddress! + h * hs)
                        }
                    }
                }
            }
            let stored = { (x: [Float], i: Int) in Double(Float(Float16(x[i]))) }
            var worst = 0.0, worstPerHead = 0.0
            let first = window.map { max(0, n - $0) } ?? 0
            for h in 0..<heads {
                let logits = (first..<n).map { t in
                    (0..<hs).reduce(0.0) { $0 + Double(q[h * hs + $1]) * stored(keys, t * w + group * hs + $1) } * Double(scale)
                }
                let m = logits.max()!, e = logits.map { exp($0 - m) }, z = e.reduce(0, +)
                for c in 0..<hs {
                    let ref = zip(first..<n, e).reduce(0.0) { $0 + $1.1 / z * stored(values, $1.0 * w + group * hs + c) }
                    worst = max(worst, abs(ref - Double(out[h * hs + c])))
                    worstPerHead = max(worstPerHead, abs(Double(perHead[h * hs + c]) - Double(out[h * hs + c])))
                }
            }
            print("attendGroup hs \(hs) heads \(heads) n \(n) window \(window.map(String.init) ?? "none"): "
                  + "max |diff| vs float64 \(worst), vs per-head path \(worstPerHead)")
            XCTAssertLessThan(worst, 1e-5)
            XCTAssertLessThan(worstPerHead, 1e-5)
        }
    }

    /// The heads of a group in one `attendMany` call (keys and values packed once) give the same
    /// bits as one call per head.
    func testHeadsOfAGroupTogetherChangeNoBits() {
        var rng = SystemRandomNumberGenerator()
        let hs = 32, w = 2 * hs, heads = 3, qStride = 2 * heads * hs, t = 90, p = 30, n = p + t
        let q = (0..<(t * qStride)).map { _ in Float.random(in: -2...2, using: &rng) }
        let keys = (0..<(n * w)).map { _ in Float.random(in: -2...2, using: &rng) }
        let values = (0..<(n * w)).map { _ in Float.random(in: -2...2, using: &rng) }
        for window in [nil, 40] as [Int?] {
            var together = [Float](repeating: .nan, count: t * qStride), apart = together
            var scores = [Float](repeating: 0, count: t * n)
            scores.withUnsafeMutableBufferPointer { s in
                together.withUnsafeMutableBufferPointer { o in
                    Attention.attendMany(q: q, qStride: qStride, t: t, past: p, heads: heads, keys: keys, values: values,
                                         width: w, group: 1, headSize: hs, scale: 0.2, window: window,
                                         scores: s.baseAddress!, out: o.baseAddress!, outStride: qStride)
                }
                apart.withUnsafeMutableBufferPointer { o in
                    q.withUnsafeBufferPointer { qp in
                        for h in 0..<heads {
                            Attention.attendMany(q: qp.baseAddress! + h * hs, qStride: qStride, t: t, past: p, keys: keys,
                                                 values: values, width: w, group: 1, headSize: hs, scale: 0.2, window: window,
                                                 scores: s.baseAddress!, out: o.baseAddress! + h * hs, outStride: qStride)
                        }
                    }
                }
            }
            for r in 0..<t {
                for c in 0..<(heads * hs) {
                    XCTAssertEqual(together[r * qStride + c].bitPattern, apart[r * qStride + c].bitPattern, "row \(r) column \(c)")
                }
            }
        }
    }
}
