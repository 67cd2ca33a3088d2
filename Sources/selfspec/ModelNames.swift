import ArgumentParser
import Foundation

/// Short names for the models set-up downloads and the adapters shipped under `adapters/`, so
/// `--model qwen2.5` and `--adapter smollm2-biomed` work as well as paths.
///
/// A value that names an existing file or folder is used as it is; otherwise a known model name
/// maps to its file under `models/`, and an adapter name to `adapters/NAME`.
enum ModelNames {
    /// Model names and their files under `models/` (as `scripts/setup` writes them).
    static let models: [(names: [String], file: String)] = [
        (["smollm2", "smollm2-135m"], "SmolLM2-135M-Instruct.Q4_1.gguf"),
        (["gemma3", "gemma3-270m", "gemma-3-270m"], "gemma-3-270m-q4_k_m.gguf"),
        (["qwen2.5", "qwen", "qwen2.5-1.5b", "qwen2.5-coder-1.5b"], "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
    ]

    /// The model file `value` stands for.
    /// - Throws: `ValidationError` naming the known models when `value` is neither a path nor a name.
    static func model(_ value: String) throws -> String {
        if FileManager.default.fileExists(atPath: value) { return value }
        if let entry = models.first(where: { $0.names.contains(value.lowercased()) }) {
            let path = "models/" + entry.file
            guard FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("model '\(value)' is \(path), which is missing: run scripts/setup (from the repository root)")
            }
            return path
        }
        let known = models.map { $0.names[0] }.joined(separator: ", ")
        throw ValidationError("no model file '\(value)', and it is not a model name (\(known))")
    }

    /// The adapter path `value` stands for (a `NAME=PATH` prefix, as `serve` takes, is kept).
    /// - Throws: `ValidationError` naming the shipped adapters when `value` is neither a path nor a name.
    static func adapter(_ value: String) throws -> String {
        if let eq = value.firstIndex(of: "="), !FileManager.default.fileExists(atPath: value) {
            return String(value[...eq]) + (try adapter(String(value[value.index(after: eq)...])))
        }
        if FileManager.default.fileExists(atPath: value) { return value }
        let path = "adapters/" + value
        if !value.contains("/"), FileManager.default.fileExists(atPath: path) { return path }
        let shipped = (try? FileManager.default.contentsOfDirectory(atPath: "adapters"))?
            .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.sorted() ?? []
        throw ValidationError("no adapter '\(value)'" + (shipped.isEmpty ? "" : " (shipped: \(shipped.joined(separator: ", ")))"))
    }
}
