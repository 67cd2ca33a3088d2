import Foundation
import LLM
import Tensor

/// The in-process engine as a ``GenerationBackend``: each prompt becomes one user turn in the
/// model's chat template when the settings ask for chat (``SamplingSettings/chat``) and the model
/// has a template, else a plain completion prompt; a whole batch is decoded together with
/// continuous batching, so both cores stay busy.
public final class LocalBackend: GenerationBackend, @unchecked Sendable {
    // @unchecked: immutable after init; TextGenerator is shareable.

    /// The model file's SHA-256, followed with an adapter by ` adapter=PATH adapter_sha256=HASH`
    /// (recorded in every example and in the resume fingerprint).
    public let modelIdentifier: String
    public let modelSHA256: String?
    /// The adapter's tensor file (a run folder resolves to its `adapter.gguf` or latest
    /// checkpoint) and its SHA-256, when the model runs with one (iterative specialization).
    public let adapterPath: String?, adapterSHA256: String?
    /// Whether prompts can go out in the model's chat template (it has one, and `chat` was not
    /// turned off); a batch uses it when its settings ask for chat, see ``usesChat(for:)``.
    public let usesChat: Bool
    /// Most sequences decoded at once (each holds a KV cache of prompt + max tokens).
    public let maxBatch: Int
    private let generator: TextGenerator
    private let template: ChatTemplate?
    private let shouldStop: @Sendable () -> Bool

    /// Loads `modelPath` (a GGUF file: Llama family or Gemma 3), with a LoRA adapter when given.
    /// - Parameters:
    ///   - adapterPath: a tune run folder, PEFT folder or GGUF LoRA file (`LoRAAdapter(path:)`),
    ///     applied in the forward pass: the iterative variant, an already specialized model.
    ///   - chat: wrap prompts in the model's chat template (when it has one and the settings of a
    ///     call ask for it; false never does).
    ///   - maxBatch: sequences in flight.
    ///   - weightFormat: format of the weight copies for prompt and batched steps
    ///     (`LlamaModel.Options.weightFormat`); `.bfloat16` is recorded in ``modelIdentifier``.
    ///   - shouldStop: polled once per decode step; `true` ends the batch: its unfinished
    ///     completions are ``Completion/cancelled``, and the pipeline drops the round so a resumed
    ///     run redoes it.
    /// - Throws: `GGUFError`, `ModelError`, `TokenizerError` for a bad model file; `AdapterError`
    ///   for a bad adapter or one trained on another model.
    public init(modelPath: String, adapterPath: String? = nil, chat: Bool = true, maxBatch: Int = 16,
                weightFormat: PackedMatrix.Format = .float32, shouldStop: @escaping @Sendable () -> Bool = { false }) throws {
        let file = try GGUFFile(path: modelPath)
        let adapter = try adapterPath.map { try LoRAAdapter(path: $0) }
        var options = LlamaModel.Options()
        options.weightFormat = weightFormat
        let model = try loadLanguageModel(file: file, options: options, adapter: adapter)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        generator = TextGenerator(model: model, tokenizer: tokenizer)
        let found = try? ChatTemplate(metadata: file.metadata)
        template = chat ? found.flatMap { $0.family == .completion ? nil : $0 } : nil
        usesChat = template != nil
        let digest = try SHA256.hexDigest(ofFile: modelPath)
        modelSHA256 = digest
        let adapterDigest = try adapter.map { try SHA256.hexDigest(ofFile: $0.path) }
        self.adapterPath = adapter?.path
        adapterSHA256 = adapterDigest
        modelIdentifier = digest + (adapter.map { " adapter=\($0.path) adapter_sha256=\(adapterDigest!)" } ?? "")
            + (weightFormat == .float32 ? "" : " weights=\(weightFormat.rawValue)")
        self.maxBatch = max(1, maxBatch)
        self.shouldStop = shouldStop
    }

    /// Token count of `text` with the model's tokenizer (for prompt budgets).
    public func countTokens(_ text: String) -> Int { generator.tokenizer.encode(text).count }

    public func usesChat(for settings: SamplingSettings) -> Bool { usesChat && settings.chat }

    public func complete(_ prompts: [String], settings: SamplingSettings) -> [Completion] {
        var out = [Completion](repeating: .failed("not run"), count: prompts.count)
        var requests = [GenerationRequest](), indices = [Int]()
        for (i, prompt) in prompts.enumerated() {
            do {
                let ids: [Int]
                if let template, settings.chat {
                    ids = try template.encode([.user(prompt)], tokenizer: generator.tokenizer)
                } else {
                    let t = generator.tokenizer
                    ids = t.encode(prompt, addBOS: t.specialTokens.addBOSByDefault, parseSpecial: false)
                }
                var sampling = SamplingParameters(temperature: Float(settings.temperature), topP: Float(settings.topP))
                sampling.seed = (settings.seed ?? 0) &+ UInt64(i)
                requests.append(GenerationRequest(prompt: ids, maxTokens: settings.maxTokens, sampling: sampling,
                                                  stopStrings: settings.stop, repetitionStop: settings.repetitionStop))
                indices.append(i)
            } catch {
                out[i] = .failed(Self.describe(error))
            }
        }
        generator.generateBatch(requests, maxBatch: maxBatch, shouldStop: shouldStop) { n, result in
            let i = indices[n]
            switch result {
            case .success(let r):
                switch r.finishReason {
                case .length: out[i] = Completion(text: r.text, finishReason: .length)
                case .repetition: out[i] = Completion(text: r.text, finishReason: .repetition)
                case .cancelled: out[i] = .cancelled
                default: out[i] = Completion(text: r.text, finishReason: .stop)
                }
            case .failure(let error):
                out[i] = .failed(Self.describe(error))
            }
        }
        // Stopped: the prompts still waiting never ran.
        if shouldStop() { for i in indices where out[i].error == "not run" { out[i] = .cancelled } }
        return out
    }

    /// An engine error's readable message (`ModelError`, `TokenizerError` are `LocalizedError`s).
    static func describe(_ error: Error) -> String {
        (error as? LocalizedError)?.errorDescription ?? "\(error)"
    }
}
