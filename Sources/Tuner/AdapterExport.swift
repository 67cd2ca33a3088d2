import Foundation
import LLM
import Tensor

// Saving, loading and exporting LoRA adapters.
//
// The tuner trains in GGUF orientation. For Llama the rows of q and k (and so of their LoRA B) are
// in the order llama.cpp's converter permuted them to, for adjacent-pair RoPE; Hugging Face keeps
// the original order and uses rotate-half. Within each head of HS rows, HF row `half·HS/2 + i` is
// GGUF row `2i + half` (i < HS/2, half ∈ {0, 1}). A (input side) is unaffected. Qwen2 and Gemma 3
// use rotate-half in both worlds: their GGUF rows are Hugging Face's, and nothing is permuted
// (`ModelConfig.ropeStyle` `.halves`).

public enum AdapterFiles {
    /// The Hugging Face row of GGUF row `row` of a q (heads = NH) or k (heads = NKV) projection
    /// (the runtime's ``LoRAAdapter/hfRow(ofGGUFRow:headSize:)``).
    public static func hfRow(ofGGUFRow row: Int, headSize hs: Int) -> Int { LoRAAdapter.hfRow(ofGGUFRow: row, headSize: hs) }

    /// B `(OUT, r)` with rows moved from GGUF to Hugging Face order (q and k only; others unchanged).
    public static func hfOrderB(_ b: UnsafePointer<Float>, slot: LoRASlot, rank: Int, headSize: Int) -> [Float] {
        var out = [Float](repeating: 0, count: slot.outF * rank)
        let permuted = slot.target == .q || slot.target == .k
        for row in 0..<slot.outF {
            let dest = permuted ? hfRow(ofGGUFRow: row, headSize: headSize) : row
            for j in 0..<rank { out[dest * rank + j] = b[row * rank + j] }
        }
        return out
    }

    /// The inverse of ``hfOrderB(_:slot:rank:headSize:)``.
    public static func ggufOrderB(_ b: [Float], slot: LoRASlot, rank: Int, headSize: Int) -> [Float] {
        slot.target == .q || slot.target == .k ? LoRAAdapter.ggufOrderB(b, rows: slot.outF, rank: rank, headSize: headSize) : b
    }

    // MARK: Our adapter file (checkpoints)

    /// The adapter under PEFT-style names after `prefix`: A `(r, IN)` and B `(OUT, r)`, B's rows in
    /// GGUF order, or with `huggingFaceRows` in Hugging Face's (only Llama's q and k rows differ).
    /// Checkpoints keep GGUF order; PEFT exports use Hugging Face's.
    public static func adapterTensors(_ lora: LoRAParameters, prefix: String = "", huggingFaceRows: Bool = false) -> [NamedTensor] {
        let r = lora.config.rank, permuted = huggingFaceRows && lora.model.ropeStyle == .adjacentPairs
        return lora.slots.flatMap { s in
            let (a, b, _, _) = lora.views(s)
            func name(isB: Bool) -> String { prefix + LoRAParameters.peftName(layer: s.layer, target: s.target, isB: isB) }
            return [NamedTensor(name: name(isB: false), shape: [r, s.inF], values: Array(UnsafeBufferPointer(start: a, count: r * s.inF))),
                    NamedTensor(name: name(isB: true), shape: [s.outF, r],
                                values: permuted ? hfOrderB(b, slot: s, rank: r, headSize: lora.model.headSize)
                                    : Array(UnsafeBufferPointer(start: b, count: s.outF * r)))]
        }
    }

    /// Loads adapter values written by ``adapterTensors(_:prefix:huggingFaceRows:)`` (GGUF orientation) into `lora`.
    /// - Throws: `TunerError.badCheckpoint` naming a missing or mis-shaped tensor.
    public static func loadAdapter(path: String, into lora: LoRAParameters) throws {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch {
            throw TunerError.badCheckpoint(path: path, detail: error.localizedDescription)
        }
        let r = lora.config.rank
        for s in lora.slots {
            let (a, b, _, _) = lora.views(s)
            for (isB, dest, shape) in [(false, a, [r, s.inF]), (true, b, [s.outF, r])] {
                let name = LoRAParameters.peftName(layer: s.layer, target: s.target, isB: isB)
                let values: [Float]
                do { values = try file.floats(name, shape: shape) } catch {
                    throw TunerError.badCheckpoint(path: path, detail: "\(name): \(error.localizedDescription)")
                }
                values.withUnsafeBufferPointer { dest.update(from: $0.baseAddress!, count: values.count) }
            }
        }
    }

    // MARK: Base model identity

    /// What an exported adapter records about its base model, so the runtime refuses it on
    /// another one: architecture (`llama`, `qwen2` or `gemma3`), name and dims.
    static func base(_ lora: LoRAParameters, name: String) -> LoRAAdapter.BaseModel {
        let m = lora.model
        return LoRAAdapter.BaseModel(architecture: m.architecture, name: name, embeddingLength: m.width,
                                     blockCount: m.layers, vocabularySize: m.vocab)
    }

    // MARK: PEFT export

    /// Writes `adapter_model.safetensors` (names `base_model.model.model.layers.L.….lora_A.weight`,
    /// A `(r, in)`, B `(out, r)` in Hugging Face row order) and `adapter_config.json` into `directory`.
    /// The frozen q/k/v biases of Qwen2 are part of the base, not of the adapter (`"bias": "none"`).
    /// The base model's identity goes into the safetensors `__metadata__` as `base.*` (PEFT
    /// ignores it there; unknown keys in `adapter_config.json` make PEFT warn).
    /// `dtype` `.bf16` halves the file (the format of shipped adapters; PEFT and the runtime load both).
    public static func exportPEFT(_ lora: LoRAParameters, to directory: URL, baseModel: String, dtype: TensorDType = .f32) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let k = LoRAAdapter.baseKeys, m = lora.model
        var metadata = ["format": "pt"]
        for (key, value) in [(k.architecture, m.architecture), (k.name, URL(fileURLWithPath: baseModel).lastPathComponent),
                             (k.embeddingLength, "\(m.width)"), (k.blockCount, "\(m.layers)"), (k.vocabularySize, "\(m.vocab)")] {
            metadata["base." + key] = value
        }
        let tensors = adapterTensors(lora, prefix: "base_model.model.model.", huggingFaceRows: true)
        try writeAtomically(try safetensorsData(tensors, metadata: metadata, dtype: dtype),
                            to: directory.appendingPathComponent("adapter_model.safetensors"))
        let r = lora.config.rank
        let config: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": baseModel,
            "r": r, "lora_alpha": Double(lora.config.alpha), "lora_dropout": Double(lora.config.dropout),
            "target_modules": lora.config.targets.map(\.hfName), "bias": "none", "fan_in_fan_out": false,
            "inference_mode": true, "init_lora_weights": true, "modules_to_save": NSNull(),
            "use_rslora": false, "use_dora": false,
        ]
        try writeAtomically(try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]),
                            to: directory.appendingPathComponent("adapter_config.json"))
    }

    // MARK: GGUF LoRA export (llama.cpp --lora)

    /// Writes a llama.cpp LoRA adapter with the runtime's writer (``LoRAAdapter/writeGGUF(to:)``):
    /// `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`, and F32 tensors
    /// `blk.L.attn_q.weight.lora_a` (ggml dims `[in, r]`) and `….lora_b` (ggml dims `[r, out]`) in
    /// GGUF row order (as the base GGUF's q/k rows), plus the base model's identity as
    /// `adapter.base.name`, `.embedding_length`, `.block_count`, `.vocab_size`.
    /// - Throws: `AdapterError.writeFailed` naming the file.
    public static func exportGGUF(_ lora: LoRAParameters, to url: URL, baseName: String) throws {
        try LoRAAdapter(pairs: pairs(lora), base: base(lora, name: baseName), path: url.path).writeGGUF(to: url.path)
    }

    /// The adapter's pairs by GGUF weight name (GGUF row order), as the runtime holds them.
    public static func pairs(_ lora: LoRAParameters) -> [String: LoRAAdapter.Pair] {
        let r = lora.config.rank
        var pairs: [String: LoRAAdapter.Pair] = [:]
        for s in lora.slots {
            let (a, b, _, _) = lora.views(s)
            let name = LoRAAdapter.ggufName(peft: LoRAParameters.peftName(layer: s.layer, target: s.target, isB: false))!
            pairs[name.weight] = LoRAAdapter.Pair(
                a: Array(UnsafeBufferPointer(start: a, count: r * s.inF)), b: Array(UnsafeBufferPointer(start: b, count: s.outF * r)),
                rank: r, inputs: s.inF, outputs: s.outF, scale: lora.config.scale)
        }
        return pairs
    }
}
