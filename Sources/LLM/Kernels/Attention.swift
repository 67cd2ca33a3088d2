import CKernels
import Tensor

/// Causal scaled-dot-product attention of one sequence's new rows against its `KVCache`.
///
/// Shapes: HS head size, W = NKV*HS cache row width, P positions already cached before the new
/// rows, T new rows (their keys/values are already stored at positions P..<P+T), N = P+T.
/// Query head h reads key/value head h / (NH/NKV) (grouped-query attention).
enum Attention {
    /// One query row (decode): `out (HS) = softmax(q · Kᵀ * scale) V` over the first `n`
    /// cached positions of key/value head `group`.
    /// - Parameter scores: scratch of at least `n` floats.
    static func attendOne(q: UnsafePointer<Float>, cache: KVCache, layer: Int, group: Int, n: Int, headSize hs: Int,
                          scale: Float, window: Int?, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let first = window.map { max(0, n - $0) } ?? 0
        switch cache.precision {
        case .f32:
            run(Float.self, q, cache, layer, group, first, n, hs, scale, scores, out)
        case .f16:
            run(Float16.self, q, cache, layer, group, first, n, hs, scale, scores, out)
        }
    }

    /// The `heads` query rows of one key/value group (decode), `hs` floats apart from `q`, into
    /// `heads` output rows from `out`: through `ck_attend_f16` for an f16 cache (each key and
    /// value row converted once for the whole group), else ``attendOne`` per head.
    /// - Parameter scores: scratch of at least `heads * n` floats.
    static func attendGroup(q: UnsafePointer<Float>, heads: Int, cache: KVCache, layer: Int, group: Int, n: Int,
                            headSize hs: Int, scale: Float, window: Int?, scores: UnsafeMutablePointer<Float>,
                            out: UnsafeMutablePointer<Float>) {
        if cache.precision == .f16 {
            let first = window.map { max(0, n - $0) } ?? 0, w = cache.width
            let keys = cache.base(layer, 0).assumingMemoryBound(to: UInt16.self) + first * w + group * hs
            let values = cache.base(layer, 1).assumingMemoryBound(to: UInt16.self) + first * w + group * hs
            if ck_attend_f16(q, heads, keys, values, w, n - first, hs, scale, scores, out, hs) == 1 { return }
        }
        for h in 0..<heads {
            attendOne(q: q + h * hs, cache: cache, layer: layer, group: group, n: n, headSize: hs, scale: scale,
                      window: window, scores: scores, out: out + h * hs)
        }
    }

    @inline(__always)
    private static func row8<E: CacheElement>(_ p: UnsafePointer<E>, _ i: Int) -> SIMD8<Float> { E.load8(p + i) }

    private static func run<E: CacheElement>(_: E.Type, _ q: UnsafePointer<Float>, _ cache: KVCache, _ layer: Int,
                                             _ group: Int, _ first: Int, _ n: Int, _ hs: Int, _ scale: Float,
                                             _ scores: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        let w = cache.width
        let keys = UnsafePointer(cache.base(layer, 0).assumingMemoryBound(to: E.self)) + group * hs
        let values = UnsafePointer(cache.base(layer, 1).assumingMemoryBound(to: E.self)) + group * hs
        let count = n - first
        for t in first..<n {
            let k = keys + t * w
            var acc = SIMD8<Float>()
            var i = 0
            while i < hs { acc.addProduct(load8(q + i), row8(k, i)); i += 8 }
            scores[t - first] = acc.sum() * scale
        }
        VectorMath.softmax(scores, count: count)
        for i in stride(from: 0, to: hs, by: 8) {
            var acc = SIMD8<Float>()
            for t in first..<n { acc.addProduct(SIMD8(repeating: scores[t - first]), row8(values + t * w, i)) }
            UnsafeMutableRawPointer(out + i).storeBytes(of: acc, as: SIMD8<Float>.self)
        }
    }

    /// Many query rows of `heads` query heads that share key/value head `group` (prefill), both
    /// products through `ck_gemm_packed` with the group's keys and values packed once per chunk
    /// for all of those heads: every score and output element sums its terms in
    /// one fixed order (keys in position order), so a row's result does not depend on how many
    /// rows share the step or on the CPU (`sgemm` picks kernels, and so summation orders, by CPU
    /// and by matrix shape).
    ///
    /// Rows go in chunks of ``causalChunk``: a chunk multiplies only the keys its rows can see
    /// (causal mask and sliding window), which skips nearly half the work of a long prompt.
    /// - Parameters:
    ///   - q: `(T, HS)` rows with stride `qStride`, positions P..<P+T, of the first head; head j's
    ///     start `j * HS` further.
    ///   - heads: query heads, consecutive, all reading key/value head `group`.
    ///   - keys, values: `(N, W)` float32 keys and values; this group's slice starts at `group * HS`.
    ///   - scores: scratch of at least `T * N` floats.
    ///   - out: `(T, HS)` rows with stride `outStride` per head, laid out like `q`.
    static func attendMany(q: UnsafePointer<Float>, qStride: Int, t: Int, past p: Int, heads: Int = 1,
                           keys: UnsafePointer<Float>, values: UnsafePointer<Float>, width w: Int, group: Int,
                           headSize hs: Int, scale: Float, window: Int?,
                           scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, outStride: Int) {
        let nMax = p + t, hsPadded = (hs + 15) / 16 * 16
        let packedKeys = UnsafeMutablePointer<Float>.allocate(capacity: (nMax + 15) / 16 * 16 * hs)
        let packedValues = UnsafeMutablePointer<Float>.allocate(capacity: hsPadded * nMax)
        defer { packedKeys.deallocate(); packedValues.deallocate() }
        var i0 = 0
        while i0 < t {
            let i1 = min(t, i0 + causalChunk)
            // Row i sees positions first(i)..<p+i+1; the chunk spans lo..<hi.
            let hi = p + i1
            let lo = window.map { max(0, p + i0 + 1 - $0) } ?? 0
            let m = i1 - i0, n = hi - lo
            let k = keys + lo * w + group * hs, v = values + lo * w + group * hs
            ck_pack_panels16(k, n, hs, w, packedKeys)
            ck_pack_panels16_t(v, n, hs, w, packedValues)
            for head in 0..<heads {
                ck_gemm_packed(q + head * hs + i0 * qStride, qStride, m, hs, packedKeys, n, nil, scores, n)
                for i in i0..<i1 {
                    let row = scores + (i - i0) * n
                    let last = p + i + 1 - lo  // row i sees chunk columns first..<last
                    let first = window.map { max(0, p + i + 1 - $0 - lo) } ?? 0
                    for j in 0..<first { row[j] = 0 }
                    for j in first..<last { row[j] *= scale }
                    if ck_softmax_rows(row + first, 1, last - first, 0) == 0 { VectorMath.softmax(row + first, count: last - first) }
                    for j in last..<n { row[j] = 0 }
                }
                ck_gemm_packed(scores, n, m, n, packedValues, hs, nil, out + head * hs + i0 * outStride, outStride)
            }
            i0 = i1
        }
    }

    /// Query rows per `attendMany` chunk.
    static let causalChunk = 64
}

extension Attention {
    /// One layer's attention for a whole step, shared by every architecture: stores each
    /// segment's new keys and values in its cache, then its new rows attend to every cached
    /// position up to their own; layers with a sliding window see only the last
    /// `config.slidingWindow[layer]` positions.
    ///
    /// - Parameters:
    ///   - offsets: each segment's first row in the step's stacked `(R, …)` buffers.
    ///   - q: `(R, NH*HS)` queries; `k`, `v`: `(R, NKV*HS)` this step's keys and values.
    ///   - out: `(R, NH*HS)` attention outputs.
    static func step(layer l: Int, segments: [LlamaModel.Segment], offsets: [Int], config c: ModelConfig,
                     q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                     out: UnsafeMutablePointer<Float>) {
        let hs = c.headSize, QW = c.queryWidth, KW = c.kvWidth, group = c.headCount / c.kvHeadCount
        let window = c.slidingWindow[l], scale = c.attentionScale
        for (i, s) in segments.enumerated() {
            s.cache.store(layer: l, start: s.cache.count, rows: s.tokens.count, keys: k + offsets[i] * KW, keyStride: KW,
                          values: v + offsets[i] * KW, valueStride: KW)
        }
        let box = UncheckedSendable((q, out))
        // Single-row segments (decode).
        let single = segments.indices.filter { segments[$0].tokens.count == 1 }
        if !single.isEmpty {
            let maxN = single.map { segments[$0].cache.count + 1 }.max()!
            // Short contexts: the thread hand-off costs more than the work.
            let work = single.reduce(0) { $0 + min(segments[$1].cache.count + 1, window ?? .max) } * c.headCount * hs
            // A whole key/value group per item (its keys and values read once), unless that leaves
            // too few items to keep every core busy.
            let heads = single.count * c.kvHeadCount >= 2 * Parallel.coreCount ? group : 1
            let perRow = c.headCount / heads
            Parallel.forEach(0..<(single.count * perRow), chunks: work >= 1 << 16 ? Parallel.coreCount : 1) { items in
                let (q, out) = box.value
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: heads * maxN)
                defer { scores.deallocate() }
                for item in items {
                    let s = single[item / perRow], h = item % perRow * heads
                    let row = offsets[s], n = segments[s].cache.count + 1
                    attendGroup(q: q + row * QW + h * hs, heads: heads, cache: segments[s].cache, layer: l,
                                group: h / group, n: n, headSize: hs, scale: scale, window: window,
                                scores: scores, out: out + row * QW + h * hs)
                }
            }
        }
        // Multi-row segments (prefill): float32 keys and values (earlier positions from the cache,
        // this step's rows as computed), packed products per head.
        for (i, s) in segments.enumerated() where s.tokens.count > 1 {
            let t = s.tokens.count, p = s.cache.count, n = p + t
            let keys = UnsafeMutablePointer<Float>.allocate(capacity: n * KW)  // (N, NKV*HS)
            let values = UnsafeMutablePointer<Float>.allocate(capacity: n * KW)  // (N, NKV*HS)
            defer { keys.deallocate(); values.deallocate() }
            s.cache.loadForStep(layer: l, past: p, rows: t, keys: k + offsets[i] * KW, values: v + offsets[i] * KW,
                                keysOut: keys, valuesOut: values)
            let kv = UncheckedSendable((UnsafePointer(keys), UnsafePointer(values)))
            let row = offsets[i]
            Parallel.forEach(0..<c.headCount) { heads in
                let (q, out) = box.value
                let (keys, values) = kv.value
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: t * n)  // (T, N)
                defer { scores.deallocate() }
                // This worker's heads, a run per key/value group (its keys and values packed once).
                var h = heads.lowerBound
                while h < heads.upperBound {
                    let g = h / group, end = min(heads.upperBound, (g + 1) * group)
                    attendMany(q: q + row * QW + h * hs, qStride: QW, t: t, past: p, heads: end - h,
                               keys: keys, values: values, width: KW, group: g, headSize: hs, scale: scale,
                               window: window, scores: scores, out: out + row * QW + h * hs, outStride: QW)
                    h = end
                }
            }
        }
    }
}

/// A key/value cache element type: loads 8 consecutive elements as float32.
protocol CacheElement {
    static func load8(_ p: UnsafePointer<Self>) -> SIMD8<Float>
}

extension Float: CacheElement {
    @inline(__always) static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
}

extension Float16: CacheElement {
    @inline(__always) static func load8(_ p: UnsafePointer<Float16>) -> SIMD8<Float> {
        SIMD8<Float>(UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float16>.self))
    }
}
