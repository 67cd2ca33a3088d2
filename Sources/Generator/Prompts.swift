import Foundation
import VectorIndex

// MARK: - Stage 1

/// The brainstorming prompt: domain requirements plus 3 seeds drawn at random, ending where
/// the model should write the next task.
public struct BrainstormPrompt: Sendable, Equatable {
    public var text: String
    /// The seeds shown, in order.
    public var seeds: [Seed]
    /// What the prompt ends with; prepend it to the completion before parsing.
    public var completionPrefix: String

    /// Seeds shown per prompt (the paper: 3).
    public static let seedsPerPrompt = 3

    /// Stop sequences: the end of the task being written (a blank line or the next task header),
    /// used unless the settings name their own. A small model writes one task and then rambles:
    /// in a sample of 8 SmolLM2 completions, 6 ran to the 384-token limit and only the first task
    /// of each parsed, so everything after it was paid for and thrown away.
    public static let stops = ["\n\n", "\nTask "]

    /// - Parameters:
    ///   - pool: seeds to draw from (at least one).
    ///   - rng: decides which seeds; the same state gives the same prompt.
    ///   - tasksToWrite: how many new tasks the model is asked for.
    public static func make<R: RandomNumberGenerator>(pool: [Seed], using rng: inout R, tasksToWrite: Int = 4) -> BrainstormPrompt {
        precondition(!pool.isEmpty, "seed pool is empty")
        var indices = Array(pool.indices)
        indices.shuffle(using: &rng)
        let chosen = indices.prefix(seedsPerPrompt).map { pool[$0] }
        var text = """
        You are a biomedical expert writing tasks to train an assistant for biomedicine and clinical research.
        Come up with \(tasksToWrite) new, diverse tasks. Requirements:
        1. Stay in the biomedical domain: clinical questions, abstracts of studies, genes, diseases, chemicals and drugs, trial results.
        2. Vary the task types: yes/no/maybe questions about an abstract, factoid and list questions, extracting chemicals, diseases or genes, relations between genes and diseases, chemicals and proteins, or two drugs, classifying topics, summarising conclusions, judging sentence similarity, and inference.
        3. Vary the wording: do not start every instruction with the same verb; mix imperatives and questions.
        4. Each instruction is one or two sentences in English.
        5. When a task needs an input, write a realistic, self-contained input of up to 150 words (for example a short abstract passage or a clinical sentence). Otherwise write "<noinput>".
        6. The task must be answerable in text: never ask for images, figures, files, links or web pages.

        """
        for (i, s) in chosen.enumerated() {
            text += "Task \(i + 1)\nInstruction: \(s.instruction)\nInput: \(s.input.isEmpty ? "<noinput>" : s.input)\n\n"
        }
        let prefix = "Instruction:"
        text += "Task \(chosen.count + 1)\n\(prefix)"
        return BrainstormPrompt(text: text, seeds: chosen, completionPrefix: prefix)
    }
}

// MARK: - Stage 2

/// One retrieved passage as cited in a prompt and an example.
public struct PassageRef: Codable, Sendable, Equatable {
    public var pmid: Int?
    public var passageID: Int64
    public var score: Double

    enum CodingKeys: String, CodingKey { case pmid, passageID = "passage_id", score }

    public init(pmid: Int?, passageID: Int64, score: Double) { self.pmid = pmid; self.passageID = passageID; self.score = score }
}

/// The response prompt: retrieved passages with their PMIDs (trimmed to a token budget), a few
/// seed demonstrations, then the instruction. Without passages it is the ungrounded variant.
public struct ResponsePrompt: Sendable, Equatable {
    public var text: String
    /// The passages that made it into the prompt (the last one possibly shortened).
    public var passages: [PassageRef]
    /// Their texts as shown, for the copy filter.
    public var passageTexts: [String]
    /// The demonstrations shown, for the stock-answer filter.
    public var demonstrations: [Seed] = []

    /// - Parameters:
    ///   - hits: retrieved passages, best first; empty for the ungrounded variant.
    ///   - demonstrations: seed examples shown before the instruction.
    ///   - passageBudget: the most tokens the passages together may take.
    ///   - countTokens: counts tokens the way the model's tokenizer does.
    public static func make(instruction: String, input: String, hits: [SearchHit], demonstrations: [Seed],
                            passageBudget: Int, countTokens: TokenCounter) -> ResponsePrompt {
        // The shared trimming rule (whole passages, then one cut at a word boundary), headed `[PMID n] Title`.
        let shown = PromptPassages(hits: hits, budget: passageBudget, style: .pmid, countTokens: countTokens)
        let refs = shown.passages.map { PassageRef(pmid: $0.hit.pmid, passageID: $0.hit.passageID, score: $0.hit.score) }
        let block = shown.text
        var text: String
        if refs.isEmpty {
            text = "You are a biomedical expert. Complete the task accurately and concisely.\n\n"
        } else {
            text = """
            You are a biomedical expert. Complete the task accurately and concisely. Use the passages below when they are relevant, and cite them as [PMID n].

            Passages:
            \(block)
            """
        }
        for d in demonstrations {
            text += section(d.instruction, d.input) + d.output + "\n\n"
        }
        text += section(instruction, input)
        return ResponsePrompt(text: text, passages: refs, passageTexts: shown.passages.map(\.text), demonstrations: demonstrations)
    }

    static func section(_ instruction: String, _ input: String) -> String {
        "### Instruction:\n\(instruction)\n\n" + (input.isEmpty ? "" : "### Input:\n\(input)\n\n") + "### Response:\n"
    }

    /// Stop sequences that end a response before the model starts another task.
    public static let stops = ["### Instruction:", "\n### "]
}
