import ArgumentParser
import Foundation
import LLM
import Server
import VectorIndex

/// `selfspec ask`: one question to the model (optionally with an adapter), optionally grounded
/// in passages retrieved from the corpus, the answer streamed and followed by its sources.
struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the model a question; with --rag the answer is grounded in corpus passages and lists its sources.",
        discussion: """
        With --rag the k best passages (numbered [1], [2], … with PMID and title; trimmed to \
        --passage-budget tokens) go into the prompt and the model is told to cite them by number; \
        the answer ends with a "Sources:" list of the passages it cited (invalid citations and \
        figures not found in the cited passages are listed too). Generation stops when the answer \
        starts repeating itself (--no-repetition-stop: off). --json prints {question, answer, \
        finish_reason, tokens, prompt_tokens, sources, passages, citations, invalid_citations, \
        invalid_citation_marks, unsupported, mode, model, adapter}.
        """)

    @Argument(help: "The question.")
    var question: String
    @Option(name: .long, help: "The GGUF model file, or a model name: smollm2, gemma3, qwen2.5.")
    var model = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    @Option(name: .long, help: "A LoRA adapter (PEFT folder, GGUF file, or the name of one under adapters/) trained on this model.")
    var adapter: String?
    @Flag(name: .long, help: "Retrieve passages from --db and ground the answer in them.")
    var rag = false
    @Option(name: .long, help: "The corpus SQLite file (with --rag).")
    var db: String?
    @Option(name: .long, help: "Passages retrieved (with --rag).")
    var k = 3
    @OptionGroup var retrieval: RetrievalOptions
    @Option(name: .long, help: "The most tokens the passages may take in the prompt.")
    var passageBudget = 512
    @Option(name: .long, help: "What of each of the --k passages found goes into the prompt: passage (it alone) or document (its whole document, so a passage of an abstract's methods comes with its results and conclusion), within --passage-budget.")
    var context = PromptContext.passage
    @Option(name: .long, help: "The instructions of the system turn, before the passages (default: the built-in ones, in the README).")
    var instructions: String?
    @Option(name: .long, help: "How the answer to a yes/no question starts: off (as the model writes it), model (Yes, No or Maybe, whichever the model finds most likely at the first word) or calibrated (the same, relative to what it says with no content: removes a model's leaning to one word).")
    var verdict = VerdictOption.off
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var weights: WeightFormatOptions
    @OptionGroup var templateOptions: TemplateOptions
    @Flag(name: .long, help: "Print one JSON object at the end instead of streaming text.")
    var json = false

    func validate() throws {
        if question.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("the question is empty") }
        if rag && db == nil { throw ValidationError("--rag needs --db FILE (a corpus made with selfspec ingest)") }
        if !rag && db != nil { throw ValidationError("--db is used with --rag only") }
        if !rag && context != .passage { throw ValidationError("--context is used with --rag only") }
        if k < 1 || k > 50 { throw ValidationError("--k must be in 1...50") }
        if passageBudget < 32 { throw ValidationError("--passage-budget must be at least 32 tokens") }
        if let instructions, instructions.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw ValidationError("--instructions is empty")
        }
    }

    struct Output: Encodable {
        var question: String
        var answer: String
        var finish_reason: String
        var tokens: Int
        var prompt_tokens: Int
        /// The documents the answer cites (empty when it cites none).
        var sources: [GroundedQuestion.Source]
        /// Every passage shown in the prompt, by number.
        var passages: [Passage]
        /// Citation markers found in the answer, valid or not.
        var citations: Int
        var invalid_citations: Int
        var invalid_citation_marks: [String]
        /// Figures not found in the cited passages (nil without --rag).
        var unsupported: [String]?
        var mode: String?
        var model: String
        var adapter: String?
    }

    struct Passage: Encodable {
        var number: Int
        var pmid: Int?
        var document_key: String
        var passage_id: Int64
        var title: String
        var score: Double
        var cut: Bool
    }

    func run() throws {
        Terminal.trapInterrupts()
        let model = try ModelNames.model(self.model)
        let adapter = try self.adapter.map(ModelNames.adapter)
        let file = try GGUFFile(path: model)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let template = try templateOptions.resolve(file)
        let lm = try loadLanguageModel(file: file, options: try weights.modelOptions(), adapter: try adapter.map { try LoRAAdapter(path: $0) })
        var retrieval: GroundedAsker.Retrieval?
        if rag, let db {
            let (retriever, mode) = try self.retrieval.open(db)
            retrieval = GroundedAsker.Retrieval(retriever: retriever, mode: mode, k: k, wholeDocuments: context == .document)
        }
        let generator = TextGenerator(model: lm, tokenizer: tokenizer)
        let instructions = instructions ?? GroundedQuestion.instructions
        let asker = GroundedAsker(generator: generator, template: template,
                                  settings: sampling.request([], repetitionByDefault: true), retrieval: retrieval,
                                  passageBudget: passageBudget, instructions: instructions,
                                  verdict: try verdict.make(questions: .yesNo, generator: generator, template: template, instructions: instructions))
        let answer = try asker.answer(question) { piece in
            if !json { FileHandle.standardOutput.write(Data(piece.utf8)) }
            return interruptRequested.load(ordering: .relaxed) ? .stop : .more
        }
        let (grounded, result, checked, usedMode) = (answer.grounded, answer.result, answer.checked, retrieval?.mode)
        if json {
            let passages = grounded.passages.passages.map {
                Passage(number: $0.number, pmid: $0.hit.pmid, document_key: $0.hit.documentKey, passage_id: $0.hit.passageID,
                        title: $0.hit.title, score: $0.hit.score, cut: $0.isCut)
            }
            try Terminal.printJSON(Output(question: question, answer: result.text, finish_reason: result.finishReason.rawValue,
                                          tokens: result.tokens.count, prompt_tokens: result.promptTokens,
                                          sources: checked.sources, passages: passages, citations: checked.citationCount,
                                          invalid_citations: checked.invalidCitations.count,
                                          invalid_citation_marks: checked.invalidCitations,
                                          unsupported: rag ? checked.unsupported : nil,
                                          mode: usedMode?.rawValue, model: model, adapter: adapter))
        } else {
            FileHandle.standardOutput.write(Data("\n".utf8))  // after the streamed pieces (print's buffer would come later)
            if result.finishReason == .repetition { Terminal.note(Chat.repetitionNote) }
            if rag { print("\n" + grounded.report(checked)) }
        }
        if result.finishReason == .cancelled { throw ExitCode(130) }
    }
}

/// What `ask --rag` and `eval --rag-qa` show of each passage found: the passage, or its whole document.
enum PromptContext: String, ExpressibleByArgument, CaseIterable {
    case passage, document
}

/// `--verdict` of `ask` and `eval --rag-qa` (``GroundedAsker/Verdict``).
enum VerdictOption: String, ExpressibleByArgument, CaseIterable {
    case off, model, calibrated

    func make(questions: GroundedAsker.Verdict.Questions, generator: TextGenerator, template: ChatTemplate,
              instructions: String) throws -> GroundedAsker.Verdict? {
        switch self {
        case .off: return nil
        case .model: return try .init(mode: .model, questions: questions, generator: generator, template: template, instructions: instructions)
        case .calibrated: return try .init(mode: .calibrated, questions: questions, generator: generator, template: template, instructions: instructions)
        }
    }
}
