import Foundation
import LLM
import VectorIndex

/// A question put to the model with retrieved passages in its prompt (`selfspec ask --rag`),
/// and the check of the answer it gets.
///
/// The passages go into the system turn numbered `[1]`, `[2]`, … best first, with PMID and
/// title, trimmed to a token budget (``PromptPassages``: whole passages while they fit, then
/// the next one cut at a word boundary if at least 24 words are left); the model is told to cite
/// them inline by number. ``check(answer:)`` then reads the answer's citations
/// (``CitationCheck``): the sources are the documents cited, an invented or out-of-range
/// citation is counted and dropped, and every figure of the answer is looked up in the shown
/// passages of the cited documents (``FigureCheck``).
public struct GroundedQuestion: Sendable, Equatable {
    /// One document the prompt showed.
    public struct Source: Sendable, Equatable, Codable {
        public var pmid: Int?
        /// The document key when there is no PMID (a JSONL id, a file name).
        public var documentKey: String
        public var title: String
        /// The numbers its passages have in the prompt.
        public var numbers: [Int]
        /// The passages of this document shown in the prompt.
        public var passageIDs: [Int64]
        /// The best retrieval score of those passages.
        public var score: Double

        /// `PMID 123` or the document key.
        public var label: String { pmid.map { "PMID \($0)" } ?? documentKey }

        enum CodingKeys: String, CodingKey {
            case pmid, documentKey = "document_key", title, numbers, passageIDs = "passage_ids", score
        }
    }

    /// What ``check(answer:)`` found in an answer.
    public struct Checked: Sendable, Equatable {
        /// The documents the answer cites (validly), in order of first citation.
        public var sources: [Source]
        /// Invalid citations as written (`[7]`, `PMID 999`): out of range, or a PMID not shown.
        public var invalidCitations: [String]
        /// Citation markers found, valid or not.
        public var citationCount: Int
        /// Figures of the answer found in no shown passage of a cited document (nor the question), as written.
        public var unsupported: [String]
    }

    /// The conversation to render with the model's chat template.
    public var messages: [ChatMessage]
    /// The question asked.
    public var question: String
    /// The passages in the prompt, numbered.
    public var passages: PromptPassages
    /// The documents shown, each once, in the order first shown.
    public var sources: [Source]
    /// Tokens the passages took in the prompt.
    public var passageTokens: Int { passages.tokens }

    /// The instructions in the system turn.
    public static let instructions = """
        You are a biomedical expert. Answer the question accurately and concisely, using the numbered \
        passages below when they are relevant. Cite the passages you use inline by their number, as [1] \
        or [1, 2]. If the passages do not answer the question, say so.
        """

    /// - Parameters:
    ///   - question: the user's question.
    ///   - hits: retrieved passages, best first (empty: the question alone).
    ///   - passageBudget: the most tokens the passages together may take.
    ///   - instructions: the system turn's instructions, before the passages.
    ///   - countTokens: counts tokens as the model's tokenizer does.
    public init(question: String, hits: [SearchHit], passageBudget: Int, instructions: String = Self.instructions,
                countTokens: (String) -> Int) {
        self.question = question
        passages = PromptPassages(hits: hits, budget: passageBudget, countTokens: countTokens)
        sources = Self.documents(passages.passages)
        let system = passages.passages.isEmpty ? instructions : instructions + "\n\nPassages:\n\n" + passages.text
        messages = [.system(system.trimmingCharacters(in: .newlines)), .user(question)]
    }

    /// The documents of `passages`, each once, in order.
    static func documents(_ passages: [PromptPassages.Passage]) -> [Source] {
        var sources: [Source] = []
        for p in passages {
            let h = p.hit
            if let i = sources.firstIndex(where: { $0.documentKey == h.documentKey }) {
                sources[i].numbers.append(p.number)
                sources[i].passageIDs.append(h.passageID)
                sources[i].score = max(sources[i].score, h.score)
            } else {
                sources.append(Source(pmid: h.pmid, documentKey: h.documentKey, title: h.title, numbers: [p.number],
                                      passageIDs: [h.passageID], score: h.score))
            }
        }
        return sources
    }

    // MARK: Checking the answer

    /// Reads the citations and figures of `answer` against the passages shown.
    public func check(answer: String) -> Checked {
        let citations = CitationCheck(answer: answer, passages: passages.passages)
        let cited = citations.citedNumbers.compactMap { n in passages.passages.first { $0.number == n } }
        // Evidence: every shown passage of a cited document (the source the user is pointed to).
        let keys = Set(cited.map(\.hit.documentKey))
        let evidence = passages.passages.filter { keys.contains($0.hit.documentKey) }.map { $0.hit.title + "\n" + $0.text }
        let unsupported = FigureCheck.unsupported(answer: answer, evidence: evidence + [question])
        return Checked(sources: Self.documents(cited), invalidCitations: citations.invalid,
                       citationCount: citations.citations.count, unsupported: unsupported)
    }

    /// The block printed after the answer: the cited sources (or why there are none), invalid
    /// citations, and figures not found in the cited passages.
    public func report(_ checked: Checked) -> String {
        var lines: [String] = []
        if passages.passages.isEmpty {
            lines.append("Sources: none (no passage was retrieved)")
        } else if checked.sources.isEmpty {
            lines.append("Sources: none cited (the answer cites none of the \(passages.passages.count) passages shown; it is not grounded in them)")
        } else {
            lines.append("Sources:")
            for s in checked.sources {
                lines.append("- [\(s.numbers.map(String.init).joined(separator: ", "))] \(s.label): \(s.title)")
            }
        }
        if !checked.invalidCitations.isEmpty {
            lines.append("Invalid citations (not among the passages shown; dropped): \(checked.invalidCitations.joined(separator: ", "))")
        }
        if !checked.unsupported.isEmpty {
            lines.append("Unsupported figures (not found in the cited passages): \(checked.unsupported.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }
}
