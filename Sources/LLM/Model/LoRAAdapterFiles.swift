import Foundation
import Tensor

// Reading LoRA adapters from disk, in the three forms the project meets:
// - a GGUF LoRA (llama.cpp's layout: `general.type = adapter`, `adapter.type = lora`,
//   `adapter.lora.alpha`, tensors `blk.L.<stem>.weight.lora_a` ggml dims `[IN, r]` and `.lora_b`
//   `[r, OUT]`), GGUF row order;
// - a PEFT folder (`adapter_config.json` + `adapter_model.safetensors`, tensors
//   `base_model.model.model.layers.L.self_attn.q_proj.lora_A.weight` `(r, IN)` and `lora_B` `(OUT, r)`),
//   Hugging Face row order;
// - a tuner run folder: its `adapter.gguf` when training finished, else `checkpoints/latest`
//   (`adapter.safetensors`, PEFT names without the prefix, GGUF row order; alpha from `config.json`).

extension LoRAAdapter {
    /// Metadata keys under which the tuner records the base model (GGUF: `adapter.base.*`;
    /// safetensors `__metadata__`: `base.*`).
    public static let baseKeys = (architecture: "architecture", name: "name", embeddingLength: "embedding_length",
                                  blockCount: "block_count", vocabularySize: "vocab_size")

    /// Loads the adapter at `path`: a tune run folder, a PEFT folder, a checkpoint folder or a
    /// GGUF LoRA file (see the top of this file).
    /// - Throws: ``AdapterError`` naming the file and tensor (missing, truncated, malformed,
    ///   unsupported PEFT features such as DoRA or rank patterns).
    public init(path: String) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw AdapterError.notAnAdapter(path: path, detail: "no such file or folder")
        }
        let url = URL(fileURLWithPath: path)
        func has(_ name: String) -> Bool { fm.fileExists(atPath: url.appendingPathComponent(name).path) }
        if !isDirectory.boolValue {
            if url.lastPathComponent == "adapter_model.safetensors" {
                self = try Self.peft(folder: url.deletingLastPathComponent())
            } else if url.lastPathComponent == "adapter.safetensors" {
                self = try Self.checkpoint(folder: url.deletingLastPathComponent())
            } else {
                self = try Self.gguf(path: path)
            }
        } else if has("adapter.gguf") {
            self = try Self.gguf(path: url.appendingPathComponent("adapter.gguf").path)
        } else if has("adapter_config.json") || has("adapter_model.safetensors") {
            self = try Self.peft(folder: url)
        } else if has("adapter.safetensors") {
            self = try Self.checkpoint(folder: url)
        } else if has("checkpoints/latest") {
            let latest = url.appendingPathComponent("checkpoints/latest")
            guard let name = try? String(contentsOf: latest, encoding: .utf8) else {
                throw AdapterError.unreadable(path: latest.path, detail: "cannot read the name of the latest checkpoint")
            }
            let folder = url.appendingPathComponent("checkpoints").appendingPathComponent(name.trimmingCharacters(in: .whitespacesAndNewlines))
            self = try Self.checkpoint(folder: folder)
        } else if has("peft/adapter_config.json") {
            self = try Self.peft(folder: url.appendingPathComponent("peft"))
        } else {
            throw AdapterError.notAnAdapter(path: path, detail: "the folder holds none of adapter.gguf, adapter_config.json,"
                                            + " adapter.safetensors, checkpoints/latest")
        }
    }

    // MARK: GGUF LoRA

    /// Reads a llama.cpp LoRA GGUF. Scale alpha / r per tensor pair (1 when alpha is absent or 0,
    /// as llama.cpp does).
    static func gguf(path: String) throws -> LoRAAdapter {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch {
            throw AdapterError.unreadable(path: path, detail: error.localizedDescription)
        }
        let m = file.metadata
        if let type = m["general.type"]?.stringValue, type != "adapter" {
            throw AdapterError.notAnAdapter(path: path, detail: "general.type is '\(type)', not 'adapter' (a model file?)")
        }
        guard m["adapter.type"]?.stringValue == "lora" else {
            throw AdapterError.notAnAdapter(path: path, detail: "adapter.type is \(m["adapter.type"]?.stringValue.map { "'\($0)'" } ?? "missing"), not 'lora'")
        }
        let alpha = m["adapter.lora.alpha"]?.floatValue ?? 0
        var pairs: [String: Pair] = [:]
        let names = Set(file.tensors.map(\.name))
        for info in file.tensors where info.name.hasSuffix(".lora_a") {
            let stem = String(info.name.dropLast(".lora_a".count))
            guard names.contains(stem + ".lora_b") else {
                throw AdapterError.unreadable(path: path, detail: "tensor '\(info.name)' has no matching '\(stem).lora_b'")
            }
            let bInfo = try file.tensorInfo(named: stem + ".lora_b")
            // ggml dims: A [IN, r], B [r, OUT].
            guard info.dims.count == 2, bInfo.dims.count == 2, info.dims[1] == bInfo.dims[0], info.dims[1] > 0 else {
                throw AdapterError.wrongShape(path: path, tensor: stem + ".lora_b", expected: [info.dims.last ?? 0, -1],
                                              actual: bInfo.dims)
            }
            let r = info.dims[1]
            let a: [Float], b: [Float]
            do {
                a = try file.tensor(named: info.name).dequantized()
                b = try file.tensor(named: bInfo.name).dequantized()
            } catch {
                throw AdapterError.unreadable(path: path, detail: "\(stem): \(error.localizedDescription)")
            }
            pairs[stem] = Pair(a: a, b: b, rank: r, inputs: info.dims[0], outputs: bInfo.dims[1],
                               scale: alpha == 0 ? 1 : alpha / Float(r))
        }
        if let orphan = names.first(where: { $0.hasSuffix(".lora_b") && !names.contains(String($0.dropLast(7)) + ".lora_a") }) {
            throw AdapterError.unreadable(path: path, detail: "tensor '\(orphan)' has no matching lora_a")
        }
        guard !pairs.isEmpty else { throw AdapterError.notAnAdapter(path: path, detail: "no *.lora_a / *.lora_b tensors") }
        func int(_ key: String) -> Int? { m["adapter.base.\(key)"]?.intValue }
        let k = baseKeys
        let base = BaseModel(architecture: m["general.architecture"]?.stringValue,
                             name: m["adapter.base.\(k.name)"]?.stringValue,
                             embeddingLength: int(k.embeddingLength), blockCount: int(k.blockCount),
                             vocabularySize: int(k.vocabularySize))
        return LoRAAdapter(pairs: pairs, orientation: .gguf, base: base, path: path, format: .gguf)
    }

    // MARK: PEFT folder

    /// Reads a PEFT LoRA folder (LoRA only: no DoRA, rank/alpha patterns, trained biases, or
    /// extra saved modules).
    static func peft(folder: URL) throws -> LoRAAdapter {
        let configURL = folder.appendingPathComponent("adapter_config.json")
        let weightsPath = folder.appendingPathComponent("adapter_model.safetensors").path
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw AdapterError.unreadable(path: configURL.path, detail: "missing (a PEFT folder needs adapter_config.json)")
        }
        guard let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw AdapterError.unreadable(path: configURL.path, detail: "not a JSON object")
        }
        let cpath = configURL.path
        if let type = config["peft_type"] as? String, type.uppercased() != "LORA" {
            throw AdapterError.unsupported(path: cpath, feature: "peft_type '\(type)' (only LORA)")
        }
        guard let r = (config["r"] as? NSNumber)?.intValue, r > 0 else {
            throw AdapterError.unreadable(path: cpath, detail: "field 'r' (the rank) is missing or not a positive integer")
        }
        let alpha = (config["lora_alpha"] as? NSNumber)?.floatValue ?? Float(r)
        if config["use_dora"] as? Bool == true { throw AdapterError.unsupported(path: cpath, feature: "use_dora (DoRA)") }
        if config["fan_in_fan_out"] as? Bool == true { throw AdapterError.unsupported(path: cpath, feature: "fan_in_fan_out") }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let p = config[key] as? [String: Any], !p.isEmpty { throw AdapterError.unsupported(path: cpath, feature: key) }
        }
        if let bias = config["bias"] as? String, bias != "none" {
            throw AdapterError.unsupported(path: cpath, feature: "bias '\(bias)' (trained biases)")
        }
        if let modules = config["modules_to_save"] as? [Any], !modules.isEmpty {
            throw AdapterError.unsupported(path: cpath, feature: "modules_to_save")
        }
        let scale = config["use_rslora"] as? Bool == true ? alpha / Float(r).squareRoot() : alpha / Float(r)
        let file = try openSafetensors(weightsPath)
        var adapter = try pairs(file, scale: scale, orientation: .huggingFace, format: .peft)
        adapter.base = baseModel(fromSafetensors: file.metadata)
        return adapter
    }

    // MARK: Tuner checkpoint

    /// Reads `adapter.safetensors` of a checkpoint folder; alpha comes from the run's `config.json`
    /// two folders up (`lora.alpha`), else the safetensors metadata `alpha`.
    static func checkpoint(folder: URL) throws -> LoRAAdapter {
        let weightsPath = folder.appendingPathComponent("adapter.safetensors").path
        let file = try openSafetensors(weightsPath)
        let runConfig = folder.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("config.json")
        var alpha = file.metadata["alpha"].flatMap(Float.init)
        if alpha == nil, let data = FileManager.default.contents(atPath: runConfig.path),
           let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
           let lora = json["lora"] as? [String: Any] {
            alpha = (lora["alpha"] as? NSNumber)?.floatValue
        }
        guard let alpha else {
            throw AdapterError.unreadable(path: weightsPath, detail: "no LoRA alpha (neither \(runConfig.path) nor the file's metadata has one)")
        }
        let orientation: Orientation = file.metadata["orientation"] == "huggingFace" ? .huggingFace : .gguf
        var adapter = try pairs(file, scale: .nan, orientation: orientation, format: .checkpoint)
        for (k, p) in adapter.pairs { adapter.pairs[k]?.scale = alpha / Float(p.rank) }
        adapter.base = baseModel(fromSafetensors: file.metadata)
        return adapter
    }

    // MARK: Safetensors helpers

    private static func openSafetensors(_ path: String) throws -> SafetensorsFile {
        do { return try SafetensorsFile(path: path) } catch {
            throw AdapterError.unreadable(path: path, detail: error.localizedDescription)
        }
    }

    /// The GGUF weight name of a PEFT-style tensor name (`…layers.L.self_attn.q_proj.lora_A[.default].weight`)
    /// and whether it is B; nil for names that are not LoRA A/B. The one map from Hugging Face
    /// module names to GGUF stems, for reading adapters and for the tuner's GGUF export.
    public static func ggufName(peft name: String) -> (weight: String, isB: Bool)? {
        let parts = name.split(separator: ".").map(String.init)
        guard let i = parts.firstIndex(of: "layers"), i + 4 < parts.count, let layer = Int(parts[i + 1]) else { return nil }
        let module = parts[i + 3], kind = parts[i + 4]
        guard kind == "lora_A" || kind == "lora_B" else { return nil }
        let stems = ["q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                     "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"]
        guard let stem = stems[module] else { return ("layers.\(layer).\(module)", kind == "lora_B") }
        return ("blk.\(layer).\(stem).weight", kind == "lora_B")
    }

    /// Pairs every `lora_A` with its `lora_B` in a PEFT-named safetensors file.
    private static func pairs(_ file: SafetensorsFile, scale: Float, orientation: Orientation,
                              format: Format) throws -> LoRAAdapter {
        var a: [String: (String, FloatTensor)] = [:], b: [String: (String, FloatTensor)] = [:]
        for name in file.names {
            guard let (weight, isB) = ggufName(peft: name) else {
                if name.contains(".lora_") {
                    throw AdapterError.unknownTensor(path: file.path, tensor: name, detail: "adapts no linear of a layer (embeddings/head are not supported)")
                }
                continue
            }
            guard weight.hasPrefix("blk.") else {
                throw AdapterError.unknownTensor(path: file.path, tensor: name,
                                                 detail: "not one of q/k/v/o/gate/up/down_proj of a layer")
            }
            let t: FloatTensor
            do { t = try file.floats(name) } catch {
                throw AdapterError.unreadable(path: file.path, detail: error.localizedDescription)
            }
            guard t.shape.count == 2 else {
                throw AdapterError.wrongShape(path: file.path, tensor: name, expected: [-1, -1], actual: t.shape)
            }
            if isB { b[weight] = (name, t) } else { a[weight] = (name, t) }
        }
        var pairs: [String: Pair] = [:]
        for (weight, (aName, at)) in a {
            guard let (bName, bt) = b[weight] else {
                throw AdapterError.unreadable(path: file.path, detail: "tensor '\(aName)' has no matching lora_B")
            }
            let r = at.shape[0]
            guard bt.shape[1] == r else {
                throw AdapterError.wrongShape(path: file.path, tensor: bName, expected: [bt.shape[0], r], actual: bt.shape)
            }
            pairs[weight] = Pair(a: at.values, b: bt.values, rank: r, inputs: at.shape[1], outputs: bt.shape[0], scale: scale)
        }
        if let orphan = b.first(where: { a[$0.key] == nil }) {
            throw AdapterError.unreadable(path: file.path, detail: "tensor '\(orphan.value.0)' has no matching lora_A")
        }
        guard !pairs.isEmpty else { throw AdapterError.notAnAdapter(path: file.path, detail: "no lora_A / lora_B tensors") }
        return LoRAAdapter(pairs: pairs, orientation: orientation, path: file.path, format: format)
    }

    /// The base model recorded in safetensors metadata (`base.architecture`, …), or nil.
    private static func baseModel(fromSafetensors m: [String: String]) -> BaseModel? {
        let k = baseKeys
        let base = BaseModel(architecture: m["base.\(k.architecture)"], name: m["base.\(k.name)"],
                             embeddingLength: m["base.\(k.embeddingLength)"].flatMap { Int($0) },
                             blockCount: m["base.\(k.blockCount)"].flatMap { Int($0) },
                             vocabularySize: m["base.\(k.vocabularySize)"].flatMap { Int($0) })
        return base == BaseModel() ? nil : base
    }
}

// MARK: - Writing

extension LoRAAdapter {
    /// Writes the adapter as a llama.cpp LoRA GGUF (F32 tensors, `adapter.lora.alpha` = scale·r
    /// of the first pair, the recorded base model as `general.architecture` and `adapter.base.*`).
    /// - Throws: `AdapterError.unsupported` for Hugging Face row order or pairs with different
    ///   alpha (one GGUF alpha serves all); `.writeFailed`.
    public func writeGGUF(to path: String) throws {
        guard orientation == .gguf else {
            throw AdapterError.unsupported(path: self.path, feature: "writing a GGUF LoRA from Hugging Face row order (load it with its model first)")
        }
        let sorted = pairs.sorted { $0.key < $1.key }
        let alpha = (sorted.first?.value).map { $0.scale * Float($0.rank) } ?? 1
        guard sorted.allSatisfy({ abs($0.value.scale * Float($0.value.rank) - alpha) <= 1e-6 * abs(alpha) }) else {
            throw AdapterError.unsupported(path: self.path, feature: "pairs with different alpha in one GGUF LoRA")
        }
        let k = Self.baseKeys
        var metadata: [(String, GGUFValue)] = [
            ("general.architecture", .string(base?.architecture ?? "llama")), ("general.type", .string("adapter")),
            ("adapter.type", .string("lora")), ("adapter.lora.alpha", .float32(alpha)),
        ]
        if let name = base?.name { metadata.append(("adapter.base.\(k.name)", .string(name))) }
        for (key, value) in [(k.embeddingLength, base?.embeddingLength), (k.blockCount, base?.blockCount),
                             (k.vocabularySize, base?.vocabularySize)] {
            if let value { metadata.append(("adapter.base.\(key)", .uint32(UInt32(value)))) }
        }
        var infos: [(name: String, dims: [Int], type: GGMLType)] = [], values: [[Float]] = []
        for (name, p) in sorted {
            infos.append((name + ".lora_a", [p.inputs, p.rank], .f32))
            values.append(p.a)
            infos.append((name + ".lora_b", [p.rank, p.outputs], .f32))
            values.append(p.b)
        }
        try GGUFWriter.write(to: path, metadata: metadata, infos: infos) { i in values[i].withUnsafeBytes { Data($0) } }
    }
}
