import Tensor

/// A Llama-family decoder (Llama, SmolLM2, Qwen2-style biases) running from a GGUF file.
///
/// Dimension letters: B sequences in a step, T new tokens of one sequence, R = ΣT rows of a
/// step, C channels, NH/NKV query/key-value heads, HS head size, FF feed-forward width,
/// V vocabulary, P positions already cached.
///
/// One entry point, `forward`, serves prefill (one sequence, many tokens), decode (one token)
/// and batched decode (many sequences, one token each, the linear layers as one matrix
/// product): every step is a list of `Segment`s whose rows are stacked into one `(R, C)`
/// activation matrix; only attention looks at segments separately.
public final class LlamaModel: @unchecked Sendable {
    // @unchecked: immutable after init (dense weight copies are made in init).

    public typealias Options = ModelOptions
    public typealias Segment = StepSegment
    public typealias LogitRows = LLM.LogitRows

    public let file: GGUFFile
    public let config: ModelConfig
    public let weights: ModelWeights
    public let options: Options
    /// The adapter applied, if any (its path and form; the values live in `lora` or the weights).
    public let adapter: (path: String, format: LoRAAdapter.Format, mode: AdapterMode)?
    /// In-forward LoRA branches by weight name (empty without an adapter or when merged).
    let lora: [String: LoRADelta]

    /// Loads the model in `file`, with a LoRA adapter when given.
    /// - Parameter adapter: applied in every step (`options.adapterMode = .inForward`) or merged
    ///   into float32 copies of the adapted weights at load time (`.merged`).
    /// - Throws: `ModelError` (architecture, tensors, shapes, CPU features), `GGUFError`,
    ///   `AdapterError` (another base model, tensors that fit no weight).
    public init(file: GGUFFile, options: Options = Options(), adapter: LoRAAdapter? = nil) throws {
        try CPUFeatures.check()
        self.file = file
        config = try ModelConfig(file: file)
        var weights = try ModelWeights(file: file, config: config)
        self.options = options
        lora = try weights.apply(adapter, file: file, config: config, mode: options.adapterMode)
        self.weights = weights
        self.adapter = adapter.map { ($0.path, $0.format, options.adapterMode) }
        if options.denseWeights {
            for w in weights.blockLinears { w.makeDense(format: options.weightFormat) }
            weights.outputHead.makeDense(format: options.weightFormat)
        }
    }

    /// Opens and loads the GGUF file at `path`.
    public convenience init(path: String, options: Options = Options(), adapter: LoRAAdapter? = nil) throws {
        try self.init(file: try GGUFFile(path: path), options: options, adapter: adapter)
    }

    /// A cache for one sequence of up to `capacity` positions (default: the context length).
    public func makeCache(capacity: Int? = nil, precision: KVCache.Precision = .f16) -> KVCache {
        KVCache(config: config, capacity: min(capacity ?? config.contextLength, config.contextLength),
                precision: precision)
    }

    // MARK: Forward

    /// Runs the new tokens of each segment through the model, appending their keys and values
    /// to the segment's cache.
    ///
    /// - Parameters:
    ///   - segments: distinct sequences (each its own cache) with at least one token each.
    ///   - rows: which rows get logits.
    ///   - kernels: overrides `options.kernels` for this step (tests compare both).
    /// - Returns: logits `(rows, V)` flattened: one row per segment for `.last`, ΣT rows for `.all`.
    /// - Throws: `ModelError.emptyPrompt`, `.tokenOutOfRange`, `.contextOverflow`; nothing is
    ///   written to any cache when it throws.
    public func forward(_ segments: [Segment], logits rows: LogitRows = .last,
                        kernels: Options.Kernels? = nil) throws -> [Float] {
        let c = config, kernels = kernels ?? options.kernels
        // Row offsets of the segments in the stacked (R, C) activations, and each row's position.
        let (offsets, positions) = try c.stepLayout(segments)
        let r = offsets.last!

        let buffers = StepBuffers(config: c, rows: r)
        defer { buffers.deallocate() }
        embed(segments.flatMap(\.tokens), into: buffers.x)

        c.forEachLayer(positions: positions) { l, rope in
            block(l, segments: segments, offsets: offsets, buffers: buffers, rope: rope, kernels: kernels)
        }
        for s in segments { s.cache.count += s.tokens.count }

        // Final norm and output head on the rows that need logits.
        let picked = rows.picked(offsets: offsets)
        let h = UnsafeMutablePointer<Float>.allocate(capacity: picked.count * c.embeddingLength)
        defer { h.deallocate() }
        for (i, row) in picked.enumerated() {
            (h + i * c.embeddingLength).update(from: buffers.x + row * c.embeddingLength, count: c.embeddingLength)
        }
        Ops.rmsNorm(h, h, weight: weights.outputNorm, rows: picked.count, channels: c.embeddingLength,
                    epsilon: c.normEpsilon, style: c.normStyle)
        var logits = [Float](repeating: 0, count: picked.count * c.vocabularySize)
        logits.withUnsafeMutableBufferPointer { out in
            linear([weights.outputHead], h, rows: picked.count, outputs: [out.baseAddress!], kernels: kernels,
                   decodeStep: r == segments.count)
        }
        return logits
    }

    /// Token embeddings `(R, C)`, times `embeddingScale`.
    private func embed(_ tokens: [Int], into x: UnsafeMutablePointer<Float>) {
        let e = weights.tokenEmbedding, c = config.embeddingLength
        for (i, t) in tokens.enumerated() {
            Dequantize.dequantizeUnchecked(e.type, from: e.raw + t * e.rowBytes, count: c, into: x + i * c)
            if config.embeddingScale != 1 {
                for j in 0..<c { x[i * c + j] *= config.embeddingScale }
            }
        }
    }

    /// One transformer block on the stacked rows, in place on `buffers.x`.
    private func block(_ l: Int, segments: [Segment], offsets: [Int], buffers b: StepBuffers,
                       rope: (cos: [Float], sin: [Float]), kernels: Options.Kernels) {
        let c = config, w = weights.layers[l], r = offsets.last!
        let C = c.embeddingLength, QW = c.queryWidth, KW = c.kvWidth
        let decodeStep = r == segments.count  // one new token per sequence

        // Attention: x += Wo · attention(rope(Wq h), rope(Wk h), Wv h), h = norm(x).
        Ops.rmsNorm(b.h, b.x, weight: w.attentionNorm, rows: r, channels: C, epsilon: c.normEpsilon, style: c.normStyle)
        linear([w.query, w.key, w.value], b.h, rows: r, outputs: [b.q, b.k, b.v], kernels: kernels, decodeStep: decodeStep)
        rope.cos.withUnsafeBufferPointer { cos in
            rope.sin.withUnsafeBufferPointer { sin in
                Ops.rope(b.q, rows: r, stride: QW, heads: c.headCount, headSize: c.headSize,
                         cos: cos.baseAddress!, sin: sin.baseAddress!, style: c.ropeStyle)
                Ops.rope(b.k, rows: r, stride: KW, heads: c.kvHeadCount, headSize: c.headSize,
                         cos: cos.baseAddress!, sin: sin.baseAddress!, style: c.ropeStyle)
            }
        }
        Attention.step(layer: l, segments: segments, offsets: offsets, config: c, q: b.q, k: b.k, v: b.v, out: b.attention)
        linear([w.output], b.attention, rows: r, outputs: [b.h], kernels: kernels, decodeStep: decodeStep)
        Ops.add(b.x, b.h, count: r * C)

        // Feed-forward: x += Wdown · (act(Wgate h) * Wup h), h = norm(x).
        Ops.rmsNorm(b.h, b.x, weight: w.ffnNorm, rows: r, channels: C, epsilon: c.normEpsilon, style: c.normStyle)
        linear([w.gate, w.up], b.h, rows: r, outputs: [b.gate, b.up], kernels: kernels, decodeStep: decodeStep)
        Ops.gatedActivation(b.gate, b.up, count: r * c.feedForwardLength, activation: c.activation)
        linear([w.down], b.gate, rows: r, outputs: [b.h], kernels: kernels, decodeStep: decodeStep)
        Ops.add(b.x, b.h, count: r * C)
    }

    /// `outputs[i] (R, rows_i) = x (R, K) · weights[i]ᵀ (+ bias) (+ scale · (x Aᵀ) Bᵀ with an adapter)`.
    /// `decodeStep`: every row is its own sequence's one new token (batched decode), where
    /// ``BLAS/gemmFewRows(x:w:c:m:n:k:)`` replaces `sgemm`. Prompt steps keep `sgemm`.
    func linear(_ ws: [LinearWeight], _ x: UnsafePointer<Float>, rows r: Int, outputs: [UnsafeMutablePointer<Float>],
                kernels: Options.Kernels, decodeStep: Bool = false) {
        baseLinear(ws, x, rows: r, outputs: outputs, kernels: kernels, decodeStep: decodeStep)
        lora.apply(ws, x, rows: r, outputs: outputs)
    }

    /// `outputs[i] (R, rows_i) = x (R, K) · weights[i]ᵀ (+ bias)`.
    private func baseLinear(_ ws: [LinearWeight], _ x: UnsafePointer<Float>, rows r: Int, outputs: [UnsafeMutablePointer<Float>],
                            kernels: Options.Kernels, decodeStep: Bool) {
        if kernels == .fast
            && (r <= 4 || (r <= options.quantizedRowLimit && ws.allSatisfy { $0.dense == nil && $0.packed == nil && QuantIntDot.supports($0.type) })) {
            return QuantMatVec.multiply(ws, x: x, t: r, outputs: outputs, integer: r >= options.integerKernelMinRows)
        }
        for (w, out) in zip(ws, outputs) {
            if !w.multiplyFloat(x, rows: r, into: out, fewRows: decodeStep) {
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: w.rows * w.columns)
                defer { scratch.deallocate() }
                w.dequantizeRows(0..<w.rows, into: scratch)
                BLAS.gemm(a: x, b: scratch, transB: true, c: out, m: r, n: w.rows, k: w.columns, parallel: true)
            }
            if let bias = w.bias {
                for i in 0..<r { for j in 0..<w.rows { out[i * w.rows + j] += bias[j] } }
            }
        }
    }
}
