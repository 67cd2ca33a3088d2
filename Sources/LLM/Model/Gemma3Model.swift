import Foundation
import Tensor

/// Gemma 3 (`general.architecture = gemma3`): a float32 reference forward pass over a GGUF file,
/// checked against `Tests/Fixtures/golden/gemma3_270m_logits.json`.
///
/// Differences from Llama, as llama.cpp's `llm_build_gemma3` and Hugging Face's `Gemma3TextModel`
/// compute them:
/// - embeddings scaled by sqrt(C);
/// - RMSNorm `x / rms * w`, where the GGUF converter has stored Hugging Face's `1 + w` already;
///   a norm also after attention and after the feed-forward (pre/post norms);
/// - q and k RMS-normalised per head (weights `(HS)`) before RoPE;
/// - RoPE on halves (NeoX, no q/k row permutation in the file); local layers use base 10,000 and
///   a causal sliding window (`gemma3.attention.sliding_window`), every sixth layer is global with
///   `gemma3.rope.freq_base`;
/// - attention scale 1/sqrt(HS); GELU (tanh approximation) gated feed-forward; tied output head.
///
/// Dimension letters: T tokens, C channels, NH/NKV query/key-value heads, HS head size,
/// FF feed-forward width, V vocabulary.
public final class Gemma3Model: @unchecked Sendable {
    // @unchecked: immutable after init (`logitsStore` locks itself).

    public let file: GGUFFile
    /// The hyper-parameters (`ModelConfig(gemma3:)`): local layers have a sliding window and
    /// RoPE base 10,000, global layers (every sixth) no window and `gemma3.rope.freq_base`.
    public let config: ModelConfig
    /// Kernel choice of the cached `forward(_:logits:)` (`denseWeights` is ignored: the block
    /// weights are always kept as float32 for prefill and the reference pass).
    public let options: ModelOptions
    /// The weights (with Gemma 3's q/k norms and post-norms); the head is tied to the token
    /// embedding `(V, C)`, which stays quantized.
    public let weights: ModelWeights
    var layers: [LayerWeights] { weights.layers }
    /// The adapter applied, if any (its path and form; the values live in `lora` or the weights).
    public let adapter: (path: String, format: LoRAAdapter.Format, mode: AdapterMode)?
    /// In-forward LoRA branches by weight name (empty without an adapter or when merged).
    let lora: [String: LoRADelta]
    /// The batched head's logits storage, kept between steps (see ``ReusableFloats``).
    let logitsStore = ReusableFloats()

    /// Loads the weights of a `gemma3` GGUF file, dequantizing the block weights to float32
    /// (about 400 MB for the 270M model); the embedding/head stays quantized (with
    /// `options.weightFormat == .bfloat16` the block weights are bfloat16 and the head gets a
    /// bfloat16 copy for steps of more than 4 rows).
    /// - Parameter adapter: a LoRA adapter, applied in the forward pass or merged into the float32
    ///   weights (`options.adapterMode`).
    /// - Throws: `ModelError` for another architecture, bad metadata or missing/mis-shaped tensors;
    ///   `AdapterError` for an adapter of another model.
    public init(file: GGUFFile, options: ModelOptions = .init(), adapter: LoRAAdapter? = nil) throws {
        try CPUFeatures.check()
        self.file = file
        self.options = options
        let c = try ModelConfig(gemma3: file)
        config = c
        var weights = try ModelWeights(file: file, config: c)
        lora = try weights.apply(adapter, file: file, config: c, mode: options.adapterMode)
        self.adapter = adapter.map { ($0.path, $0.format, options.adapterMode) }
        for w in weights.blockLinears { w.makeDense(format: options.weightFormat) }
        // bfloat16 mode: a packed copy of the head too (335 MB for the 270M model), since batched
        // steps spend most of their time on its 262,144 rows.
        if options.weightFormat == .bfloat16 { weights.outputHead.makeDense(format: .bfloat16) }
        self.weights = weights
    }

    public convenience init(path: String, options: ModelOptions = .init(), adapter: LoRAAdapter? = nil) throws {
        try self.init(file: try GGUFFile(path: path), options: options, adapter: adapter)
    }

    // MARK: Forward

    /// Runs `tokens` (positions 0..<T) through the model.
    /// - Parameter allRows: logits for every position (scoring) or only the last (generation).
    /// - Returns: logits `(T, V)` or `(1, V)`, flattened.
    /// - Throws: `ModelError.emptyPrompt`, `.tokenOutOfRange`.
    public func forward(_ tokens: [Int], allRows: Bool = false) throws -> [Float] {
        let c = config, t = tokens.count, C = c.embeddingLength
        guard t > 0 else { throw ModelError.emptyPrompt }
        for id in tokens where !(0..<c.vocabularySize).contains(id) {
            throw ModelError.tokenOutOfRange(token: id, vocabularySize: c.vocabularySize)
        }
        let x = UnsafeMutablePointer<Float>.allocate(capacity: t * C)  // (T, C) residual stream
        defer { x.deallocate() }
        let e = weights.tokenEmbedding, scale = Float(C).squareRoot()
        for (i, id) in tokens.enumerated() {
            Dequantize.dequantizeUnchecked(e.type, from: e.raw + id * e.rowBytes, count: C, into: x + i * C)
            for j in 0..<C { x[i * C + j] *= scale }
        }
        var tables = [Float: (cos: [Float], sin: [Float])]()
        for l in 0..<c.layerCount {
            let base = c.ropeBase[l]
            if tables[base] == nil { tables[base] = Ops.ropeTable(positions: Array(0..<t), headSize: c.headSize, base: base) }
            block(l, x, rows: t, rope: tables[base]!)
        }
        // Final norm and the tied head on the rows that need logits.
        let rows = allRows ? t : 1
        let h = UnsafeMutablePointer<Float>.allocate(capacity: rows * C)  // (rows, C)
        defer { h.deallocate() }
        h.update(from: x + (t - rows) * C, count: rows * C)
        Ops.rmsNorm(h, h, weight: weights.outputNorm, rows: rows, channels: C, epsilon: c.normEpsilon)
        var logits = [Float](repeating: 0, count: rows * c.vocabularySize)
        logits.withUnsafeMutableBufferPointer { out in head(h, rows: rows, into: out.baseAddress!) }
        return logits
    }

    /// Greedy continuation of `tokens` by `count` tokens (recomputing the prefix each step: a
    /// reference for tests, not a generation engine).
    public func greedy(_ tokens: [Int], count: Int) throws -> [Int] {
        var sequence = tokens, generated = [Int]()
        for _ in 0..<count {
            let logits = try forward(sequence)
            var best = 0
            for v in 1..<logits.count where logits[v] > logits[best] { best = v }
            generated.append(best)
            sequence.append(best)
        }
        return generated
    }

    /// One block, in place on `x (T, C)`.
    private func block(_ l: Int, _ x: UnsafeMutablePointer<Float>, rows t: Int, rope: (cos: [Float], sin: [Float])) {
        let c = config, w = layers[l], C = c.embeddingLength, hs = c.headSize
        let QW = c.headCount * hs, KW = c.kvHeadCount * hs, FF = c.feedForwardLength
        let h = UnsafeMutablePointer<Float>.allocate(capacity: t * max(C, QW))  // (T, C) / (T, NH*HS)
        let q = UnsafeMutablePointer<Float>.allocate(capacity: t * QW)  // (T, NH*HS)
        let k = UnsafeMutablePointer<Float>.allocate(capacity: t * KW)  // (T, NKV*HS)
        let v = UnsafeMutablePointer<Float>.allocate(capacity: t * KW)  // (T, NKV*HS)
        let gate = UnsafeMutablePointer<Float>.allocate(capacity: t * FF)  // (T, FF)
        let up = UnsafeMutablePointer<Float>.allocate(capacity: t * FF)  // (T, FF)
        defer { for p in [h, q, k, v, gate, up] { p.deallocate() } }

        // Attention: x += postNorm(Wo · attention(rope(qNorm(Wq h)), rope(kNorm(Wk h)), Wv h)), h = norm(x).
        Ops.rmsNorm(h, x, weight: w.attentionNorm, rows: t, channels: C, epsilon: c.normEpsilon)
        linear(w.query, h, rows: t, into: q)
        linear(w.key, h, rows: t, into: k)
        linear(w.value, h, rows: t, into: v)
        Ops.rmsNorm(q, q, weight: w.queryNorm!, rows: t * c.headCount, channels: hs, epsilon: c.normEpsilon)
        Ops.rmsNorm(k, k, weight: w.keyNorm!, rows: t * c.kvHeadCount, channels: hs, epsilon: c.normEpsilon)
        rope.cos.withUnsafeBufferPointer { cos in
            rope.sin.withUnsafeBufferPointer { sin in
                Ops.rope(q, rows: t, stride: QW, heads: c.headCount, headSize: hs,
                         cos: cos.baseAddress!, sin: sin.baseAddress!, style: .halves)
                Ops.rope(k, rows: t, stride: KW, heads: c.kvHeadCount, headSize: hs,
                         cos: cos.baseAddress!, sin: sin.baseAddress!, style: .halves)
            }
        }
        attention(q, k, v, rows: t, window: c.slidingWindow[l], into: h)
        linear(w.output, h, rows: t, into: gate)  // gate as (T, C) scratch
        Ops.rmsNorm(gate, gate, weight: w.postAttentionNorm!, rows: t, channels: C, epsilon: c.normEpsilon)
        Ops.add(x, gate, count: t * C)

        // Feed-forward: x += postNorm(Wdown · (gelu(Wgate h) * Wup h)), h = norm(x).
        Ops.rmsNorm(h, x, weight: w.ffnNorm, rows: t, channels: C, epsilon: c.normEpsilon)
        linear(w.gate, h, rows: t, into: gate)
        linear(w.up, h, rows: t, into: up)
        Ops.gatedActivation(gate, up, count: t * FF, activation: .geluTanh)
        linear(w.down, gate, rows: t, into: h)
        Ops.rmsNorm(h, h, weight: w.postFFNNorm!, rows: t, channels: C, epsilon: c.normEpsilon)
        Ops.add(x, h, count: t * C)
    }

    /// Causal (optionally sliding-window) grouped-query attention, 1/sqrt(HS) scaling.
    /// Position i sees j when j <= i and i - j < window.
    /// - Parameters: q `(T, NH*HS)`, k and v `(T, NKV*HS)`, out `(T, NH*HS)`.
    private func attention(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                           rows t: Int, window: Int?, into out: UnsafeMutablePointer<Float>) {
        let c = config, hs = c.headSize, QW = c.headCount * hs, KW = c.kvHeadCount * hs
        let group = c.headCount / c.kvHeadCount, scale = c.attentionScale
        var scores = [Float](repeating: 0, count: t)
        for head in 0..<c.headCount {
            let kvOffset = (head / group) * hs
            for i in 0..<t {
                let first = window.map { max(0, i - $0 + 1) } ?? 0
                let qi = q + i * QW + head * hs
                var maxScore = -Float.infinity
                for j in first...i {
                    let s = QuantDot.f32(qi, k + j * KW + kvOffset, hs) * scale
                    scores[j] = s
                    maxScore = max(maxScore, s)
                }
                var sum: Float = 0
                for j in first...i {
                    scores[j] = Foundation.exp(scores[j] - maxScore)
                    sum += scores[j]
                }
                let o = out + i * QW + head * hs
                for d in 0..<hs { o[d] = 0 }
                for j in first...i {
                    let p = scores[j] / sum, vj = v + j * KW + kvOffset
                    for d in 0..<hs { o[d] += p * vj[d] }
                }
            }
        }
    }

    /// `out (T, rows) = x (T, columns) · Wᵀ` on the dense weight (+ the adapter's branch).
    /// `decodeStep`: every row is its own sequence's one new token (batched decode), where
    /// ``BLAS/gemmFewRows(x:w:c:m:n:k:)`` replaces `sgemm`, as in ``LlamaModel``.
    func linear(_ w: LinearWeight, _ x: UnsafePointer<Float>, rows t: Int, into out: UnsafeMutablePointer<Float>,
                decodeStep: Bool = false) {
        let done = w.multiplyFloat(x, rows: t, into: out, fewRows: decodeStep)
        precondition(done, "Gemma 3 weight \(w.name) has no float32 copy")
        lora[w.name]?.apply(x, rows: t, into: out)
    }

    /// `out (T, V) = h (T, C) · Embᵀ`, dequantizing the embedding 16k rows at a time.
    func head(_ h: UnsafePointer<Float>, rows t: Int, into out: UnsafeMutablePointer<Float>) {
        let e = weights.outputHead, C = config.embeddingLength, V = config.vocabularySize, chunk = 16_384
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunk * C)  // (chunk, C)
        defer { scratch.deallocate() }
        var start = 0
        while start < V {
            let n = min(chunk, V - start)
            e.dequantizeRows(start..<(start + n), into: scratch)
            BLAS.gemm(a: h, b: scratch, transB: true, c: out + start, ldc: V, m: t, n: n, k: C, parallel: true)
            start += n
        }
    }
}

// MARK: - Configuration

extension ModelConfig {
    /// Layer `l` of Gemma 3 is global when `(l + 1) % 6 == 0` (llama.cpp's sliding-window pattern).
    static let gemma3GlobalEvery = 6

    /// The configuration of a `gemma3` GGUF file: `gemma3.*` metadata, NeoX RoPE, plain RMSNorm
    /// (the converter stored `1 + w`), GELU-tanh, embeddings scaled by sqrt(C), q/k norms, local
    /// layers with `gemma3.attention.sliding_window` (default 512) and RoPE base 10,000, global
    /// layers with `gemma3.rope.freq_base` (default 1,000,000), attention scale 1/sqrt(HS).
    /// - Throws: `ModelError.unsupportedArchitecture`, `.invalidMetadata`, `GGUFError`.
    init(gemma3 file: GGUFFile) throws {
        let m = file.metadata, path = file.path
        let arch = try m.string("general.architecture")
        guard arch == "gemma3" else {
            throw ModelError.unsupportedArchitecture(path: path, architecture: arch, supported: ["gemma3"])
        }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            let full = "gemma3.\(key)"
            if let value, !m.contains(full) { return value }
            let v = try m.int(full)
            guard v > 0 else { throw ModelError.invalidMetadata(path: path, key: full, value: "\(v)", expected: "> 0") }
            return v
        }
        architecture = arch
        embeddingLength = try int("embedding_length")
        layerCount = try Self.checkedLayerCount(try int("block_count"), file: file)
        feedForwardLength = try int("feed_forward_length")
        headCount = try int("attention.head_count")
        kvHeadCount = try int("attention.head_count_kv")
        headSize = try int("attention.key_length")
        vocabularySize = try m.strings("tokenizer.ggml.tokens").count
        contextLength = try int("context_length", default: 32_768)
        normEpsilon = try m.float("gemma3.attention.layer_norm_rms_epsilon")
        let globalBase = m.contains("gemma3.rope.freq_base") ? try m.float("gemma3.rope.freq_base") : 1_000_000
        let window = try int("attention.sliding_window", default: 512)
        guard headCount % kvHeadCount == 0, headSize % 8 == 0 else {
            throw ModelError.invalidMetadata(path: path, key: "gemma3.attention.head_count_kv", value: "\(kvHeadCount)",
                                             expected: "a divisor of head_count \(headCount), key_length a multiple of 8")
        }
        guard globalBase > 0, normEpsilon > 0 else {
            throw ModelError.invalidMetadata(path: path, key: "gemma3.rope.freq_base", value: "\(globalBase)", expected: "> 0")
        }
        let global = (0..<layerCount).map { ($0 + 1) % Self.gemma3GlobalEvery == 0 }
        ropeBase = global.map { $0 ? globalBase : 10_000 }
        slidingWindow = global.map { $0 ? nil : window }
        ropeStyle = .halves
        normStyle = .plain
        activation = .geluTanh
        embeddingScale = Float(embeddingLength).squareRoot()
        queryKeyNorm = true
        attentionScale = 1 / Float(headSize).squareRoot()
        postNorms = true
    }
}

/// A float array kept between calls so a large per-step output reuses its memory: Gemma's batched
/// logits (32 x 262,144 floats, 33.5 MB) are above glibc's largest mmap threshold (32 MB), so a
/// fresh array is new pages, zeroed by the kernel on first touch, at every step. Thread-safe: a
/// caller that finds the array taken gets a new one.
final class ReusableFloats: @unchecked Sendable {
    private let lock = NSLock()
    private var spare: [Float] = []

    /// `count` floats; their values are unspecified (the caller overwrites them all).
    func take(count: Int) -> [Float] {
        lock.lock()
        var b = spare
        spare = []
        lock.unlock()
        if b.count != count { b = [Float](repeating: 0, count: count) }
        return b
    }

    /// Keeps `array`'s storage for the next ``take(count:)``; it is written in place then if the
    /// caller has let go of its copy (else copy-on-write gives that call a new one).
    func keep(_ array: [Float]) {
        lock.lock()
        spare = array
        lock.unlock()
    }
}
