import Foundation
import LLM
import VectorIndex

/// A question put to the model with retrieved passages in its prompt (`selfspec ask --rag`).
///
/// The passages (PMID, title, text) go into the system turn, best first, trimmed to a token
/// budget: whole passages while they fit, then the next one cut at a word boundary (kept only
/// if at least 24 words are left). The sources are the documents of the passages shown, each
/// once, in the order first shown.
public struct GroundedQuestion: Sendable, Equatable {
    /// One document the answer was grounded on.
    public struct Source: Sendable, Equatable, Codable {
        public var pmid: Int?
        /// The document key when there is no PMID (a JSONL id, a file name).
        public var documentKey: String
        public var title: String
        /// The passages of this document shown in the prompt.
        public var passageIDs: [Int64]
        /// The best retrieval score of those passages.
        public var score: Double

        /// `PMID 123` or the document key.
        public var label: String { pmid.map { "PMID \($0)" } ?? documentKey }

        enum CodingKeys: String, CodingKey {
            case pmid, documentKey = "document_key", title, passageIDs = "passage_ids", score
        }
    }

    /// The conversation to render with the model's chat template.
    public var messages: [ChatMessage]
    public var sources: [Source]
    /// Tokens the passages took in the prompt.
    public var passageTokens: Int

    /// The instructions in the system turn.
    public static let instructions = """
        You are a biomedical expert. Answer the question accurately and concisely, using the passages \
        below when they are relevant, and cite them as [PMID n]. If the passages do not answer the \
        question, say so.
        """

    /// - Parameters:
    ///   - question: the user's question.
    ///   - hits: retrieved passages, best first (empty: the question alone).
    ///   - passageBudget: the most tokens the passages together may take.
    ///   - countTokens: counts tokens as the model's tokenizer does.
    public init(question: String, hits: [SearchHit], passageBudget: Int, countTokens: (String) -> Int) {
        var block = "", used = 0
        var sources: [Source] = []
        func add(_ h: SearchHit, text: String, cost: Int) {
            block += Self.passage(h, text: text)
            used += cost
            if let i = sources.firstIndex(where: { $0.documentKey == h.documentKey }) {
                sources[i].passageIDs.append(h.passageID)
                sources[i].score = max(sources[i].score, h.score)
            } else {
                sources.append(Source(pmid: h.pmid, documentKey: h.documentKey, title: h.title, passageIDs: [h.passageID], score: h.score))
            }
        }
        for h in hits {
            let cost = countTokens(Self.passage(h, text: h.text))
            if used + cost <= passageBudget {
                add(h, text: h.text, cost: cost)
                continue
            }
            // The words of this passage that still fit (binary search on the word count).
            let words = h.text.split(separator: " ")
            var lo = 0, hi = words.count
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                let cut = words.prefix(mid).joined(separator: " ") + " …"
                if used + countTokens(Self.passage(h, text: cut)) <= passageBudget { lo = mid } else { hi = mid - 1 }
            }
            if lo >= 24 {
                let cut = words.prefix(lo).joined(separator: " ") + " …"
                add(h, text: cut, cost: countTokens(Self.passage(h, text: cut)))
            }
            break
        }
        let system = block.isEmpty ? Self.instructions : Self.instructions + "\n\nPassages:\n\n" + block
        messages = [.system(system.trimmingCharacters(in: .newlines)), .user(question)]
        self.sources = sources
        passageTokens = used
    }

    private static func passage(_ h: SearchHit, text: String) -> String {
        "[\(h.pmid.map { "PMID \($0)" } ?? h.documentKey)] \(h.title)\n\(text)\n\n"
    }

    /// The "Sources:" block printed after the answer.
    public var sourcesText: String {
        guard !sources.isEmpty else { return "Sources: none (no passage was retrieved)" }
        return "Sources:\n" + sources.map { "- \($0.label): \($0.title)" }.joined(separator: "\n")
    }
}
