import Foundation
import Ingest

/// Instruction examples mined from corpus documents by rules, with no model call: the answer is
/// text of the document itself, so every example is grounded by construction.
///
/// Three kinds from the text alone, after PubMedQA's construction (Jin et al. 2019: the question is the title, the
/// context is the abstract without its conclusion, the long answer is the conclusion) and
/// AdaptLLM's reading-comprehension mining (Cheng et al., ICLR 2024: tasks from the connectors
/// that join two sentences, and the title as a summary):
/// - `conclusion`: a structured abstract's sections other than its conclusion (with the title)
///   → the conclusion, word for word.
/// - `title`: an abstract → its title.
/// - `inference`: two consecutive sentences of at least 50 characters each, the second opening
///   with a connector → whether it follows from the first: "Therefore/Thus/Hence/Accordingly, …"
///   `yes`, "However/In contrast/Nevertheless, …" `no`, "Moreover/Furthermore/In addition/Also, …"
///   `maybe` (AdaptLLM's entail / contradict / neutral, in PubMedQA's label words). The connector
///   is removed from the sentence shown.
///
/// Three entity-shaped kinds with names from ``EntityLexicon`` (read from a labelled NER train
/// split: distant supervision), each asked with the evaluation's own instruction and input shape
/// (`LexiconTasks.swift`):
/// - `entities`: a sentence → the lexicon names it contains, one per line, or `none`.
/// - `relation`: a sentence with a gene-like symbol and a disease name, masked as `@GENE$` and
///   `@DISEASE$` as GAD does → `no` when it has a negation cue ("not associated", "no
///   association"), `yes` when it has an association cue ("associated", "risk", "linked").
/// - `cloze`: a sentence with one name blanked → the letter of that name among four options (the
///   other three drawn from the lexicon; the right letter drawn uniformly).
///
/// ```swift
/// let miner = CorpusTaskMiner()
/// for task in miner.tasks(in: document) { print(task.kind, task.output) }
/// ```
public struct CorpusTaskMiner: Sendable {
    /// What a task asks.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case conclusion, title, inference
        /// Entity-shaped, from ``EntityLexicon`` names (see `LexiconTasks.swift`): the names of a
        /// type in a sentence (NER), a gene–disease relation by cue words (GAD), a cloze question
        /// with four lettered options (multiple choice).
        case entities, relation, cloze
    }

    /// One mined example with its provenance.
    public struct Task: Sendable, Equatable, Codable {
        public var kind: Kind
        public var instruction: String
        public var input: String
        public var output: String
        /// The document's corpus key (the PMID for PubMed records) and PMID.
        public var documentKey: String
        public var pmid: Int?
        /// The sections whose text the input or output quotes.
        public var sections: [String]
    }

    /// The kinds to mine.
    public var kinds: Set<Kind>
    /// At most this many `inference` tasks per document (AdaptLLM keeps at most 2 per sub-type).
    public var maxInferencePerDocument: Int
    /// Shortest sentence, in characters, for `inference` (AdaptLLM: 50).
    public var minSentenceLength: Int
    /// The names the entity-shaped kinds find in sentences (`relation` uses the `Disease` one).
    public var lexicons: [EntityLexicon]
    /// At most this many `entities` (with names, per lexicon) and `relation` tasks per document;
    /// `entities` adds at most one "none" sentence per lexicon and `cloze` one question per lexicon.
    public var maxLexiconTasksPerDocument: Int

    public init(kinds: Set<Kind> = [.conclusion, .title, .inference], maxInferencePerDocument: Int = 2, minSentenceLength: Int = 50,
                lexicons: [EntityLexicon] = [], maxLexiconTasksPerDocument: Int = 2) {
        self.kinds = kinds
        self.maxInferencePerDocument = maxInferencePerDocument
        self.minSentenceLength = minSentenceLength
        self.lexicons = lexicons
        self.maxLexiconTasksPerDocument = maxLexiconTasksPerDocument
    }

    /// The kinds that need at least one lexicon.
    public static let lexiconKinds: Set<Kind> = [.entities, .relation, .cloze]

    static let conclusionInstruction = "Read the title and the abstract of a biomedical study without its conclusion. What do the authors conclude?"
    static let titleInstruction = "Write a title for this biomedical abstract."
    static let inferenceInstruction = "Does the second statement follow from the first? Answer yes, no or maybe."

    /// Connector openings and the label they give; longest first so "In contrast," wins over "In".
    static let connectors: [(opening: String, label: String)] = [
        ("Accordingly, ", "yes"), ("Therefore, ", "yes"), ("Thus, ", "yes"), ("Hence, ", "yes"), ("Consequently, ", "yes"),
        ("Nevertheless, ", "no"), ("In contrast, ", "no"), ("However, ", "no"), ("Conversely, ", "no"),
        ("In addition, ", "maybe"), ("Furthermore, ", "maybe"), ("Moreover, ", "maybe"), ("Additionally, ", "maybe"),
    ]

    /// The tasks of one document, in the order conclusion, title, inference; none for a document
    /// without a title or abstract text.
    public func tasks(in document: Document) -> [Task] {
        let (title, sections) = Self.titleAndSections(document)
        guard !title.isEmpty, !sections.isEmpty else { return [] }
        var out: [Task] = []
        func add(_ kind: Kind, _ instruction: String, _ input: String, _ output: String, _ used: [String]) {
            out.append(Task(kind: kind, instruction: instruction, input: input, output: output,
                            documentKey: document.key, pmid: document.pmid, sections: used))
        }
        if kinds.contains(.conclusion), sections.count >= 2,
           let c = sections.lastIndex(where: { Self.isConclusion($0.name) }), c > 0 {
            let context = sections[..<c].map { $0.name.isEmpty ? $0.text : "\($0.name.uppercased()): \($0.text)" }
            add(.conclusion, Self.conclusionInstruction, "Title: \(title)\n\n" + context.joined(separator: "\n"),
                sections[c].text, sections[...c].map(\.name))
        }
        if kinds.contains(.title) {
            add(.title, Self.titleInstruction, sections.map(\.text).joined(separator: "\n"), title, sections.map(\.name))
        }
        let splitter = SentenceSplitter()
        let split = sections.map { section -> (name: String, sentences: [String]) in
            let scalars = Array(section.text.unicodeScalars)
            return (section.name, splitter.split(scalars: scalars).map { String(String.UnicodeScalarView(scalars[$0])) })
        }
        if kinds.contains(.inference) {
            var found = 0
            for (name, sentences) in split where found < maxInferencePerDocument {
                for (first, second) in zip(sentences, sentences.dropFirst()) where found < maxInferencePerDocument {
                    guard first.count >= minSentenceLength, second.count >= minSentenceLength,
                          let (rest, label) = Self.strippingConnector(second) else { continue }
                    add(.inference, Self.inferenceInstruction, "First: \(first)\nSecond: \(rest)", label, [name])
                    found += 1
                }
            }
        }
        if !kinds.isDisjoint(with: Self.lexiconKinds), !lexicons.isEmpty {
            let sentences = split.flatMap { s in s.sentences.map { (section: s.name, text: $0) } }
            lexiconTasks(sentences, documentKey: document.key) { kind, instruction, input, output, section in
                add(kind, instruction, input, output, [section])
            }
        }
        return out
    }

    /// The document's title and its non-empty sections' names and texts (trimmed), in order.
    public static func titleAndSections(_ document: Document) -> (title: String, sections: [(name: String, text: String)]) {
        let scalars = Array(document.text.unicodeScalars)
        let sections = document.sections.compactMap { s -> (name: String, text: String)? in
            guard s.start >= 0, s.start <= s.end, s.end <= scalars.count else { return nil }
            let text = String(String.UnicodeScalarView(scalars[s.start..<s.end])).trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? nil : (s.name, text)
        }
        return (document.title.trimmingCharacters(in: .whitespacesAndNewlines), sections)
    }

    /// Whether a section name is a structured abstract's conclusion ("CONCLUSIONS", "Conclusion
    /// and relevance", "INTERPRETATION").
    public static func isConclusion(_ name: String) -> Bool {
        let n = name.uppercased()
        return n.hasPrefix("CONCLUSION") || n.hasPrefix("INTERPRETATION")
    }

    /// The sentence without its opening connector (its next letter upper-cased) and the label the
    /// connector gives; nil when it opens with none.
    static func strippingConnector(_ sentence: String) -> (String, String)? {
        for (opening, label) in connectors where sentence.hasPrefix(opening) {
            let rest = sentence.dropFirst(opening.count)
            guard let first = rest.first else { return nil }
            // "the …" -> "The …"; "mRNA …" stays as it is.
            let keep = rest.dropFirst().first.map { $0.isUppercase } ?? false
            return (keep ? String(rest) : first.uppercased() + rest.dropFirst(), label)
        }
        return nil
    }
}

// MARK: - A whole corpus

extension CorpusTaskMiner {
    /// Mines the documents of `store` in id order, 500 a page.
    /// - Parameters:
    ///   - limit: read at most this many documents (nil: all).
    ///   - each: called with every task mined.
    ///   - afterPage: called after each page with the documents read so far and the total to
    ///     read; returning false stops the run there.
    /// - Returns: the documents read.
    /// - Throws: the store's errors, and what `each` or `afterPage` throw.
    @discardableResult
    public func mine(_ store: CorpusStore, limit: Int? = nil, each: (Task) throws -> Void,
                     afterPage: (_ documents: Int, _ total: Int) throws -> Bool = { _, _ in true }) throws -> Int {
        try Self.forEachDocument(store, limit: limit, each: { for t in tasks(in: $0) { try each(t) } }, afterPage: afterPage)
    }

    /// Reads the documents of `store` in id order, 500 a page (the parameters as in ``mine(_:limit:each:afterPage:)``).
    /// - Returns: the documents read.
    @discardableResult
    public static func forEachDocument(_ store: CorpusStore, limit: Int? = nil, each: (Document) throws -> Void,
                                       afterPage: (_ documents: Int, _ total: Int) throws -> Bool = { _, _ in true }) throws -> Int {
        let total = min(try store.documentCount(), limit ?? .max)
        var documents = 0, last = 0
        while documents < total {
            let page = try store.documentKeys(after: last, limit: 500)
            if page.isEmpty { break }
            for (id, key) in page.prefix(total - documents) {
                last = id
                documents += 1
                guard let stored = try store.document(key: key) else { continue }
                try each(stored.document)
            }
            if try !afterPage(documents, total) { break }
        }
        return documents
    }
}
