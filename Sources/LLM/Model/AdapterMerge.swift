import Foundation
import Tensor

// `selfspec merge`: a base GGUF plus a LoRA adapter written as one GGUF that needs no adapter.
// Every adapted weight becomes `W + scale · B A` (W dequantized to float32), re-encoded as F16
// or Q8_0; every other tensor and all metadata (tokenizer, chat template, hyper-parameters) are
// copied byte for byte. Dimension letters: OUT, IN of a weight, r the rank.

public enum AdapterMerge {
    /// The type the merged weights are stored in.
    public enum OutputType: String, Sendable, CaseIterable {
        /// IEEE half: 2 bytes per weight; the merge is kept to ~1e-3 relative.
        case f16
        /// ggml Q8_0 (32 weights share one f16 scale): 1.06 bytes per weight.
        case q8_0

        var ggml: GGMLType { self == .f16 ? .f16 : .q8_0 }
    }

    /// What a merge wrote.
    public struct Summary: Sendable {
        /// Tensors re-encoded with the adapter merged in, and tensors copied unchanged.
        public var merged: Int, copied: Int
        /// Bytes of the written file.
        public var bytes: Int
    }

    /// Writes `file` with `adapter` merged into it to `path`.
    /// - Parameters:
    ///   - type: the encoding of the merged weights.
    ///   - progress: called after each merged weight with (done, total).
    /// - Returns: counts of merged and copied tensors and the file size.
    /// - Throws: `AdapterError` (another base model, shapes, a weight Q8_0 cannot hold, write
    ///   errors), `ModelError` / `GGUFError` for the base file.
    @discardableResult
    public static func write(model file: GGUFFile, adapter: LoRAAdapter, type: OutputType, to path: String,
                             progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let config = try ModelConfig.read(file)
        var linears: [String: LinearWeight] = [:]
        for info in file.tensors where info.dims.count == 2 && info.name.hasPrefix("blk.") && info.type.canDequantize {
            linears[info.name] = LinearWeight(tensor: try file.tensor(named: info.name), bias: nil)
        }
        let deltas = try adapter.deltas(file: file, config: config, weights: linears)
        if type == .q8_0, let bad = deltas.first(where: { $0.value.inputs % 32 != 0 }) {
            throw AdapterError.unsupported(path: file.path, feature: "Q8_0 for '\(bad.key)' with \(bad.value.inputs) columns (not a multiple of 32)")
        }
        var metadata = file.metadata.keys.map { ($0, file.metadata[$0]!) }
        metadata.append(("selfspec.merged_adapter", .string(URL(fileURLWithPath: adapter.path).lastPathComponent)))
        let infos = file.tensors.map { info in
            (name: info.name, dims: info.dims, type: deltas[info.name] == nil ? info.type : type.ggml)
        }
        var done = 0
        try GGUFWriter.write(to: path, metadata: metadata, infos: infos, alignment: file.alignment) { i in
            let info = file.tensors[i]
            guard let delta = deltas[info.name], let w = linears[info.name] else { return Data(file.bytes(of: info)) }
            let merged = delta.merged(w)  // (OUT, IN) float32
            let values = UnsafeBufferPointer(start: UnsafePointer(merged.dense!), count: w.rows * w.columns)
            done += 1
            defer { progress?(done, deltas.count) }
            return type == .f16 ? TensorEncoding.f16(values) : TensorEncoding.q8_0(values)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        return Summary(merged: deltas.count, copied: file.tensors.count - deltas.count, bytes: size ?? 0)
    }
}
