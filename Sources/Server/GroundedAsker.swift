import Evaluation
import Foundation
import LLM
import VectorIndex

/// The whole path of `selfspec ask` from a question to a checked answer: retrieve (optional),
/// build the numbered-passage prompt (``GroundedQuestion``), render it with the chat template,
/// generate with the given settings (repetition stop included), and check citations and figures.
///
/// `ask` and `eval --rag-qa` both go through ``answer(_:onText:)``, so what the evaluation
/// measures is what a user gets.
public struct GroundedAsker {
    /// What retrieval feeds the prompt: a retriever, the mode and the passages per question.
    public struct Retrieval {
        public var retriever: Retriever
        public var mode: SearchMode
        public var k: Int
        /// Show the whole documents of the `k` passages found (``Retriever/wholeDocuments(_:)``),
        /// best first, within the passage budget; false: the `k` passages alone.
        public var wholeDocuments: Bool

        public init(retriever: Retriever, mode: SearchMode, k: Int, wholeDocuments: Bool = false) {
            self.retriever = retriever
            self.mode = mode
            self.k = k
            self.wholeDocuments = wholeDocuments
        }

        /// The passages for `question`, best first.
        func passages(_ question: String) throws -> [SearchHit] {
            let hits = try retriever.search(question, k: k, mode: mode)
            return wholeDocuments ? try retriever.wholeDocuments(hits) : hits
        }
    }

    /// How a yes/no question's answer starts: with "Yes", "No" or "Maybe" chosen from the model's
    /// probabilities of those words at the first token (``FirstTokenChoice``), then the model
    /// explains as usual. `calibrated` divides by the probabilities the model gives with no content
    /// (contextual calibration: the same prompt with the passages and the question replaced by
    /// "N/A"), meant to remove a model's leaning toward one word; BENCHMARKS.md ("A first-word
    /// verdict") measures whether it does (for Qwen2.5's yes bias it does not).
    public struct Verdict: Sendable, Equatable {
        public enum Mode: String, Sendable, CaseIterable {
            /// The option the model finds most likely.
            case model
            /// The most likely option relative to its content-free probability.
            case calibrated
        }
        /// Which questions get a verdict.
        public enum Questions: String, Sendable {
            /// Questions that ask yes or no (`DecisionParser.isYesNoQuestion`).
            case yesNo = "yes-no"
            /// Every question (a benchmark of yes/no/maybe questions).
            case all
        }

        public static let labels = ["yes", "no", "maybe"]
        public var mode: Mode
        public var questions: Questions
        /// The choice, priors included.
        public var choice: FirstTokenChoice
        /// The content-free log-probabilities of yes, no and maybe (zeros for `.model`).
        public var priors: [Double] { choice.options.map(\.logPrior) }

        /// Builds the choice for `generator`'s tokenizer and, when calibrated, runs the content-free prompt once.
        /// - Throws: `ModelError`; `SamplingError` (also when a label is not one token of its own).
        public init(mode: Mode, questions: Questions, generator: TextGenerator, template: ChatTemplate,
                    instructions: String = GroundedQuestion.instructions) throws {
            self.mode = mode
            self.questions = questions
            let tokenizer = generator.tokenizer
            choice = try FirstTokenChoice.words(Self.labels, tokenizer: tokenizer)
            guard mode == .calibrated else { return }
            let messages: [ChatMessage] = [.system(instructions + "\n\nPassages:\n\n[1] N/A"), .user("N/A")]
            var request = GenerationRequest(prompt: try template.encode(messages, tokenizer: tokenizer), maxTokens: 1,
                                            firstTokenChoice: choice)
            request.stopAtEndOfSequence = false
            let free = try generator.generate(request).choice?.logProbs ?? []
            for i in choice.options.indices where i < free.count { choice.options[i].logPrior = free[i] }
        }

        /// Whether `question` gets a verdict.
        public func applies(to question: String) -> Bool { questions == .all || DecisionParser.isYesNoQuestion(question) }
    }

    /// One answered question.
    public struct Answer {
        /// The passages retrieved, best first (empty without retrieval).
        public var hits: [SearchHit]
        /// The prompt's passages and sources.
        public var grounded: GroundedQuestion
        public var result: GenerationResult
        /// Citations and figures of the answer, checked against the passages shown.
        public var checked: GroundedQuestion.Checked
        /// Wall-clock seconds of retrieval and of generation (prefill included).
        public var retrievalSeconds: Double
        public var generationSeconds: Double
    }

    public let generator: TextGenerator
    public let template: ChatTemplate
    /// Generation settings for every question; its prompt is replaced, and the template's
    /// end-of-turn text is added to its stop strings.
    public let settings: GenerationRequest
    /// nil: the question alone, no passages.
    public let retrieval: Retrieval?
    /// The most tokens the passages together may take in the prompt.
    public let passageBudget: Int
    /// The instructions of the system turn (``GroundedQuestion/instructions`` unless given).
    public let instructions: String
    /// How a yes/no answer starts (nil: as the model writes it).
    public let verdict: Verdict?

    public init(generator: TextGenerator, template: ChatTemplate, settings: GenerationRequest,
                retrieval: Retrieval?, passageBudget: Int, instructions: String = GroundedQuestion.instructions,
                verdict: Verdict? = nil) {
        self.instructions = instructions
        self.verdict = verdict
        self.generator = generator
        self.template = template
        self.settings = settings
        self.retrieval = retrieval
        self.passageBudget = passageBudget
    }

    /// Retrieves, prompts, generates and checks one question.
    /// - Parameter onText: receives the answer as it is generated; `.stop` cancels.
    /// - Throws: retrieval errors (`RetrievalError`, SQLite), `ModelError` (context overflow), `SamplingError`.
    public func answer(_ question: String, onText: (String) -> TextGenerator.Action = { _ in .more }) throws -> Answer {
        let tokenizer = generator.tokenizer
        let start = Date()
        let hits = try retrieval.map { try $0.passages(question) } ?? []
        let retrieved = Date()
        let grounded = GroundedQuestion(question: question, hits: hits, passageBudget: passageBudget, instructions: instructions,
                                        countTokens: { tokenizer.encode($0).count })
        var request = settings
        request.prompt = try template.encode(grounded.messages, tokenizer: tokenizer)
        if let end = template.endOfTurn, !request.stopStrings.contains(end) { request.stopStrings.append(end) }
        if let verdict, verdict.applies(to: question) { request.firstTokenChoice = verdict.choice }
        let result = try generator.generate(request, onText: onText)
        return Answer(hits: hits, grounded: grounded, result: result, checked: grounded.check(answer: result.text),
                      retrievalSeconds: retrieved.timeIntervalSince(start),
                      generationSeconds: Date().timeIntervalSince(retrieved))
    }
}

