import Foundation

extension ChatTemplate {
    /// Renders a conversation as the model's prompt text.
    ///
    /// - Parameters:
    ///   - messages: the turns, optionally starting with a system message.
    ///   - addGenerationPrompt: end with the header of an assistant turn, so that the model
    ///     continues with its answer (no effect for Mistral, whose prompt ends with `[/INST]`,
    ///     and for completion prompts).
    /// - Returns: the prompt text, with the BOS text where the family's template writes it;
    ///   encode it with `parseSpecial: true` (or use `encode(_:addGenerationPrompt:tokenizer:)`).
    /// - Throws: `ChatTemplateError` for an empty conversation or roles the family does not take.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> String {
        guard !messages.isEmpty else { throw ChatTemplateError.emptyConversation }
        switch family {
        case .chatML: return renderChatML(messages, addGenerationPrompt)
        case .llama3: return renderLlama3(messages, addGenerationPrompt)
        case .gemma: return try renderGemma(messages, addGenerationPrompt)
        case .mistral: return try renderMistral(messages)
        case .completion: return messages.map(\.content).joined(separator: "\n\n")
        }
    }

    /// Renders and tokenizes a conversation: control tokens in the rendered text become their
    /// ids, and BOS is put in front when the tokenizer adds one by default and the template has
    /// not written it already (so it is never doubled).
    public func encode(_ messages: [ChatMessage], addGenerationPrompt: Bool = true,
                       tokenizer: any Tokenizer) throws -> [Int] {
        let text = try render(messages, addGenerationPrompt: addGenerationPrompt)
        let ids = tokenizer.encode(text, addBOS: false, parseSpecial: family != .completion)
        let special = tokenizer.specialTokens
        if special.addBOSByDefault, let bos = special.bos, ids.first != bos { return [bos] + ids }
        return ids
    }

    // MARK: Families

    /// `<|im_start|>{role}\n{content}<|im_end|>\n` per turn; the default system turn first when
    /// the conversation has none (SmolLM2's template: `loop.first and messages[0]['role'] != 'system'`).
    private func renderChatML(_ messages: [ChatMessage], _ addGenerationPrompt: Bool) -> String {
        var out = ""
        if let system = defaultSystemPrompt, messages[0].role != "system" {
            out += "<|im_start|>system\n\(system)<|im_end|>\n"
        }
        for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }

    /// Meta-Llama-3-Instruct: BOS, then `<|start_header_id|>{role}<|end_header_id|>\n\n{content | trim}<|eot_id|>`.
    private func renderLlama3(_ messages: [ChatMessage], _ addGenerationPrompt: Bool) -> String {
        var out = bosText
        for m in messages {
            out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(Self.jinjaTrim(m.content))<|eot_id|>"
        }
        if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        return out
    }

    /// Gemma 3 IT: BOS, then `<start_of_turn>{user|model}\n{content | trim}<end_of_turn>\n`; a
    /// system message becomes a prefix of the first user turn followed by a blank line.
    private func renderGemma(_ messages: [ChatMessage], _ addGenerationPrompt: Bool) throws -> String {
        let (prefix, turns) = try Self.alternatingTurns(messages, family: "gemma", systemSeparator: "\n\n")
        var out = bosText
        for (i, m) in turns.enumerated() {
            let role = m.role == "assistant" ? "model" : m.role
            out += "<start_of_turn>\(role)\n\(i == 0 ? prefix : "")\(Self.jinjaTrim(m.content))<end_of_turn>\n"
        }
        if addGenerationPrompt { out += "<start_of_turn>model\n" }
        return out
    }

    /// Mistral-7B-Instruct v0.1/v0.2: BOS, then `[INST] {user} [/INST]` and `{answer}</s>`. The
    /// published template rejects a system message; like llama.cpp, we put it in front of the
    /// first user message followed by a newline.
    private func renderMistral(_ messages: [ChatMessage]) throws -> String {
        let (prefix, turns) = try Self.alternatingTurns(messages, family: "mistral", systemSeparator: "\n")
        var out = bosText
        for (i, m) in turns.enumerated() {
            if m.role == "user" {
                out += "[INST] \(i == 0 ? prefix : "")\(m.content) [/INST]"
            } else {
                out += m.content + eosText
            }
        }
        return out
    }

    // MARK: Helpers

    /// Splits off a leading system message (as `content + separator`) and checks that the rest
    /// alternates user, assistant, user, ...
    private static func alternatingTurns(_ messages: [ChatMessage], family: String,
                                         systemSeparator: String) throws -> (String, ArraySlice<ChatMessage>) {
        var prefix = ""
        var turns = messages[...]
        if let first = turns.first, first.role == "system" {
            prefix = first.content + systemSeparator
            turns = turns.dropFirst()
        }
        for (i, m) in turns.enumerated() {
            let index = messages.count - turns.count + i
            guard m.role == "user" || m.role == "assistant" else {
                throw ChatTemplateError.unsupportedRole(family: family, role: m.role, index: index)
            }
            guard (m.role == "user") == (i % 2 == 0) else {
                throw ChatTemplateError.rolesMustAlternate(family: family, index: index, role: m.role)
            }
        }
        return (prefix, turns)
    }

    /// Jinja's `trim` filter: strips Python's whitespace (`str.strip()`) from both ends.
    static func jinjaTrim(_ s: String) -> String {
        s.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
