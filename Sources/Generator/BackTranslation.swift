import Evaluation
import Foundation
import Ingest
import LLM

/// Yes/no questions back-translated from abstracts' conclusions: the model writes the question,
/// the corpus supplies the answer.
///
/// Instruction back-translation (Humpback: Li et al. 2024, "Self-Alignment with Instruction
/// Backtranslation") turns real text into the response and has the model write the instruction it
/// answers. Here in the shape of PubMedQA (Jin et al. 2019): for a structured abstract with a
/// conclusion, the model is shown the title and the conclusion and asked for a yes/no question
/// about the main finding whose answer, by that conclusion, is a label chosen beforehand (`yes` or
/// `no`, balanced). The example is then PubMedQA's task on this abstract: the question and the
/// abstract without its conclusion in, the label and the conclusion out. The answer is grounded
/// by construction and the labels are balanced by construction, whatever the writer's own
/// leaning (Qwen2.5 answers "yes" to nearly every question, BENCHMARKS.md).
///
/// Optionally (`verify`) the model then answers its own question from the conclusion (the first
/// token, yes or no: ``FirstTokenChoice``), and a question it answers against the label is
/// dropped: a self-consistency check in the spirit of Humpback's self-curation.
public struct YesNoBackTranslator {
    /// A structured abstract with a conclusion.
    public struct Candidate: Sendable, Equatable {
        public var documentKey: String
        public var pmid: Int?
        public var title: String
        /// The sections before the conclusion: names and texts.
        public var context: [(name: String, text: String)]
        public var conclusion: String
        /// The conclusion section's name.
        public var conclusionName: String

        public static func == (a: Candidate, b: Candidate) -> Bool {
            a.documentKey == b.documentKey && a.pmid == b.pmid && a.title == b.title && a.conclusion == b.conclusion
                && a.conclusionName == b.conclusionName && a.context.map(\.name) == b.context.map(\.name)
                && a.context.map(\.text) == b.context.map(\.text)
        }
    }

    /// One candidate's outcome: a kept example (`dropped` nil) or why it was dropped. A line of the
    /// output (kept) or of the dropped file.
    public struct Outcome: Codable, Sendable, Equatable {
        public var instruction: String
        public var input: String
        public var output: String
        public var task: String
        public var documentKey: String
        public var pmid: Int?
        /// The sections the example quotes (the context's and the conclusion's names).
        public var sections: [String]
        /// The label asked for: yes or no.
        public var label: String
        /// The question as the model wrote it (first line, cleaned).
        public var question: String
        /// With `verify`: the model's own answer to its question from the conclusion.
        public var verifiedAs: String?
        /// Why the candidate was dropped (nil: kept): see ``YesNoBackTranslator/problem(question:title:)``,
        /// `duplicate`, `disagrees` (verification), `failed` (generation error).
        public var dropped: String?

        enum CodingKeys: String, CodingKey {
            case instruction, input, output, task, documentKey = "document_key", pmid, sections, label, question
            case verifiedAs = "verified_as", dropped
        }
    }

    public static let labels = ["yes", "no"]
    public static let task = "backtranslated-yesno"

    public let generator: TextGenerator
    public let template: ChatTemplate
    /// Check each question by having the model answer it from the conclusion.
    public var verify: Bool
    /// Most sequences generated at once.
    public var maxBatch: Int

    public init(generator: TextGenerator, template: ChatTemplate, verify: Bool = true, maxBatch: Int = 16) {
        self.generator = generator
        self.template = template
        self.verify = verify
        self.maxBatch = max(1, maxBatch)
    }

    // MARK: Candidates

    /// The candidate of `document`: a title, a conclusion section (``CorpusTaskMiner/isConclusion(_:)``,
    /// the last one) and at least one section before it; nil otherwise.
    public static func candidate(_ document: Document) -> Candidate? {
        let (title, sections) = CorpusTaskMiner.titleAndSections(document)
        guard !title.isEmpty, let c = sections.lastIndex(where: { CorpusTaskMiner.isConclusion($0.name) }), c > 0 else { return nil }
        return Candidate(documentKey: document.key, pmid: document.pmid, title: title, context: Array(sections[..<c]),
                         conclusion: sections[c].text, conclusionName: sections[c].name)
    }

    /// Every candidate of `store` (documents in id order; at most `limit` documents read), then
    /// shuffled with a generator seeded by `seed`.
    public static func candidates(in store: CorpusStore, limit: Int? = nil, seed: UInt64) throws -> [Candidate] {
        var out: [Candidate] = []
        try CorpusTaskMiner.forEachDocument(store, limit: limit, each: { if let c = candidate($0) { out.append(c) } })
        var rng = SeededRandom(seed: seed)
        out.shuffle(using: &rng)
        return out
    }

    // MARK: Prompts

    /// The request for a question whose answer, by the conclusion, is `label`.
    /// For `no`, the model is asked for the opposite of the finding (a question that restates the
    /// finding is answered yes, and that is what it writes when asked for a "no" question plainly).
    public static func questionPrompt(_ c: Candidate, label: String) -> String {
        let how = label == "no"
            ? "The conclusion must answer it with \"no\": ask whether the opposite of the main finding holds (for example, whether something increases what the study found it decreases, makes no difference where the study found a difference, or has an effect the study found it does not have)."
            : "The conclusion must answer it with \"yes\": ask whether the main finding holds."
        return """
        Here are the title and the conclusion of a biomedical study.

        Title: \(c.title)
        Conclusion: \(c.conclusion)

        Write one yes/no question about the medical or biological question the study answers. \(how) Ask about the \
        finding itself, not about "the study" or "the conclusion"; use no negation ("not", "no", "without"); do not \
        give the answer. Write only the question, in one sentence ending with a question mark.
        """
    }

    /// The request to answer the question from the conclusion (verification).
    public static func verifyPrompt(_ c: Candidate, question: String) -> String {
        "Title: \(c.title)\nConclusion: \(c.conclusion)\n\nAccording to this conclusion, answer the question with yes or no.\n\nQuestion: \(question)"
    }

    /// The question in a model's reply: its first line with a question mark (else its first
    /// non-empty line), without a "Question:" label, Markdown emphasis or quotes.
    public static func question(from reply: String) -> String {
        let lines = reply.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var line = lines.first { $0.contains("?") } ?? lines.first ?? ""
        line = line.replacingOccurrences(of: #"^(?:\*\*)?(?:question|q)\s*[:.]\s*(?:\*\*)?\s*"#, with: "",
                                         options: [.regularExpression, .caseInsensitive])
        return line.trimmingCharacters(in: CharacterSet(charactersIn: "*_\"'`“”‘’ "))
    }

    /// Why `question` is unusable, or nil: `not_yes_no` (not a yes/no question,
    /// `DecisionParser.isYesNoQuestion`), `length` (under 5 or over 40 words), `names_answer` (it says
    /// "yes or no" or puts the answer in the question), `negated` (a negation: "not", "no", "n't",
    /// "without"; asked for a "no", the model otherwise writes "Does X not …?", a cue a student
    /// learns instead of the finding), `copies_title` (the title, word for word, when the title is
    /// not itself a question).
    public static func problem(question q: String, title: String) -> String? {
        guard DecisionParser.isYesNoQuestion(q) else { return "not_yes_no" }
        let words = q.split(whereSeparator: { $0.isWhitespace }).count
        guard (5...40).contains(words) else { return "length" }
        let lower = q.lowercased()
        if lower.contains("yes or no") || lower.contains("yes/no") || lower.contains("(yes") || lower.contains("(no") { return "names_answer" }
        let tokens = lower.replacingOccurrences(of: "’", with: "'").split(whereSeparator: { !$0.isLetter && $0 != "'" })
        if tokens.contains(where: { ["not", "no", "without", "never", "neither", "nor", "cannot"].contains($0) || $0.hasSuffix("n't") }) {
            return "negated"
        }
        func normalized(_ s: String) -> String { s.lowercased().filter { $0.isLetter || $0.isNumber } }
        if !title.hasSuffix("?"), normalized(q) == normalized(title) { return "copies_title" }
        return nil
    }

    /// The example of a kept question.
    static func example(_ c: Candidate, label: String, question: String, verifiedAs: String?) -> Outcome {
        Outcome(instruction: BenchmarkSeedSampler.pubmedQAInstruction,
                input: "Question: \(question)\nAbstract: \(c.context.map(\.text).joined(separator: " "))",
                output: "\(label). \(c.conclusion)", task: task, documentKey: c.documentKey, pmid: c.pmid,
                sections: c.context.map(\.name) + [c.conclusionName], label: label, question: question,
                verifiedAs: verifiedAs, dropped: nil)
    }

    // MARK: Running

    /// Back-translates `candidates` in order, `maxBatch` at a time, until `count` examples are kept
    /// (or the candidates run out). Each candidate's label is the one with fewer examples kept or
    /// under way, so the labels stay balanced whatever is dropped.
    /// - Parameters:
    ///   - done: outcomes of an earlier, interrupted run (kept and dropped): their candidates are
    ///     skipped and their kept examples counted.
    ///   - write: called after each batch with its outcomes (to save them before the next batch).
    ///   - shouldStop: polled between batches; true ends the run (what is written stays).
    /// - Returns: every outcome, `done` first.
    /// - Throws: `ChatTemplateError`, what `write` throws.
    ///   - maxAsked: most candidates asked in all, `done` included (default `10 × count + 100`): a
    ///     model that writes almost no usable question stops there instead of going through the corpus.
    public func run(_ candidates: [Candidate], count: Int, done: [Outcome] = [], maxAsked: Int? = nil,
                    write: ([Outcome]) throws -> Void = { _ in }, shouldStop: () -> Bool = { false }) throws -> [Outcome] {
        let maxAsked = maxAsked ?? 10 * count + 100
        var out = done
        let finished = Set(done.map(\.documentKey))
        var kept = Dictionary(uniqueKeysWithValues: Self.labels.map { ($0, 0) })
        var questions = Set<String>()
        for o in done where o.dropped == nil {
            kept[o.label, default: 0] += 1
            questions.insert(o.question.lowercased())
        }
        var pending = candidates.filter { !finished.contains($0.documentKey) }[...]
        let verifyChoice = verify ? try FirstTokenChoice.words(Self.labels, tokenizer: generator.tokenizer) : nil
        while kept.values.reduce(0, +) < count, !pending.isEmpty, out.count < maxAsked, !shouldStop() {
            let want = count - kept.values.reduce(0, +)
            let batch = Array(pending.prefix(min(maxBatch, want + want / 2 + 1, maxAsked - out.count)))
            pending = pending.dropFirst(batch.count)
            var planned = kept
            let labels = batch.map { _ -> String in
                let label = Self.labels.min { planned[$0, default: 0] < planned[$1, default: 0] }!
                planned[label, default: 0] += 1
                return label
            }
            let replies = try generate(zip(batch, labels).map { Self.questionPrompt($0, label: $1) }, maxTokens: 64, choice: nil)
            var outcomes: [Outcome] = []
            var toVerify: [Int] = []
            for (i, c) in batch.enumerated() {
                let q = Self.question(from: (try? replies[i].get().text) ?? "")
                var o = Self.example(c, label: labels[i], question: q, verifiedAs: nil)
                if case .failure = replies[i] {
                    o.dropped = "failed"
                } else if let problem = Self.problem(question: q, title: c.title) {
                    o.dropped = problem
                } else if questions.contains(q.lowercased()) {
                    o.dropped = "duplicate"
                } else {
                    questions.insert(q.lowercased())
                    toVerify.append(i)
                }
                outcomes.append(o)
            }
            if let verifyChoice, !toVerify.isEmpty {
                let answers = try generate(toVerify.map { Self.verifyPrompt(batch[$0], question: outcomes[$0].question) },
                                           maxTokens: 1, choice: verifyChoice)
                for (n, i) in toVerify.enumerated() {
                    guard let chosen = try? answers[n].get().choice?.chosen else { outcomes[i].dropped = "failed"; continue }
                    outcomes[i].verifiedAs = Self.labels[chosen]
                    if Self.labels[chosen] != labels[i] { outcomes[i].dropped = "disagrees" }
                }
            }
            for o in outcomes where o.dropped == nil { kept[o.label, default: 0] += 1 }
            try write(outcomes)
            out += outcomes
        }
        return out
    }

    // MARK: Files

    /// The outcomes saved in a JSONL file (none when it does not exist); a torn last line (a kill
    /// mid-write) is left out.
    /// - Throws: `GeneratorError.badJSON` for any other line that is not an outcome.
    public static func read(_ path: String) throws -> [Outcome] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let lines = data.split(separator: 0x0A)
        let decoder = JSONDecoder()
        var out: [Outcome] = []
        for (n, line) in lines.enumerated() {
            do {
                out.append(try decoder.decode(Outcome.self, from: Data(line)))
            } catch {
                if n == lines.count - 1, data.last != 0x0A { break }
                throw GeneratorError.badJSON(file: path, line: n + 1, reason: "not a back-translated example (\(error.localizedDescription))")
            }
        }
        return out
    }

    /// Appends `outcomes` to a JSONL file, one line each (created when missing).
    /// - Throws: `GeneratorError.unreadable` when it cannot be written.
    public static func append(_ outcomes: [Outcome], to path: String) throws {
        guard !outcomes.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for o in outcomes { data += try encoder.encode(o) + Data([0x0A]) }
        if !FileManager.default.fileExists(atPath: path), !FileManager.default.createFile(atPath: path, contents: nil) {
            throw GeneratorError.unreadable(file: path, reason: "cannot create it")
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw GeneratorError.unreadable(file: path, reason: "cannot open it for writing") }
        defer { try? h.close() }
        do {
            try h.seekToEnd()
            try h.write(contentsOf: data)
        } catch { throw GeneratorError.unreadable(file: path, reason: error.localizedDescription) }
    }

    /// Greedy replies to `prompts` (one user turn each), batched.
    private func generate(_ prompts: [String], maxTokens: Int, choice: FirstTokenChoice?) throws -> [Result<GenerationResult, Error>] {
        let requests = try prompts.map { p -> GenerationRequest in
            var r = GenerationRequest(prompt: try template.encode([.user(p)], tokenizer: generator.tokenizer), maxTokens: maxTokens,
                                      firstTokenChoice: choice)
            if let end = template.endOfTurn { r.stopStrings.append(end) }
            r.repetitionStop = .default
            return r
        }
        var results = [Result<GenerationResult, Error>](repeating: .failure(CancellationError()), count: requests.count)
        generator.generateBatch(requests, maxBatch: maxBatch) { i, r in results[i] = r }
        return results
    }
}
