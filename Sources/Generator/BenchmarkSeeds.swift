import Evaluation
import Foundation

/// The labelled benchmark layouts `selfspec seeds sample` reads (`corpora/eval`, see its SOURCES.md):
/// those of the evaluation, read by its loader.
public typealias BenchmarkFormat = EvalTask

/// Builds seeds from a labelled benchmark's training split, as the method samples its seeds from
/// established domain benchmarks.
public enum BenchmarkSeedSampler {
    /// Reads every record of `path` in `format`, then draws `count` of them without replacement,
    /// reproducibly from `seed`. Fewer records than `count` gives them all.
    /// - Throws: `EvaluationError` for an unreadable file or one naming the record or line of a
    ///   malformed file; ``GeneratorError`` for a directory (but a NER folder) or an empty file.
    public static func sample(path: String, format: BenchmarkFormat, count: Int, seed: UInt64) throws -> [Seed] {
        let all = try read(path: path, format: format)
        var rng = SeededRandom(seed: seed)
        var order = Array(all.indices)
        order.shuffle(using: &rng)
        return order.prefix(max(0, count)).map { all[$0] }
    }

    /// Every record of the file as a seed, in file order (records keyed by id: in key order).
    /// A directory, for `ner`, means its `train.tsv`.
    public static func read(path: String, format: BenchmarkFormat) throws -> [Seed] {
        let file = EvalDataLoader.resolve(path, task: format, split: "train.tsv")
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: file, isDirectory: &isDir), isDir.boolValue {
            throw GeneratorError.wrongFormat(file: path, format: format.rawValue, record: "path", reason: "is a directory")
        }
        let data = try EvalDataLoader.contents(of: file)
        let seeds: [Seed]
        switch format {
        case .pubmedqa: seeds = try EvalDataLoader.pubmedQA(data, file: file).map(seed)
        case .ner: seeds = ner(try EvalDataLoader.iob(data, file: file))
        case .gad: seeds = try EvalDataLoader.gad(data, file: file).map(gadSeed)
        case .mcq: seeds = try EvalDataLoader.multipleChoice(data, file: file).map(seed)
        }
        if seeds.isEmpty { throw GeneratorError.emptyFile(file: file) }
        return seeds
    }

    // MARK: Records to seeds

    /// The instruction of PubMedQA-shaped examples (seeds and back-translated yes/no questions).
    public static let pubmedQAInstruction = "Read the abstract and answer the question with yes, no or maybe, then justify the answer briefly."

    static func seed(_ r: PubMedQARecord) -> Seed {
        Seed(task: "yes_no_maybe",
             instruction: pubmedQAInstruction,
             input: "Question: \(r.question)\nAbstract: \(r.contexts.joined(separator: " "))",
             output: EvalDataLoader.pubmedQALabels[r.decision] + "." + (r.longAnswer.map { " " + $0 } ?? ""))
    }

    static func seed(_ r: MultipleChoiceRecord) -> Seed {
        Seed(task: "multiple_choice", instruction: "Answer the multiple-choice question with the letter of the correct option.",
             input: "\(r.question)\n\(r.listedOptions)", output: "\(r.letters[r.answer]). \(r.options[r.answer])")
    }

    /// A GAD item (gold 0: positive) as a seed answering positive or negative.
    static func gadSeed(_ item: LabelItem) -> Seed {
        Seed(task: "re_gene_disease",
             instruction: "Does the sentence state an association between the masked gene (@GENE$) and the masked disease (@DISEASE$)? Answer positive or negative.",
             input: item.input, output: item.gold == 0 ? "positive" : "negative")
    }

    /// One seed per sentence, answering its entities' text (or "none"); the task and instruction
    /// name the entity types of the whole file.
    static func ner(_ sentences: [NERSentence]) -> [Seed] {
        let types = Set(sentences.flatMap { $0.entities.map(\.type) })
        let kind = types.sorted().joined(separator: "/").lowercased()
        let label = kind.isEmpty ? "entity" : kind
        return sentences.map { s in
            let entities = s.entities.map { detokenize(Array(s.tokens[$0.start..<$0.end])) }
            return Seed(task: "ner_\(label.replacingOccurrences(of: "/", with: "_"))",
                        instruction: "Extract every \(label) mention from the sentence as a comma-separated list; answer \"none\" if there is none.",
                        input: detokenize(s.tokens), output: entities.isEmpty ? "none" : entities.joined(separator: ", "))
        }
    }

    /// Joins word tokens with spaces, without a space before closing punctuation or around hyphens.
    static func detokenize(_ tokens: [String]) -> String {
        var out = ""
        for (i, t) in tokens.enumerated() {
            let noSpaceBefore = [".", ",", ";", ":", ")", "]", "%", "'", "?", "!", "-", "/"].contains(t)
            let previousJoins = i > 0 && ["(", "[", "-", "/", "'"].contains(tokens[i - 1])
            if i > 0 && !noSpaceBefore && !previousJoins { out += " " }
            out += t
        }
        return out
    }
}
