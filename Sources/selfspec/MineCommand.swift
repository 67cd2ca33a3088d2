import ArgumentParser
import Foundation
import Generator
import Ingest

/// `selfspec specialize mine`: instruction examples mined from the corpus by rules (no model).
struct SpecializeMine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mine",
        abstract: "Mine grounded instruction examples from the corpus by rules, with no model: conclusions, titles, connector inferences.",
        discussion: """
        Writes one JSON line per example: {"instruction", "input", "output", "task": "mined-KIND", "document_key", \
        "pmid", "sections"} (the format `selfspec tune` reads). Kinds: conclusion (a structured abstract without its \
        conclusion -> the conclusion), title (an abstract -> its title), inference (two sentences joined by \
        "Therefore," / "However," / "Moreover," ... -> yes / no / maybe). Examples that share a 13-gram with an --eval \
        file are dropped and counted.
        """)

    @Option(help: "The corpus SQLite file.")
    var db: String
    @Option(help: "The output JSONL file (replaced).")
    var out: String
    @Option(help: ArgumentHelp("Comma-separated kinds to mine (entities, relation and cloze need --lexicon; default: every kind the lexicons allow).",
                               valueName: "conclusion,title,inference,entities,relation,cloze"))
    var kinds: String?
    @Option(help: ArgumentHelp("A labelled NER file (token TAB IOB tag, a train split) whose entity names the entities, relation and cloze kinds look for (repeatable).",
                               valueName: "file"))
    var lexicon: [String] = []
    @Option(help: "Stop after this many documents (default: all).")
    var limit: Int?
    @Option(help: "At most this many inference examples per document.")
    var inferencePerDocument = 2
    @Option(help: "An evaluation file whose 13-grams must not appear in the data (repeatable).")
    var eval: [String] = []
    @OptionGroup var output: OutputOptions

    func parsedKinds() throws -> Set<CorpusTaskMiner.Kind> {
        guard let kinds else {
            return Set(CorpusTaskMiner.Kind.allCases.filter { !lexicon.isEmpty || !CorpusTaskMiner.lexiconKinds.contains($0) })
        }
        var set = Set<CorpusTaskMiner.Kind>()
        for name in kinds.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let k = CorpusTaskMiner.Kind(rawValue: name) else {
                throw ValidationError("unknown kind '\(name)': expected \(CorpusTaskMiner.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            set.insert(k)
        }
        if set.isEmpty { throw ValidationError("--kinds names no kind") }
        if lexicon.isEmpty, let k = set.first(where: CorpusTaskMiner.lexiconKinds.contains) {
            throw ValidationError("kind '\(k.rawValue)' needs --lexicon (a labelled NER file to take entity names from)")
        }
        return set
    }

    func validate() throws {
        _ = try parsedKinds()
        if let limit, limit < 1 { throw ValidationError("--limit must be positive") }
        if inferencePerDocument < 0 { throw ValidationError("--inference-per-document must be 0 or more") }
    }

    /// What the command prints with --json.
    struct Summary: Encodable {
        var documents = 0
        var examples: [String: Int] = [:]
        var contaminated = 0
        var out = ""
        var seconds = 0.0
    }

    struct Line: Encodable {
        var instruction: String, input: String, output: String, task: String
        var document_key: String, pmid: Int?, sections: [String]
    }

    func run() throws {
        let started = Date()
        let store = try CorpusStore(path: db, readOnly: true)
        var contamination = ContaminationIndex()
        for f in eval { try contamination.addFile(f) }
        let lexicons = EntityLexicon.merging(try lexicon.flatMap { try EntityLexicon.load(nerFile: $0) })
        let miner = CorpusTaskMiner(kinds: try parsedKinds(), maxInferencePerDocument: inferencePerDocument, lexicons: lexicons)
        guard FileManager.default.createFile(atPath: out, contents: nil), let handle = FileHandle(forWritingAtPath: out) else {
            throw ValidationError("cannot write \(out)")
        }
        defer { try? handle.close() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let progress = ProgressLine(enabled: !output.quiet && !output.json)
        var summary = Summary(out: out)
        var chunk = Data()
        summary.documents = try miner.mine(store, limit: limit, each: { t in
            if contamination.count > 0, contamination.overlaps(t.instruction + "\n" + t.input + "\n" + t.output) {
                summary.contaminated += 1
                return
            }
            summary.examples[t.kind.rawValue, default: 0] += 1
            chunk += try encoder.encode(Line(instruction: t.instruction, input: t.input, output: t.output,
                                             task: "mined-" + t.kind.rawValue, document_key: t.documentKey,
                                             pmid: t.pmid, sections: t.sections))
            chunk.append(0x0A)
        }, afterPage: { documents, total in
            try handle.write(contentsOf: chunk)
            chunk.removeAll(keepingCapacity: true)
            progress.update(label: "mining", fraction: total > 0 ? Double(documents) / Double(total) : nil,
                            count: documents, unit: "documents")
            return true
        })
        progress.finish()
        summary.seconds = Date().timeIntervalSince(started)
        if output.json { try Terminal.printJSON(summary); return }
        let n = summary.examples.values.reduce(0, +)
        print("mined \(n) examples from \(summary.documents) documents into \(out) in \(String(format: "%.1f", summary.seconds)) s")
        for kind in CorpusTaskMiner.Kind.allCases where summary.examples[kind.rawValue] != nil {
            print("  \(kind.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \(summary.examples[kind.rawValue]!)")
        }
        if !eval.isEmpty { print("  dropped as contaminated (13-gram shared with --eval): \(summary.contaminated)") }
    }
}
