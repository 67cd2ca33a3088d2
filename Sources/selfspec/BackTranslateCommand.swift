import ArgumentParser
import Foundation
import Generator
import Ingest
import LLM

/// `selfspec specialize backtranslate`: PubMedQA-shaped yes/no examples whose question the model
/// writes and whose answer is the abstract's own conclusion (``YesNoBackTranslator``).
struct SpecializeBacktranslate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backtranslate",
        abstract: "Back-translate yes/no questions from structured abstracts: the model writes the question, the conclusion is the answer.",
        discussion: """
        For each structured abstract with a conclusion (a seeded shuffle), the model is shown the title and the conclusion \
        and writes a yes/no question whose answer, by the conclusion, is a label chosen beforehand (yes or no, kept \
        balanced). The example is PubMedQA's task on the abstract: {"instruction", "input": "Question: ...\\nAbstract: \
        <the abstract without its conclusion>", "output": "<label>. <conclusion>", "task": "backtranslated-yesno", \
        "document_key", "pmid", "sections", "label", "question", "verified_as"}. With --verify (the default) the model \
        answers its own question from the conclusion and questions answered against their label are dropped. Dropped \
        candidates go to OUT.dropped.jsonl with the reason; the counts to OUT.stats.json. Resumable: run the same \
        command again to continue (candidates in either file are skipped).
        """)

    @Option(help: "The corpus SQLite file.")
    var db: String
    @Option(help: "The output JSONL file.")
    var out: String
    @Option(help: "The model that writes the questions: a GGUF file or a name (smollm2, gemma3, qwen2.5).")
    var model = "smollm2"
    @Option(help: "Examples to keep.")
    var count = 200
    @Option(help: "Seed of the shuffle of the candidates.")
    var seed: UInt64 = 0
    @Option(help: "Read at most this many corpus documents (default: all).")
    var documents: Int?
    @Flag(inversion: .prefixedNo, help: "Drop questions the model itself answers against their label, from the conclusion.")
    var verify = true
    @Option(help: "Sequences generated at once.")
    var batch = 16
    @Flag(help: "Start over: replace OUT and OUT.dropped.jsonl instead of continuing them.")
    var restart = false
    @OptionGroup var weights: WeightFormatOptions
    @OptionGroup var templateOptions: TemplateOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be positive") }
        if let documents, documents < 1 { throw ValidationError("--documents must be positive") }
        if batch < 1 { throw ValidationError("--batch must be positive") }
    }

    struct Stats: Codable {
        var model: String
        var candidates: Int
        var asked: Int
        var kept: [String: Int]
        var dropped: [String: Int]
        var verify: Bool
        var seconds: Double
    }

    var droppedPath: String { out.replacingOccurrences(of: ".jsonl", with: "") + ".dropped.jsonl" }
    var statsPath: String { out.replacingOccurrences(of: ".jsonl", with: "") + ".stats.json" }

    func run() throws {
        Terminal.trapInterrupts()
        let started = Date()
        let modelPath = try ModelNames.model(model)
        let file = try GGUFFile(path: modelPath)
        let template = try templateOptions.resolve(file)
        let lm = try loadLanguageModel(file: file, options: try weights.modelOptions())
        let generator = TextGenerator(model: lm, tokenizer: try TokenizerFactory.make(metadata: file.metadata))
        let store = try CorpusStore(path: db, readOnly: true)
        let candidates = try YesNoBackTranslator.candidates(in: store, limit: documents, seed: seed)
        if candidates.isEmpty {
            throw ValidationError("\(db) has no structured abstract with a conclusion section (nothing to back-translate)")
        }
        if restart { for p in [out, droppedPath] { try? FileManager.default.removeItem(atPath: p) } }
        let done = try YesNoBackTranslator.read(out) + YesNoBackTranslator.read(droppedPath)
        let translator = YesNoBackTranslator(generator: generator, template: template, verify: verify, maxBatch: batch)
        let progress = ProgressLine(enabled: !output.quiet && !output.json)
        if !done.isEmpty && !output.quiet { Terminal.note("continuing after \(done.count) candidates in \(out) and \(droppedPath)") }
        var keptSoFar = done.filter { $0.dropped == nil }.count
        let all = try translator.run(candidates, count: count, done: done, write: { outcomes in
            try YesNoBackTranslator.append(outcomes.filter { $0.dropped == nil }, to: out)
            try YesNoBackTranslator.append(outcomes.filter { $0.dropped != nil }, to: droppedPath)
            keptSoFar += outcomes.filter { $0.dropped == nil }.count
            progress.update(label: "backtranslate", fraction: Double(keptSoFar) / Double(count), count: keptSoFar, unit: "examples")
        }, shouldStop: { interruptRequested.load(ordering: .relaxed) })
        progress.finish()
        var stats = Stats(model: modelPath, candidates: candidates.count, asked: all.count, kept: [:], dropped: [:], verify: verify,
                          seconds: Date().timeIntervalSince(started))
        for o in all {
            if let d = o.dropped { stats.dropped[d, default: 0] += 1 } else { stats.kept[o.label, default: 0] += 1 }
        }
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try pretty.encode(stats).write(to: URL(fileURLWithPath: statsPath))
        if output.json { try Terminal.printJSON(stats) } else {
            let kept = stats.kept.values.reduce(0, +)
            print("kept \(kept) of \(all.count) questions asked (\(stats.kept.sorted { $0.key > $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))) "
                  + "from \(candidates.count) structured abstracts into \(out) in \(String(format: "%.0f", stats.seconds)) s")
            if !stats.dropped.isEmpty {
                print("  dropped: " + stats.dropped.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                      + " (\(droppedPath))")
            }
        }
        let kept = stats.kept.values.reduce(0, +)
        if kept < count, !interruptRequested.load(ordering: .relaxed), all.count < candidates.count {
            Terminal.error("stopped after \(all.count) questions asked with \(kept) of \(count) kept: this model writes few usable questions "
                           + "(see \(droppedPath)); a larger model (qwen2.5) writes them")
            throw ExitCode(1)
        }
        if interruptRequested.load(ordering: .relaxed) {
            Terminal.error("interrupted; what was written stays — run the same command to continue")
            throw ExitCode(130)
        }
    }
}
