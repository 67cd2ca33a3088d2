import Tensor

// The KV-cached, batched forward pass of Gemma 3: the same entry point as `LlamaModel.forward`
// (segments of new tokens stacked into one `(R, C)` matrix, attention per segment against its
// `KVCache`), with Gemma's q/k norms, pre/post norms, GELU-tanh and sliding-window local layers.
//
// Dimension letters: B segments, T new tokens of one segment, R = ΣT rows of a step, C channels,
// NH/NKV query/key-value heads, HS head size, FF feed-forward width, V vocabulary, P positions
// already cached. The cache keeps every position; the sliding window is a mask on local layers.

extension Gemma3Model {
    public typealias Segment = StepSegment
    public typealias LogitRows = LLM.LogitRows

    /// A cache for one sequence of up to `capacity` positions (default: the context length).
    public func makeCache(capacity: Int? = nil, precision: KVCache.Precision = .f16) -> KVCache {
        KVCache(config: config, capacity: min(capacity ?? config.contextLength, config.contextLength),
                precision: precision)
    }

    /// Runs the new tokens of each segment through the model with `options.kernels`, appending
    /// their keys and values to the segment's cache.
    /// - Returns: logits `(rows, V)` flattened: one row per segment for `.last`, ΣT rows for `.all`.
    /// - Throws: `ModelError.emptyPrompt`, `.tokenOutOfRange`, `.contextOverflow`; nothing is
    ///   written to any cache when it throws.
    public func forward(_ segments: [Segment], logits rows: LogitRows = .last) throws -> [Float] {
        try forward(segments, logits: rows, kernels: options.kernels)
    }

    /// `forward(_:logits:)` with the kernels chosen per call (tests compare `.fast` and `.reference`).
    public func forward(_ segments: [Segment], logits rows: LogitRows,
                        kernels: ModelOptions.Kernels) throws -> [Float] {
        let c = config, C = c.embeddingLength
        // Row offsets of the segments in the stacked (R, C) activations, and each row's position.
        let (offsets, positions) = try c.stepLayout(segments)
        let r = offsets.last!

        let b = StepBuffers(config: c, rows: r)
        defer { b.deallocate() }
        let e = weights.tokenEmbedding
        for (i, t) in segments.flatMap(\.tokens).enumerated() {
            Dequantize.dequantizeUnchecked(e.type, from: e.raw + t * e.rowBytes, count: C, into: b.x + i * C)
            for j in 0..<C { b.x[i * C + j] *= c.embeddingScale }
        }
        c.forEachLayer(positions: positions) { l, rope in
            block(l, segments: segments, offsets: offsets, buffers: b, rope: rope, kernels: kernels)
        }
        for s in segments { s.cache.count += s.tokens.count }

        // Final norm and the tied head on the rows that need logits.
        let picked = rows.picked(offsets: offsets)
        for (i, row) in picked.enumerated() { (b.h + i * C).update(from: b.x + row * C, count: C) }
        Ops.rmsNorm(b.h, b.h, weight: weights.outputNorm, rows: picked.count, channels: C, epsilon: c.normEpsilon)
        if kernels == .fast, picked.count > 4, let packed = weights.outputHead.packed {
            // The packed kernel writes every element, so the kept storage needs no zeroing.
            var logits = logitsStore.take(count: picked.count * c.vocabularySize)
            logits.withUnsafeMutableBufferPointer { out in
                BLAS.gemm(x: b.h, rows: picked.count, packed: packed, bias: nil, c: out.baseAddress!)
            }
            logitsStore.keep(logits)
            return logits
        }
        var logits = [Float](repeating: 0, count: picked.count * c.vocabularySize)
        logits.withUnsafeMutableBufferPointer { out in
            if useQuantized([weights.outputHead], rows: picked.count, kernels: kernels) {
                QuantMatVec.multiply([weights.outputHead], x: b.h, t: picked.count, outputs: [out.baseAddress!],
                                     integer: picked.count >= options.integerKernelMinRows)
            } else {
                head(b.h, rows: picked.count, into: out.baseAddress!)
            }
        }
        return logits
    }

    // MARK: Block

    /// One block on the stacked rows, in place on `b.x`.
    private func block(_ l: Int, segments: [Segment], offsets: [Int], buffers b: StepBuffers,
                       rope: (cos: [Float], sin: [Float]), kernels: ModelOptions.Kernels) {
        let c = config, w = layers[l], r = offsets.last!, C = c.embeddingLength, hs = c.headSize
        let QW = c.queryWidth, KW = c.kvWidth, eps = c.normEpsilon
        let decodeStep = r == segments.count  // one new token per sequence

        // Attention: x += postNorm(Wo · attention(rope(qNorm(Wq h)), rope(kNorm(Wk h)), Wv h)), h = norm(x).
        Ops.rmsNorm(b.h, b.x, weight: w.attentionNorm, rows: r, channels: C, epsilon: eps)
        linear([w.query, w.key, w.value], b.h, rows: r, outputs: [b.q, b.k, b.v], kernels: kernels, decodeStep: decodeStep)
        Ops.rmsNorm(b.q, b.q, weight: w.queryNorm!, rows: r * c.headCount, channels: hs, epsilon: eps)
        Ops.rmsNorm(b.k, b.k, weight: w.keyNorm!, rows: r * c.kvHeadCount, channels: hs, epsilon: eps)
        rope.cos.withUnsafeBufferPointer { cos in
            rope.sin.withUnsafeBufferPointer { sin in
                Ops.rope(b.q, rows: r, stride: QW, heads: c.headCount, headSize: hs,
                         cos: cos.baseAddress!, sin: sin.baseAddress!, style: .halves)
                Ops.rope(b.k, rows: r, stride: KW, heads: c.kvHeadCount, headSize: hs,
                         cos: cos.baseAddress!, sin: sin.baseAddress!, style: .halves)
            }
        }
        Attention.step(layer: l, segments: segments, offsets: offsets, config: c, q: b.q, k: b.k, v: b.v, out: b.attention)
        linear([w.output], b.attention, rows: r, outputs: [b.h], kernels: kernels, decodeStep: decodeStep)
        Ops.rmsNorm(b.h, b.h, weight: w.postAttentionNorm!, rows: r, channels: C, epsilon: eps)
        Ops.add(b.x, b.h, count: r * C)

        // Feed-forward: x += postNorm(Wdown · (gelu(Wgate h) * Wup h)), h = norm(x).
        Ops.rmsNorm(b.h, b.x, weight: w.ffnNorm, rows: r, channels: C, epsilon: eps)
        linear([w.gate, w.up], b.h, rows: r, outputs: [b.gate, b.up], kernels: kernels, decodeStep: decodeStep)
        Ops.gatedActivation(b.gate, b.up, count: r * c.feedForwardLength, activation: .geluTanh)
        linear([w.down], b.gate, rows: r, outputs: [b.h], kernels: kernels, decodeStep: decodeStep)
        Ops.rmsNorm(b.h, b.h, weight: w.postFFNNorm!, rows: r, channels: C, epsilon: eps)
        Ops.add(b.x, b.h, count: r * C)
    }

    // MARK: Linear layers

    /// Whether a step of `rows` rows multiplies `ws` with the quantized kernels: `.fast` steps of
    /// at most 4 rows, or up to `options.quantizedRowLimit` rows when every weight has an integer
    /// kernel; otherwise `sgemm` on the float32 copies.
    func useQuantized(_ ws: [LinearWeight], rows r: Int, kernels: ModelOptions.Kernels) -> Bool {
        kernels == .fast && (r <= 4 || (r <= options.quantizedRowLimit && ws.allSatisfy { Self.integerKernelTypes.contains($0.type) }))
    }

    /// Weight types whose integer kernels (`QuantIntDot`) exist on every CPU (the 128-bit Swift
    /// ones), which stay fast for many rows. The AVX2-only Q5_0/Q5_1 kernels are not counted, so
    /// Gemma's batched steps (mostly Q5_0) multiply the float32 copies (`gemmFewRows` for decode steps).
    private static let integerKernelTypes: Set<GGMLType> = [.q4_0, .q4_1, .q8_0]

    /// `outputs[i] (R, rows_i) = x (R, K) · ws[i]ᵀ`.
    private func linear(_ ws: [LinearWeight], _ x: UnsafePointer<Float>, rows r: Int,
                        outputs: [UnsafeMutablePointer<Float>], kernels: ModelOptions.Kernels, decodeStep: Bool) {
        // Types without a fused kernel (Q5_0, Q6_K on CPUs without AVX2) would be dequantized row
        // by row at every step: the float32 copy through sgemm reads 4 bytes per weight but is faster.
        if useQuantized(ws, rows: r, kernels: kernels) && ws.allSatisfy({ QuantDot.isFused($0.type) }) {
            QuantMatVec.multiply(ws, x: x, t: r, outputs: outputs, integer: r >= options.integerKernelMinRows)
            return lora.apply(ws, x, rows: r, outputs: outputs)
        }
        for (w, out) in zip(ws, outputs) { linear(w, x, rows: r, into: out, decodeStep: decodeStep) }
    }
}
