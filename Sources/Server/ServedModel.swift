import Foundation
import LLM

/// One model id the server answers for: a loaded model (the base model or the base model with
/// one LoRA adapter), its tokenizer and chat template, and the scheduler its requests share.
public final class ServedModel: Sendable {
    /// The id clients put in `"model"` (and `GET /v1/models` lists).
    public let id: String
    public let scheduler: BatchScheduler
    /// The chat template from the GGUF metadata (`.completion` when the file has none).
    public let template: ChatTemplate
    /// Seconds since 1970 when the model was loaded (`created` in the model list).
    public let created: Int

    public var tokenizer: any Tokenizer { scheduler.generator.tokenizer }
    public var contextLength: Int { scheduler.generator.model.config.contextLength }

    /// - Parameters:
    ///   - id: the model id.
    ///   - model: the loaded model; `tokenizer` its tokenizer.
    ///   - template: how chat messages become a prompt.
    ///   - options: batch size and queue bound of this model's scheduler.
    public init(id: String, model: any CausalLanguageModel, tokenizer: any Tokenizer, template: ChatTemplate,
                options: BatchScheduler.Options = .init()) {
        self.id = id
        self.template = template
        scheduler = BatchScheduler(generator: TextGenerator(model: model, tokenizer: tokenizer), options: options)
        created = Int(Date().timeIntervalSince1970)
    }

    /// The prompt tokens of a chat.
    func encode(messages: [ChatMessage]) throws -> [Int] {
        try template.encode(messages, tokenizer: tokenizer)
    }

    /// The prompt tokens of a plain completion prompt (BOS as the model's tokenizer wants it;
    /// special-token text in the prompt is kept as text).
    func encode(prompt: String) -> [Int] {
        tokenizer.encode(prompt, addBOS: tokenizer.specialTokens.addBOSByDefault, parseSpecial: false)
    }
}
