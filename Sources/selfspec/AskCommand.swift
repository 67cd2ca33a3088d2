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
        With --rag the k best passages (PMID, title, text; trimmed to --passage-budget tokens) go \
        into the prompt, and the answer ends with a "Sources:" list of the PMIDs and titles shown. \
        --json prints {question, answer, finish_reason, tokens, prompt_tokens, sources, mode, model, adapter}.
        """)

    @Argument(help: "The question.")
    var question: String
    @Option(name: .long, help: "The GGUF model file.")
    var model = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    @Option(name: .long, help: "A LoRA adapter (PEFT folder or GGUF file) trained on this model.")
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
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var weights: WeightFormatOptions
    @OptionGroup var templateOptions: TemplateOptions
    @Flag(name: .long, help: "Print one JSON object at the end instead of streaming text.")
    var json = false

    func validate() throws {
        if question.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("the question is empty") }
        if rag && db == nil { throw ValidationError("--rag needs --db FILE (a corpus made with selfspec ingest)") }
        if !rag && db != nil { throw ValidationError("--db is used with --rag only") }
        if k < 1 || k > 50 { throw ValidationError("--k must be in 1...50") }
        if passageBudget < 32 { throw ValidationError("--passage-budget must be at least 32 tokens") }
    }

    struct Output: Encodable {
        var question: String
        var answer: String
        var finish_reason: String
        var tokens: Int
        var prompt_tokens: Int
        var sources: [GroundedQuestion.Source]
        var mode: String?
        var model: String
        var adapter: String?
    }

    func run() throws {
        Terminal.trapInterrupts()
        guard FileManager.default.fileExists(atPath: model) else {
            throw ValidationError("no model file at \(model); run scripts/setup or pass --model FILE.gguf")
        }
        let file = try GGUFFile(path: model)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let template = try templateOptions.resolve(file)
        let lm = try loadLanguageModel(file: file, options: try weights.modelOptions(), adapter: try adapter.map { try LoRAAdapter(path: $0) })
        var hits: [SearchHit] = []
        var usedMode: SearchMode?
        if rag, let db {
            let (retriever, mode) = try retrieval.open(db)
            (hits, usedMode) = (try retriever.search(question, k: k, mode: mode), mode)
        }
        let grounded = GroundedQuestion(question: question, hits: hits, passageBudget: passageBudget,
                                        countTokens: { tokenizer.encode($0).count })
        var request = sampling.request(try template.encode(grounded.messages, tokenizer: tokenizer))
        if let end = template.endOfTurn { request.stopStrings.append(end) }
        let result = try TextGenerator(model: lm, tokenizer: tokenizer).generate(request) { piece in
            if !json { FileHandle.standardOutput.write(Data(piece.utf8)) }
            return interruptRequested.load(ordering: .relaxed) ? .stop : .more
        }
        if json {
            try Terminal.printJSON(Output(question: question, answer: result.text, finish_reason: result.finishReason.rawValue,
                                          tokens: result.tokens.count, prompt_tokens: result.promptTokens,
                                          sources: grounded.sources, mode: usedMode?.rawValue, model: model, adapter: adapter))
        } else {
            print("")
            if rag { print("\n" + grounded.sourcesText) }
        }
        if result.finishReason == .cancelled { throw ExitCode(130) }
    }
}
