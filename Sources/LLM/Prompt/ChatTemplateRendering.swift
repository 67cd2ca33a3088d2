import Foundation

/// A piece of a rendered conversation: the unit in which it is tokenized.
public struct ChatSegment: Sendable, Equatable {
    public var text: String
    /// The model's own output (an assistant turn's content and the tokens that close it): what
    /// training learns to predict; everything else is prompt.
    public var isAssistantOutput: Bool
    /// Whether control-token texts in `text` (`<|im_start|>`, `<eos>`) become their ids: true for
    /// a chat template's markup, false for a completion prompt's contents, which are plain text.
    public var parsesSpecialTokens: Bool

    public init(_ text: String, isAssistantOutput: Bool = false, parsesSpecialTokens: Bool = true) {
        self.text = text
        self.isAssistantOutput = isAssistantOutput
        self.parsesSpecialTokens = parsesSpecialTokens
    }
}

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
        try segments(messages, addGenerationPrompt: addGenerationPrompt).map(\.text).joined()
    }

    /// Renders a conversation as segments, prompt and assistant output apart (adjacent segments
    /// of the same kind are joined): the one rendering that serving prompts with and training
    /// learns from. An assistant turn's output is its content and what closes it (`<|im_end|>\n`,
    /// `<end_of_turn>\n`, `<|eot_id|>`, EOS); for a completion prompt, the blank line before it too,
    /// since the prompt itself ends with the user's text.
    /// - Throws: `ChatTemplateError` for an empty conversation or roles the family does not take.
    public func segments(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> [ChatSegment] {
        guard !messages.isEmpty else { throw ChatTemplateError.emptyConversation }
        var out = SegmentList()
        switch family {
        case .chatML: renderChatML(messages, addGenerationPrompt, into: &out)
        case .llama3: renderLlama3(messages, addGenerationPrompt, into: &out)
        case .gemma: try renderGemma(messages, addGenerationPrompt, into: &out)
        case .mistral: try renderMistral(messages, into: &out)
        case .completion: renderCompletion(messages, into: &out)
        }
        return out.segments
    }

    /// Renders and tokenizes a conversation: control tokens in the rendered text become their
    /// ids, and BOS is put in front when the tokenizer adds one by default and the template has
    /// not written it already (so it is never doubled).
    public func encode(_ messages: [ChatMessage], addGenerationPrompt: Bool = true,
                       tokenizer: any Tokenizer) throws -> [Int] {
        try encodeMarked(messages, addGenerationPrompt: addGenerationPrompt, tokenizer: tokenizer).ids
    }

    /// ``encode(_:addGenerationPrompt:tokenizer:)`` with, per id, whether it is assistant output.
    /// Each segment is tokenized on its own, so a prompt's ids are the same whether or not an
    /// answer follows it: the ids a conversation is trained on start with the ids it is served with.
    public func encodeMarked(_ messages: [ChatMessage], addGenerationPrompt: Bool = true,
                             tokenizer: any Tokenizer) throws -> (ids: [Int], isAssistantOutput: [Bool]) {
        var ids: [Int] = [], marks: [Bool] = []
        for s in try segments(messages, addGenerationPrompt: addGenerationPrompt) {
            let piece = tokenizer.encode(s.text, addBOS: false, parseSpecial: s.parsesSpecialTokens)
            ids += piece
            marks += [Bool](repeating: s.isAssistantOutput, count: piece.count)
        }
        let special = tokenizer.specialTokens
        if special.addBOSByDefault, let bos = special.bos, ids.first != bos {
            ids.insert(bos, at: 0)
            marks.insert(false, at: 0)
        }
        return (ids, marks)
    }

    // MARK: Families

    /// `<|im_start|>{role}\n{content}<|im_end|>\n` per turn; the default system turn first when
    /// the conversation has none (SmolLM2's template: `loop.first and messages[0]['role'] != 'system'`).
    private func renderChatML(_ messages: [ChatMessage], _ addGenerationPrompt: Bool, into out: inout SegmentList) {
        if let system = defaultSystemPrompt, messages[0].role != "system" {
            out.prompt("<|im_start|>system\n\(system)<|im_end|>\n")
        }
        for m in messages {
            out.prompt("<|im_start|>\(m.role)\n")
            out.append(m.content + "<|im_end|>\n", output: m.role == "assistant")
        }
        if addGenerationPrompt { out.prompt("<|im_start|>assistant\n") }
    }

    /// Meta-Llama-3-Instruct: BOS, then `<|start_header_id|>{role}<|end_header_id|>\n\n{content | trim}<|eot_id|>`.
    private func renderLlama3(_ messages: [ChatMessage], _ addGenerationPrompt: Bool, into out: inout SegmentList) {
        out.prompt(bosText)
        for m in messages {
            out.prompt("<|start_header_id|>\(m.role)<|end_header_id|>\n\n")
            out.append(Self.jinjaTrim(m.content) + "<|eot_id|>", output: m.role == "assistant")
        }
        if addGenerationPrompt { out.prompt("<|start_header_id|>assistant<|end_header_id|>\n\n") }
    }

    /// Gemma 3 IT: BOS, then `<start_of_turn>{user|model}\n{content | trim}<end_of_turn>\n`; a
    /// system message becomes a prefix of the first user turn followed by a blank line.
    private func renderGemma(_ messages: [ChatMessage], _ addGenerationPrompt: Bool, into out: inout SegmentList) throws {
        let (prefix, turns) = try Self.alternatingTurns(messages, family: "gemma", systemSeparator: "\n\n")
        out.prompt(bosText)
        for (i, m) in turns.enumerated() {
            let role = m.role == "assistant" ? "model" : m.role
            out.prompt("<start_of_turn>\(role)\n")
            out.append((i == 0 ? prefix : "") + Self.jinjaTrim(m.content) + "<end_of_turn>\n", output: m.role == "assistant")
        }
        if addGenerationPrompt { out.prompt("<start_of_turn>model\n") }
    }

    /// Mistral-7B-Instruct v0.1/v0.2: BOS, then `[INST] {user} [/INST]` and `{answer}</s>`. The
    /// published template rejects a system message; like llama.cpp, we put it in front of the
    /// first user message followed by a newline.
    private func renderMistral(_ messages: [ChatMessage], into out: inout SegmentList) throws {
        let (prefix, turns) = try Self.alternatingTurns(messages, family: "mistral", systemSeparator: "\n")
        out.prompt(bosText)
        for (i, m) in turns.enumerated() {
            if m.role == "user" {
                out.prompt("[INST] \(i == 0 ? prefix : "")\(m.content) [/INST]")
            } else {
                out.append(m.content + eosText, output: true)
            }
        }
    }

    /// A plain completion prompt: the contents joined by blank lines, as plain text (no control
    /// tokens). An assistant turn is the blank line, its content and the EOS token, so that a
    /// model tuned on it answers a prompt that ends with the user's text, and stops.
    private func renderCompletion(_ messages: [ChatMessage], into out: inout SegmentList) {
        for (i, m) in messages.enumerated() {
            let text = (i == 0 ? "" : "\n\n") + m.content
            if m.role == "assistant" {
                out.append(text, output: true, special: false)
                out.append(eosText, output: true)
            } else {
                out.append(text, output: false, special: false)
            }
        }
    }

    /// Segments under construction: an appended text joins the last segment when of the same kind.
    struct SegmentList {
        var segments: [ChatSegment] = []

        mutating func prompt(_ text: String) { append(text, output: false) }

        mutating func append(_ text: String, output: Bool, special: Bool = true) {
            guard !text.isEmpty else { return }
            if let last = segments.last, last.isAssistantOutput == output, last.parsesSpecialTokens == special {
                segments[segments.count - 1].text += text
            } else {
                segments.append(ChatSegment(text, isAssistantOutput: output, parsesSpecialTokens: special))
            }
        }
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
