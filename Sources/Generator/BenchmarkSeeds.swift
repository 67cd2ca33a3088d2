import Foundation

/// The labelled benchmark layouts `selfspec seeds sample` reads (`corpora/eval`, see its SOURCES.md).
public enum BenchmarkFormat: String, Sendable, CaseIterable {
    /// PubMedQA: one JSON object keyed by PMID, each `{QUESTION, CONTEXTS[], final_decision, LONG_ANSWER}`.
    case pubmedqa
    /// IOB NER: `token<TAB>tag` lines, a blank line between sentences; a directory means its `train.tsv`.
    case ner
    /// GAD-style JSONL: `{text, relation:[{relation_type: positive|negative}]}`, entities masked as @GENE$ / @DISEASE$.
    case gad
    /// Multiple choice: `{question, options{A..}, answer}` records keyed by id, optionally wrapped in a
    /// `{"<dataset>": {…}}` object (MIRAGE layout).
    case mcq
}

/// Builds seeds from a labelled benchmark's training split, as the method samples its seeds from
/// established domain benchmarks.
public enum BenchmarkSeedSampler {
    /// Reads every record of `path` in `format`, then draws `count` of them without replacement,
    /// reproducibly from `seed`. Fewer records than `count` gives them all.
    /// - Throws: ``GeneratorError/wrongFormat(file:format:record:reason:)`` naming the record or line.
    public static func sample(path: String, format: BenchmarkFormat, count: Int, seed: UInt64) throws -> [Seed] {
        let all = try read(path: path, format: format)
        var rng = SeededRandom(seed: seed)
        var order = Array(all.indices)
        order.shuffle(using: &rng)
        return order.prefix(max(0, count)).map { all[$0] }
    }

    /// Every record of the file as a seed, in file order.
    public static func read(path: String, format: BenchmarkFormat) throws -> [Seed] {
        var file = path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            guard format == .ner else { throw GeneratorError.wrongFormat(file: path, format: format.rawValue, record: "path", reason: "is a directory") }
            file = (path as NSString).appendingPathComponent("train.tsv")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
            throw GeneratorError.unreadable(file: file, reason: (error as NSError).localizedDescription)
        }
        let seeds: [Seed]
        switch format {
        case .pubmedqa: seeds = try pubmedQA(data, file: file)
        case .ner: seeds = try ner(data, file: file)
        case .gad: seeds = try gad(data, file: file)
        case .mcq: seeds = try mcq(data, file: file)
        }
        if seeds.isEmpty { throw GeneratorError.emptyFile(file: file) }
        return seeds
    }

    // MARK: PubMedQA

    static func pubmedQA(_ data: Data, file: String) throws -> [Seed] {
        func bad(_ rec: String, _ why: String) -> GeneratorError { .wrongFormat(file: file, format: "pubmedqa", record: rec, reason: why) }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw bad("top level", "expected one JSON object keyed by PMID")
        }
        return try root.keys.sorted().map { pmid in
            guard let item = root[pmid] as? [String: Any] else { throw bad("record \(pmid)", "not an object") }
            guard let q = item["QUESTION"] as? String else { throw bad("record \(pmid)", "missing QUESTION") }
            guard let contexts = item["CONTEXTS"] as? [String] else { throw bad("record \(pmid)", "missing CONTEXTS list") }
            guard let decision = item["final_decision"] as? String, ["yes", "no", "maybe"].contains(decision) else {
                throw bad("record \(pmid)", "final_decision must be yes, no or maybe")
            }
            let long = (item["LONG_ANSWER"] as? String).map { " " + $0 } ?? ""
            return Seed(task: "yes_no_maybe",
                        instruction: "Read the abstract and answer the question with yes, no or maybe, then justify the answer briefly.",
                        input: "Question: \(q)\nAbstract: \(contexts.joined(separator: " "))", output: decision + "." + long)
        }
    }

    // MARK: IOB NER

    static func ner(_ data: Data, file: String) throws -> [Seed] {
        func bad(_ line: Int, _ why: String) -> GeneratorError { .wrongFormat(file: file, format: "ner (IOB token<TAB>tag)", record: "line \(line)", reason: why) }
        var seeds: [Seed] = []
        var tokens: [String] = [], entities: [String] = [], current: [String] = []
        var types = Set<String>()
        func closeEntity() { if !current.isEmpty { entities.append(detokenize(current)); current = [] } }
        func closeSentence() {
            closeEntity()
            if !tokens.isEmpty {
                seeds.append(Seed(task: "ner", instruction: "", input: detokenize(tokens), output: entities.isEmpty ? "none" : entities.joined(separator: ", ")))
            }
            tokens = []; entities = []
        }
        var lineNumber = 0
        for raw in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { closeSentence(); continue }
            let cols = raw.split(separator: "\t")
            guard cols.count == 2 else { throw bad(lineNumber, "expected token<TAB>tag, found \(cols.count) column(s)") }
            let tag = cols[1].trimmingCharacters(in: .whitespaces)
            let token = String(cols[0])
            if tag == "O" { closeEntity() }
            else if tag.hasPrefix("B-") { closeEntity(); current = [token]; types.insert(String(tag.dropFirst(2))) }
            else if tag.hasPrefix("I-") { current.append(token); types.insert(String(tag.dropFirst(2))) }
            else { throw bad(lineNumber, "tag \"\(tag)\" is not O, B-… or I-…") }
            tokens.append(token)
        }
        closeSentence()
        let kind = types.sorted().joined(separator: "/").lowercased()
        let label = kind.isEmpty ? "entity" : kind
        return seeds.map {
            var s = $0
            s.task = "ner_\(label.replacingOccurrences(of: "/", with: "_"))"
            s.instruction = "Extract every \(label) mention from the sentence as a comma-separated list; answer \"none\" if there is none."
            return s
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

    // MARK: GAD

    static func gad(_ data: Data, file: String) throws -> [Seed] {
        func bad(_ line: Int, _ why: String) -> GeneratorError { .wrongFormat(file: file, format: "gad (JSONL)", record: "line \(line)", reason: why) }
        var seeds: [Seed] = []
        var lineNumber = 0
        for raw in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if raw.allSatisfy({ $0 == 32 || $0 == 13 }) { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any] else { throw bad(lineNumber, "not a JSON object") }
            guard let text = obj["text"] as? String else { throw bad(lineNumber, "missing \"text\"") }
            guard let rel = (obj["relation"] as? [[String: Any]])?.first, let type = rel["relation_type"] as? String,
                  type == "positive" || type == "negative" else {
                throw bad(lineNumber, "missing relation[0].relation_type (positive|negative)")
            }
            seeds.append(Seed(task: "re_gene_disease",
                              instruction: "Does the sentence state an association between the masked gene (@GENE$) and the masked disease (@DISEASE$)? Answer positive or negative.",
                              input: "Sentence: \(text)", output: type))
        }
        return seeds
    }

    // MARK: Multiple choice

    static func mcq(_ data: Data, file: String) throws -> [Seed] {
        func bad(_ rec: String, _ why: String) -> GeneratorError { .wrongFormat(file: file, format: "mcq", record: rec, reason: why) }
        guard var root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw bad("top level", "expected a JSON object of questions keyed by id")
        }
        // MIRAGE wraps the questions in {"medmcqa": {...}}.
        if root.count == 1, let only = root.values.first as? [String: Any], only.values.first.map({ ($0 as? [String: Any])?["question"] == nil }) == false {
            root = only
        }
        return try root.keys.sorted().map { id in
            guard let item = root[id] as? [String: Any] else { throw bad("record \(id)", "not an object") }
            guard let q = item["question"] as? String else { throw bad("record \(id)", "missing question") }
            guard let options = item["options"] as? [String: String], !options.isEmpty else { throw bad("record \(id)", "missing options object") }
            guard let answer = item["answer"] as? String, let text = options[answer] else { throw bad("record \(id)", "answer is not one of the option letters") }
            let listed = options.keys.sorted().map { "\($0). \(options[$0]!)" }.joined(separator: "\n")
            return Seed(task: "multiple_choice", instruction: "Answer the multiple-choice question with the letter of the correct option.",
                        input: "\(q)\n\(listed)", output: "\(answer). \(text)")
        }
    }
}
