import Tensor

/// One linear layer's weight `(out, in)` as stored in the GGUF file (ggml dims `[in, out]`):
/// still quantized and memory-mapped, plus an optional float32 copy for the GEMM paths.
///
/// Decode multiplies the quantized rows directly (`QuantMatVec`); batched steps and prompts use
/// the float32 copy made once by `makeDense()`, packed for ``BLAS/gemm(x:rows:packed:bias:c:)``,
/// or without it the integer kernels (up to `quantizedRowLimit` rows) or a per-call float32 copy
/// in scratch.
public final class LinearWeight: @unchecked Sendable {
    // @unchecked: `packed` is written once in `makeDense()`, before the weight is shared.
    public let name: String
    public let type: GGMLType
    /// Output features (rows).
    public let rows: Int
    /// Input features (columns; a whole number of blocks).
    public let columns: Int
    /// `rows * rowBytes` raw bytes, valid while `file` lives.
    public let raw: UnsafeRawPointer
    public let rowBytes: Int
    /// Optional bias `(out)` (Qwen2 q/k/v).
    public let bias: [Float]?
    /// Keeps the mapping alive (nil for weights over caller-owned memory).
    private let file: GGUFFile?
    /// `(rows, columns)` float32 row-major: only for weights made from float32 values (merged
    /// LoRA weights), which the quantized-kernel path reads as type F32 too.
    public private(set) var dense: UnsafeMutablePointer<Float>?
    /// The copy made by `makeDense(format:)`, packed in panels of 16 rows.
    public private(set) var packed: PackedMatrix?

    init(tensor: GGUFTensor, bias: [Float]?) {
        name = tensor.name
        type = tensor.type
        columns = tensor.info.rowLength
        rows = tensor.info.rowCount
        rowBytes = tensor.info.rowBytes
        raw = tensor.bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 16)!
        self.bias = bias
        file = tensor.file
    }

    /// The weight of a tensor checked by ``GGUFFile/weight(_:dims:)``: quantized and memory-mapped,
    /// without a float32 copy (the tuner's frozen base dequantizes it itself).
    public convenience init(_ tensor: GGUFTensor) { self.init(tensor: tensor, bias: nil) }

    /// A weight over `rows * rowBytes` bytes of `type` the caller keeps alive (tests, slices).
    init(name: String, type: GGMLType, rows: Int, columns: Int, raw: UnsafeRawPointer, bias: [Float]? = nil) {
        self.name = name
        self.type = type
        self.rows = rows
        self.columns = columns
        rowBytes = type.rowBytes(elements: columns)!
        self.raw = raw
        self.bias = bias
        file = nil
    }

    /// A float32 weight over `values (rows, columns)`, which it takes ownership of (merged
    /// LoRA weights): both the quantized-kernel path (type F32) and `sgemm` read it.
    init(name: String, rows: Int, columns: Int, owning values: UnsafeMutablePointer<Float>, bias: [Float]? = nil) {
        self.name = name
        type = .f32
        self.rows = rows
        self.columns = columns
        rowBytes = columns * MemoryLayout<Float>.stride
        raw = UnsafeRawPointer(values)
        self.bias = bias
        file = nil
        dense = values
    }

    deinit { dense?.deallocate() }

    /// Dequantizes the whole weight once and packs it for ``BLAS/gemm(x:rows:packed:bias:c:)``
    /// (`rows * columns * 4` bytes as float32, half that as bfloat16, plus at most 15 rows of
    /// padding), on all cores, 8,192 rows at a time. Nothing to do for a weight that already has
    /// `dense` values.
    public func makeDense(format: PackedMatrix.Format = .float32) {
        guard dense == nil, packed == nil else { return }
        packed = PackedMatrix(rows: rows, columns: columns, format: format) { range, buffer in
            dequantizeRows(range, into: buffer)
        }
    }

    /// `out (r, rows) = x (r, columns) · Wᵀ` on the float32 copy: the packed one when made, else
    /// `dense` (`fewRows`: batched decode steps, where `gemmFewRows` replaces `sgemm`). Returns
    /// `false` when the weight has neither.
    func multiplyFloat(_ x: UnsafePointer<Float>, rows r: Int, into out: UnsafeMutablePointer<Float>, fewRows: Bool) -> Bool {
        if let packed {
            BLAS.gemm(x: x, rows: r, packed: packed, bias: nil, c: out)
        } else if let dense {
            if fewRows {
                BLAS.gemmFewRows(x: x, w: dense, c: out, m: r, n: rows, k: columns)
            } else {
                BLAS.gemm(a: x, b: dense, transB: true, c: out, m: r, n: rows, k: columns, parallel: true)
            }
        } else {
            return false
        }
        return true
    }

    /// Dequantizes rows `range` into `destination` `(range.count, columns)`, on all cores.
    public func dequantizeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let box = UncheckedSendable(destination)
        Parallel.forEach(range, chunks: 2 * Parallel.coreCount) { part in
            Dequantize.dequantizeUnchecked(type, from: raw + part.lowerBound * rowBytes, count: part.count * columns,
                                           into: box.value + (part.lowerBound - range.lowerBound) * columns)
        }
    }
}

extension GGUFFile {
    /// The tensor `name`, checked to have ggml `dims` and a type that can be dequantized.
    /// - Throws: `ModelError.missingTensor`, `.wrongShape`, `.unsupportedTensorType`.
    public func weight(_ name: String, dims: [Int]) throws -> GGUFTensor {
        guard contains(tensor: name) else { throw ModelError.missingTensor(path: path, tensor: name) }
        let t = try tensor(named: name)
        guard t.info.dims == dims else {
            throw ModelError.wrongShape(path: path, tensor: name, expected: dims, actual: t.info.dims)
        }
        guard t.type.canDequantize else {
            throw ModelError.unsupportedTensorType(path: path, tensor: name, type: "\(t.type)")
        }
        return t
    }
}

/// The weights of one transformer block.
public struct LayerWeights: Sendable {
    public let attentionNorm: [Float]  // (C)
    public let query: LinearWeight  // (NH*HS, C)
    public let key: LinearWeight  // (NKV*HS, C)
    public let value: LinearWeight  // (NKV*HS, C)
    public let output: LinearWeight  // (C, NH*HS)
    public let ffnNorm: [Float]  // (C)
    public let gate: LinearWeight  // (FF, C)
    public let up: LinearWeight  // (FF, C)
    public let down: LinearWeight  // (C, FF)
    /// The per-head q and k norms `(HS)` when ``ModelConfig/queryKeyNorm`` (Gemma 3), else `nil`.
    public let queryNorm: [Float]?, keyNorm: [Float]?
    /// The norms on the attention and feed-forward outputs `(C)` when ``ModelConfig/postNorms``
    /// (Gemma 3), else `nil`.
    public let postAttentionNorm: [Float]?, postFFNNorm: [Float]?

    /// The block's linear weights: q, k, v, o, gate, up, down.
    public var linears: [LinearWeight] { [query, key, value, output, gate, up, down] }
}

/// All weights of a model (`llama`, `qwen2` or `gemma3`), validated against its `ModelConfig`:
/// the one place that names a model's GGUF tensors, for the runtime and the tuner.
public struct ModelWeights: Sendable {
    /// `(V, C)` token embeddings (also the output head when the model ties them).
    public let tokenEmbedding: LinearWeight
    public private(set) var layers: [LayerWeights]
    public let outputNorm: [Float]  // (C)
    /// `(V, C)`: `output.weight`, or `tokenEmbedding` when tied.
    public let outputHead: LinearWeight
    public var tiedEmbeddings: Bool { outputHead === tokenEmbedding }

    /// Finds and checks every tensor `config` needs.
    /// - Throws: `ModelError.missingTensor`, `.wrongShape`, `.unsupportedTensorType`.
    public init(file: GGUFFile, config: ModelConfig) throws {
        let c = config
        func tensor(_ name: String, _ dims: [Int]) throws -> GGUFTensor { try file.weight(name, dims: dims) }
        func vector(_ name: String, _ n: Int) throws -> [Float] { try tensor(name, [n]).dequantized() }
        func vector(_ name: String, _ n: Int, if present: Bool) throws -> [Float]? { present ? try vector(name, n) : nil }
        func linear(_ name: String, out: Int, in inputs: Int, biased: Bool = false) throws -> LinearWeight {
            let bias = biased ? try vector(name.replacingOccurrences(of: ".weight", with: ".bias"), out) : nil
            return LinearWeight(tensor: try tensor(name, [inputs, out]), bias: bias)
        }
        // Qwen2 stores q/k/v biases; a Llama file may too (they are used when present); Gemma 3 has none.
        let biased = c.architecture != "gemma3" && file.contains(tensor: "blk.0.attn_q.bias")
        let C = c.embeddingLength, HS = c.headSize
        tokenEmbedding = try linear("token_embd.weight", out: c.vocabularySize, in: C)
        layers = try (0..<c.layerCount).map { l in
            let p = "blk.\(l)."
            return LayerWeights(
                attentionNorm: try vector(p + "attn_norm.weight", C),
                query: try linear(p + "attn_q.weight", out: c.queryWidth, in: C, biased: biased),
                key: try linear(p + "attn_k.weight", out: c.kvWidth, in: C, biased: biased),
                value: try linear(p + "attn_v.weight", out: c.kvWidth, in: C, biased: biased),
                output: try linear(p + "attn_output.weight", out: C, in: c.queryWidth),
                ffnNorm: try vector(p + "ffn_norm.weight", C),
                gate: try linear(p + "ffn_gate.weight", out: c.feedForwardLength, in: C),
                up: try linear(p + "ffn_up.weight", out: c.feedForwardLength, in: C),
                down: try linear(p + "ffn_down.weight", out: C, in: c.feedForwardLength),
                queryNorm: try vector(p + "attn_q_norm.weight", HS, if: c.queryKeyNorm),
                keyNorm: try vector(p + "attn_k_norm.weight", HS, if: c.queryKeyNorm),
                postAttentionNorm: try vector(p + "post_attention_norm.weight", C, if: c.postNorms),
                postFFNNorm: try vector(p + "post_ffw_norm.weight", C, if: c.postNorms))
        }
        outputNorm = try vector("output_norm.weight", C)
        outputHead = file.contains(tensor: "output.weight")
            ? try linear("output.weight", out: c.vocabularySize, in: C) : tokenEmbedding
    }

    /// Every linear weight of the blocks (not the embedding/head).
    public var blockLinears: [LinearWeight] { layers.flatMap(\.linears) }

    /// Fits `adapter` to these weights (nothing without one): returns its in-forward branches by
    /// weight name, or with `mode == .merged` replaces each adapted linear by a float32 merged
    /// copy and returns none.
    /// - Throws: `AdapterError` for an adapter of another model or with tensors that fit no weight.
    mutating func apply(_ adapter: LoRAAdapter?, file: GGUFFile, config: ModelConfig,
                        mode: AdapterMode) throws -> [String: LoRADelta] {
        guard let adapter else { return [:] }
        let deltas = try adapter.deltas(file: file, config: config,
                                        weights: Dictionary(uniqueKeysWithValues: blockLinears.map { ($0.name, $0) }))
        guard mode == .merged else { return deltas }
        layers = layers.map { $0.replacingLinears { w in deltas[w.name]?.merged(w) } }
        return [:]
    }
}

extension LayerWeights {
    /// This block with each linear for which `replacement` returns a weight replaced by it.
    func replacingLinears(_ replacement: (LinearWeight) -> LinearWeight?) -> LayerWeights {
        func r(_ w: LinearWeight) -> LinearWeight { replacement(w) ?? w }
        return LayerWeights(attentionNorm: attentionNorm, query: r(query), key: r(key), value: r(value), output: r(output),
                            ffnNorm: ffnNorm, gate: r(gate), up: r(up), down: r(down), queryNorm: queryNorm,
                            keyNorm: keyNorm, postAttentionNorm: postAttentionNorm, postFFNNorm: postFFNNorm)
    }
}
