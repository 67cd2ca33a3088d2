import ArgumentParser
import Foundation
import LLM

// MARK: merge

/// `selfspec merge`: a base GGUF plus a LoRA adapter written as one GGUF (adapted weights as
/// F16 or Q8_0, everything else copied), which our runtime and llama.cpp load without the adapter.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a LoRA adapter into a GGUF model and write the result as a new GGUF file.",
        discussion: """
        Each adapted weight becomes W + (alpha/r)·B·A, computed in float32 from the base weight and \
        stored as --type (f16 or q8_0); every other tensor, the tokenizer, the chat template and all \
        other metadata are copied unchanged. The adapter may be a tune run folder, a PEFT folder or a \
        GGUF LoRA file; one trained on another base model is refused.
        """)

    @Option(name: .long, help: "The base GGUF model file.")
    var model: String
    @Option(name: .long, help: ArgumentHelp("The LoRA adapter: a tune run folder, a PEFT folder, or a GGUF LoRA file.",
                                            valueName: "path"))
    var adapter: String
    @Option(name: .long, help: "The merged GGUF file to write.")
    var out: String
    @Option(name: .long, help: "Encoding of the merged weights: f16 or q8_0.")
    var type = "f16"
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        guard AdapterMerge.OutputType(rawValue: type) != nil else {
            throw ValidationError("invalid type '\(type)': expected f16 or q8_0")
        }
        if URL(fileURLWithPath: out).standardized.path == URL(fileURLWithPath: model).standardized.path {
            throw ValidationError("--out must differ from --model")
        }
    }

    struct Output: Encodable {
        var out: String
        var type: String
        var merged_tensors: Int
        var copied_tensors: Int
        var bytes: Int
        var seconds: Double
    }

    func run() throws {
        let start = Date()
        let file = try GGUFFile(path: model)
        let lora = try LoRAAdapter(path: adapter)
        let progress = ProgressLine(enabled: !json)
        let summary = try AdapterMerge.write(model: file, adapter: lora, type: AdapterMerge.OutputType(rawValue: type)!,
                                             to: out) { done, total in
            progress.update(label: "merge", fraction: Double(done) / Double(max(total, 1)), count: done, unit: "weights")
        }
        progress.finish()
        let r = Output(out: out, type: type, merged_tensors: summary.merged, copied_tensors: summary.copied,
                       bytes: summary.bytes, seconds: (Date().timeIntervalSince(start) * 100).rounded() / 100)
        if json { return try Terminal.printJSON(r) }
        print("wrote \(out): \(r.merged_tensors) weights merged (\(type)), \(r.copied_tensors) tensors copied, "
            + String(format: "%.1f MB in %.1f s", Double(r.bytes) / 1e6, r.seconds))
    }
}
