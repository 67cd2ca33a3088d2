import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    /// "system", "user" or "assistant" (ChatML accepts any role name).
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: "assistant", content: content) }
}

/// Errors rendering a conversation.
public enum ChatTemplateError: LocalizedError, Equatable, Sendable {
    /// `tokenizer.chat_template` is none of the supported families; `snippet` is its start.
    case unrecognisedTemplate(snippet: String)
    /// A `--template` name that is not a family.
    case unknownFamily(String)
    case emptyConversation
    case unsupportedRole(family: String, role: String, index: Int)
    /// Gemma and Mistral templates require user/assistant/user/... after an optional system turn.
    case rolesMustAlternate(family: String, index: Int, role: String)

    public var errorDescription: String? {
        switch self {
        case let .unrecognisedTemplate(snippet):
            return "tokenizer.chat_template is not a supported family (chatml, llama3, gemma, mistral): "
                + "\(snippet.debugDescription); choose one with --template NAME (chatml, llama3, gemma, mistral, completion)"
        case let .unknownFamily(name):
            let names = ChatTemplate.Family.allCases.map(\.rawValue).joined(separator: ", ")
            return "unknown chat template '\(name)' (known: \(names))"
        case .emptyConversation:
            return "the conversation has no messages"
        case let .unsupportedRole(family, role, index):
            return "message \(index): role '\(role)' is not supported by the \(family) template"
        case let .rolesMustAlternate(family, index, role):
            return "message \(index): the \(family) template needs user and assistant turns to alternate, "
                + "starting with user (got '\(role)')"
        }
    }
}

/// A model's prompt format, recognised from the Jinja text in `tokenizer.chat_template` and
/// rendered in Swift (no Jinja engine): the output equals what Hugging Face's
/// `apply_chat_template` gives for the family's published template.
///
/// | family | a user turn | after `addGenerationPrompt` |
/// | --- | --- | --- |
/// | ChatML (SmolLM2, Qwen) | `<\|im_start\|>user\nHi<\|im_end\|>\n` | `<\|im_start\|>assistant\n` |
/// | Llama 3 | `<\|start_header_id\|>user<\|end_header_id\|>\n\nHi<\|eot_id\|>` (first turn after BOS) | `<\|start_header_id\|>assistant<\|end_header_id\|>\n\n` |
/// | Gemma (2, 3) | `<start_of_turn>user\nHi<end_of_turn>\n` (after BOS; system text joins the first user turn) | `<start_of_turn>model\n` |
/// | Mistral (v0.1/v0.2) | `[INST] Hi [/INST]` (after BOS; an answer is followed by EOS) | nothing |
/// | completion (no template) | the contents, joined by blank lines | nothing |
public struct ChatTemplate: Sendable, Equatable {
    public enum Family: String, Sendable, CaseIterable {
        case chatML = "chatml", llama3, gemma, mistral, completion
    }

    public var family: Family
    /// The system prompt the template adds when the conversation has none (SmolLM2, Qwen 2.5).
    public var defaultSystemPrompt: String?
    /// `bos_token` / `eos_token` as the template writes them (the tokens' texts).
    public var bosText: String
    public var eosText: String

    /// - Parameters:
    ///   - family: the prompt format.
    ///   - defaultSystemPrompt: added by ChatML when no system message is given.
    ///   - bosText, eosText: the BOS/EOS token texts; the family's usual ones when nil.
    public init(family: Family, defaultSystemPrompt: String? = nil, bosText: String? = nil, eosText: String? = nil) {
        self.family = family
        self.defaultSystemPrompt = defaultSystemPrompt
        switch family {
        case .llama3: (self.bosText, self.eosText) = (bosText ?? "<|begin_of_text|>", eosText ?? "<|end_of_text|>")
        case .gemma: (self.bosText, self.eosText) = (bosText ?? "<bos>", eosText ?? "<eos>")
        case .mistral: (self.bosText, self.eosText) = (bosText ?? "<s>", eosText ?? "</s>")
        case .chatML, .completion: (self.bosText, self.eosText) = (bosText ?? "", eosText ?? "")
        }
    }

    /// A family by name (`chatml`, `llama3`, `gemma`, `mistral`, `completion`), for `--template`.
    public init(name: String) throws {
        guard let family = Family(rawValue: name.lowercased()) else { throw ChatTemplateError.unknownFamily(name) }
        self.init(family: family)
    }

    /// Recognises the family of a Jinja chat template by its marker tokens, as llama.cpp's
    /// `llm_chat_detect_template` does; nil or empty means a plain completion prompt.
    /// - Throws: `ChatTemplateError.unrecognisedTemplate` for other templates.
    public init(template: String?, bosText: String? = nil, eosText: String? = nil) throws {
        guard let template, !template.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            self.init(family: .completion, bosText: bosText, eosText: eosText)
            return
        }
        if template.contains("<|im_start|>") {
            self.init(family: .chatML, defaultSystemPrompt: Self.chatMLDefaultSystemPrompt(template),
                      bosText: bosText, eosText: eosText)
        } else if template.contains("<|start_header_id|>") && template.contains("<|end_header_id|>") {
            self.init(family: .llama3, bosText: bosText, eosText: eosText)
        } else if template.contains("<start_of_turn>") {
            self.init(family: .gemma, bosText: bosText, eosText: eosText)
        } else if template.contains("[INST]") {
            self.init(family: .mistral, bosText: bosText, eosText: eosText)
        } else {
            throw ChatTemplateError.unrecognisedTemplate(snippet: String(template.prefix(80)))
        }
    }

    /// The template of a GGUF file: `tokenizer.chat_template`, with BOS/EOS texts from its
    /// vocabulary; `name` (a family, as `--template` gives it) overrides the file's template.
    public init(metadata: GGUFMetadata, name: String? = nil) throws {
        let (bos, eos) = Self.specialTexts(metadata)
        let template = metadata["tokenizer.chat_template"]?.stringValue
        guard let name else { try self.init(template: template, bosText: bos, eosText: eos); return }
        guard let family = Family(rawValue: name.lowercased()) else { throw ChatTemplateError.unknownFamily(name) }
        self.init(family: family, defaultSystemPrompt: family == .chatML ? template.flatMap(Self.chatMLDefaultSystemPrompt) : nil,
                  bosText: bos, eosText: eos)
    }

    /// The BOS and EOS token texts of a GGUF vocabulary.
    static func specialTexts(_ metadata: GGUFMetadata) -> (bos: String?, eos: String?) {
        guard case let .array(tokens)? = metadata["tokenizer.ggml.tokens"], let texts = tokens.strings else { return (nil, nil) }
        func text(_ key: String) -> String? {
            guard let id = metadata[key]?.intValue, texts.indices.contains(id) else { return nil }
            return texts[id]
        }
        return (text("tokenizer.ggml.bos_token_id"), text("tokenizer.ggml.eos_token_id"))
    }

    /// The literal system turn a ChatML template writes when the conversation has none, e.g.
    /// `'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, ...<|im_end|>\n'`.
    static func chatMLDefaultSystemPrompt(_ template: String) -> String? {
        let open = "<|im_start|>system"
        var search = template[...]
        while let start = search.range(of: open) {
            var rest = search[start.upperBound...]
            if rest.hasPrefix("\n") {
                rest = rest.dropFirst()
            } else if rest.hasPrefix("\\n") {
                rest = rest.dropFirst(2)
            } else {
                search = rest
                continue
            }
            // A literal prompt ends at <|im_end|> without leaving the string literal.
            if let end = rest.range(of: "<|im_end|>"),
               !rest[..<end.lowerBound].contains(where: { "'\"{}".contains($0) }) {
                return String(rest[..<end.lowerBound]).replacingOccurrences(of: "\\n", with: "\n")
            }
            search = rest
        }
        return nil
    }

    /// The text that closes an assistant turn (a stop string for generation), if the family has one.
    public var endOfTurn: String? {
        switch family {
        case .chatML: return "<|im_end|>"
        case .llama3: return "<|eot_id|>"
        case .gemma: return "<end_of_turn>"
        case .mistral: return eosText
        case .completion: return nil
        }
    }
}
