import Foundation
import LLM
import Tensor

/// A worked example shown before the evaluated item in a k-shot prompt.
public struct Demonstration: Sendable, Equatable {
    /// The item as the prompt shows it (same rendering as evaluated items).
    public var input: String
    /// The answer as the model should write it ("yes", "B", mentions one per line).
    public var answer: String

    public init(input: String, answer: String) {
        self.input = input
        self.answer = answer
    }
}

/// Renders evaluation prompts with the model's chat template, or as a plain completion prompt
/// for models without one.
///
/// Chat models (ChatML, Llama 3, Gemma …): every demonstration is a user turn (instruction, a
/// blank line, the input) followed by an assistant turn with its answer; the evaluated item is
/// the last user turn, and the prompt ends with the assistant header. The answer follows the
/// header directly, so a label option is scored as its bare text ("yes").
///
/// Completion models (no `tokenizer.chat_template`, e.g. Gemma 3 270M base): the instruction,
/// then each demonstration as `input\nAnswer: answer`, then `input\nAnswer:`, separated by blank
/// lines; a label option is scored with a leading space (" yes").
public struct PromptBuilder: Sendable {
    public let template: ChatTemplate
    public let tokenizer: any Tokenizer

    public init(template: ChatTemplate, tokenizer: any Tokenizer) {
        self.template = template
        self.tokenizer = tokenizer
    }

    /// Whether prompts are plain completions (no chat template).
    public var isCompletion: Bool { template.family == .completion }

    /// Prompt token ids for one item.
    /// - Throws: `ChatTemplateError` when the template cannot render the turns.
    public func encode(instruction: String, demonstrations: [Demonstration], input: String) throws -> [Int] {
        if isCompletion {
            var parts = [instruction]
            parts += demonstrations.map { "\($0.input)\nAnswer: \($0.answer)" }
            parts.append("\(input)\nAnswer:")
            return tokenizer.encode(parts.joined(separator: "\n\n"), addBOS: tokenizer.specialTokens.addBOSByDefault,
                                    parseSpecial: false)
        }
        var messages: [ChatMessage] = []
        for d in demonstrations {
            messages.append(.user("\(instruction)\n\n\(d.input)"))
            messages.append(.assistant(d.answer))
        }
        messages.append(.user("\(instruction)\n\n\(input)"))
        return try template.encode(messages, addGenerationPrompt: true, tokenizer: tokenizer)
    }

    /// Token ids of an answer as it follows the prompt.
    public func answerTokens(_ answer: String) -> [Int] {
        tokenizer.encode(isCompletion ? " " + answer : answer, addBOS: false, parseSpecial: false)
    }

    /// Strings that end a generated answer: the end-of-turn marker, or a blank line for completions.
    public var stopStrings: [String] {
        if isCompletion { return ["\n\n"] }
        return template.endOfTurn.map { [$0] } ?? []
    }

    // MARK: Task instructions

    /// The instruction of a label task.
    public static func instruction(for task: EvalTask) -> String {
        switch task {
        case .pubmedqa:
            return "Read the context and answer the biomedical research question with yes, no or maybe."
        case .mcq:
            return "Answer the medical multiple-choice question with the letter of the correct option."
        case .gad:
            return "Does the sentence say that the gene @GENE$ is associated with the disease @DISEASE$? Answer yes or no."
        case .ner:
            return nerInstruction(type: "entity")
        }
    }

    /// The NER instruction for one entity type (e.g. "Chemical" -> "chemical").
    public static func nerInstruction(type: String) -> String {
        let name = type.lowercased()
        return "List every \(name) mentioned in the sentence, one per line, written exactly as in the sentence. "
            + "If the sentence mentions no \(name), answer none."
    }

    /// A NER demonstration's answer: its mentions of `type`, one per line, or `none`.
    public static func nerAnswer(_ sentence: NERSentence, type: String) -> String {
        var seen = Set<String>(), mentions: [String] = []
        for e in sentence.entities where e.type == type {
            let text = sentence.tokens[e.start..<e.end].joined(separator: " ")
            if seen.insert(text).inserted { mentions.append(text) }
        }
        return mentions.isEmpty ? "none" : mentions.joined(separator: "\n")
    }
}

// MARK: - Demonstrations

/// Draws k-shot demonstrations from a separate file, never from the evaluated items.
public enum DemonstrationPool {
    /// The candidate items of `demos`, minus any whose content equals an item of `evaluated`
    /// (compared over the whole evaluated file, not just the sampled items).
    /// - Throws: `EvaluationError.demonstrationsAreEvaluated` when both are the same file.
    public static func candidates(_ demos: TaskDataset, excluding evaluated: TaskDataset) throws -> TaskDataset {
        let a = URL(fileURLWithPath: demos.file).standardizedFileURL.resolvingSymlinksInPath().path
        let b = URL(fileURLWithPath: evaluated.file).standardizedFileURL.resolvingSymlinksInPath().path
        if a == b { throw EvaluationError.demonstrationsAreEvaluated(file: demos.file, task: demos.task.rawValue) }
        let banned = Set(evaluated.contentKeys)
        let keep = demos.contentKeys.enumerated().filter { !banned.contains($0.element) }.map(\.offset)
        return demos.selecting(keep)
    }

    /// `shots` distinct demonstration indices for evaluated item `item`, drawn from `count`
    /// candidates with a generator seeded by `seed` and the item's position (so each item gets
    /// its own draw, the same in every run and for every model).
    public static func draw(shots: Int, from count: Int, seed: UInt64, item: Int) -> [Int] {
        guard shots > 0, count > 0 else { return [] }
        var rng = SplitMix64(seed: seed &+ 0x5EED &+ UInt64(item) &* 0x9E37_79B9)
        var picked: [Int] = [], used = Set<Int>()
        while picked.count < min(shots, count) {
            let i = Int(rng.next() % UInt64(count))
            if used.insert(i).inserted { picked.append(i) }
        }
        return picked
    }
}
