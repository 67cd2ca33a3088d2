import Foundation
import LLM

// How a conversation becomes training text. ChatML (Dataset.swift) for models whose chat template
// is ChatML (SmolLM2, Qwen2.5); plain completion for models without a chat template (the Gemma 3 270M base).

/// Renders a conversation as text segments, each flagged whether the loss is taken on it.
public protocol ConversationRenderer: Sendable {
    /// The conversation as text segments (tokenized with special tokens parsed), each flagged
    /// whether its tokens are trained on.
    func segments(_ messages: [ChatMessage]) -> [(text: String, train: Bool)]
}

/// Plain completion, for a base model without a chat template:
///
///     <bos>{system}\n\n{user}\n\n{assistant}<eos>
///
/// The BOS token (when the model adds one), then every message's content; a system or user
/// message is followed by a blank line; an assistant message is followed by the end-of-sequence
/// token (and, when another message follows, a blank line). The loss is on each assistant
/// message's content and its end-of-sequence token, so the tuned model answers a prompt that ends
/// in a blank line and stops. An instruction example is `{instruction}\n\n{input}\n\n{output}<eos>`.
public struct PlainCompletionRenderer: ConversationRenderer {
    /// The BOS token's text (`<bos>` for Gemma 3), or `nil` when none is added.
    public var bos: String?
    /// The end-of-sequence token's text (`<eos>` for Gemma 3).
    public var eos: String

    /// - Parameters: bos, eos: the token texts (special tokens, parsed as such by the tokenizer).
    public init(bos: String?, eos: String) {
        self.bos = bos
        self.eos = eos
    }

    /// The renderer of a tokenizer: its BOS when it adds one by default, and its EOS token.
    /// - Returns: `nil` when the tokenizer has no EOS token.
    public init?(tokenizer: any Tokenizer) {
        let special = tokenizer.specialTokens
        guard let eosID = special.eos else { return nil }
        let bosText = special.addBOSByDefault ? special.bos.map { tokenizer.decode([$0], skipSpecial: false) } : nil
        self.init(bos: bosText, eos: tokenizer.decode([eosID], skipSpecial: false))
    }

    public func segments(_ messages: [ChatMessage]) -> [(text: String, train: Bool)] {
        var out: [(text: String, train: Bool)] = []
        if let bos { out.append((bos, false)) }
        for (i, m) in messages.enumerated() {
            if m.role == "assistant" {
                out.append((m.content + eos, true))
                if i + 1 < messages.count { out.append(("\n\n", false)) }
            } else {
                out.append((m.content + "\n\n", false))
            }
        }
        return out
    }
}

/// The prompt format a run's data is rendered in.
public enum PromptFormat: String, Codable, Sendable {
    /// ChatML with the template's default system prompt (the model's chat template is ChatML).
    case chatML = "chatml"
    /// ``PlainCompletionRenderer`` (the model has no chat template, or one that is not ChatML).
    case plain

    /// ChatML when the GGUF's `tokenizer.chat_template` is ChatML (`<|im_start|>`), else plain.
    public init(chatTemplate: String?) {
        self = chatTemplate?.contains("<|im_start|>") == true ? .chatML : .plain
    }
}
