import Evaluation
import Foundation
import Generator
import Ingest
import LLM
import Server
import VectorIndex

/// `selfspec eval --rag-qa`: PubMedQA-style questions put through the path of `selfspec ask --rag`
/// (``GroundedAsker``: retrieval, numbered passages, generation with the repetition stop,
/// citation and figure checks), each answer scored against the item's gold PMID, yes/no/maybe
/// label and long answer.
///
/// Per item (``RAGQAOutcome``): whether the gold PMID was retrieved (recall@k), the documents the
/// answer cites (citation precision and recall against the gold PMID), the decision the answer
/// commits to (``DecisionParser``), unsupported figures, loops, ROUGE-L to the long answer,
/// latency and tokens. ``RAGQAReport`` aggregates them with bootstrap intervals.
public enum RAGQAEvaluation {
    /// One question with its gold answers.
    public struct Item: Sendable, Equatable {
        public var pmid: Int
        public var question: String
        /// Index in `EvalDataLoader.pubmedQALabels`.
        public var gold: Int
        public var longAnswer: String?

        public init(pmid: Int, question: String, gold: Int, longAnswer: String?) {
            self.pmid = pmid
            self.question = question
            self.gold = gold
            self.longAnswer = longAnswer
        }
    }

    /// A looser loop rule than the stop, for answers that ran to `max_tokens`: a span written
    /// twice in a row, 16 tokens in all (an answer cut while repeating counts as a loop).
    public static let loopCheck = RepetitionStop(repeats: 2, minTokens: 16, maxPeriod: 128)

    // MARK: Items

    /// The items of a PubMedQA file: the first `limit` after a shuffle seeded with `seed` (the
    /// same items `selfspec eval --pubmedqa --limit --seed` scores), with their records.
    /// - Throws: `EvaluationError` (unreadable, malformed, empty file); ``BenchmarkError/nonNumericPMID``.
    public static func records(file: String, limit: Int?, seed: UInt64) throws -> [PubMedQARecord] {
        guard case let .labels(sampled) = try EvalDataLoader.load(task: .pubmedqa, path: file).sample(limit: limit, seed: seed).items
        else { return [] }
        let chosen = sampled.map(\.id)
        let byPMID = Dictionary(try EvalDataLoader.pubmedQA(EvalDataLoader.contents(of: file), file: file).map { ($0.pmid, $0) },
                                uniquingKeysWith: { a, _ in a })
        return try chosen.map { id in
            guard let r = byPMID[id], Int(id) != nil else { throw BenchmarkError.nonNumericPMID(file: file, id: id) }
            return r
        }
    }

    /// ``records(file:limit:seed:)`` as items.
    public static func items(file: String, limit: Int?, seed: UInt64) throws -> [Item] {
        try records(file: file, limit: limit, seed: seed).map {
            Item(pmid: Int($0.pmid)!, question: $0.question, gold: $0.decision, longAnswer: $0.longAnswer)
        }
    }

    /// The items' PMIDs that `db` does not hold (their questions cannot retrieve their abstract).
    public static func missing(_ items: [Item], in corpus: CorpusStore) throws -> [Int] {
        let st = try corpus.db.prepare("SELECT 1 FROM documents WHERE pmid = ?")
        var out: [Int] = []
        for item in items {
            try st.bind([.int(item.pmid)])
            if try !st.step() { out.append(item.pmid) }
            st.reset()
        }
        return out
    }

    // MARK: Running

    /// Answers every item with `asker` (sequentially, as `ask` does).
    /// - Parameter progress: called after each item with (done, total); returning false stops
    ///   the run with `CancellationError`.
    public static func run(_ items: [Item], asker: GroundedAsker,
                           progress: (Int, Int) -> Bool = { _, _ in true }) throws -> [RAGQAOutcome] {
        var out: [RAGQAOutcome] = []
        for item in items {
            var cancelled = false
            let answer = try asker.answer(item.question) { _ in
                cancelled = cancelled || !progress(out.count, items.count)
                return cancelled ? .stop : .more
            }
            if cancelled || answer.result.finishReason == .cancelled { throw CancellationError() }
            out.append(outcome(item, answer: answer))
            if !progress(out.count, items.count) { throw CancellationError() }
        }
        return out
    }

    /// Scores one answer.
    public static func outcome(_ item: Item, answer a: GroundedAsker.Answer) -> RAGQAOutcome {
        outcome(item, text: a.result.text, tokens: a.result.tokens, finishReason: a.result.finishReason,
                promptTokens: a.result.promptTokens, hits: a.hits, grounded: a.grounded, checked: a.checked,
                seconds: a.retrievalSeconds + a.generationSeconds, generationSeconds: a.generationSeconds)
    }

    /// Scores one answer given as its parts (`checked` is `grounded.check(answer: text)`).
    public static func outcome(_ item: Item, text: String, tokens: [Int], finishReason: LLM.FinishReason, promptTokens: Int,
                               hits: [SearchHit], grounded: GroundedQuestion, checked: GroundedQuestion.Checked,
                               seconds: Double, generationSeconds: Double) -> RAGQAOutcome {
        let parsed = DecisionParser.parse(text, question: item.question)
        let cited = checked.sources.map { $0.pmid }
        let loop = finishReason == .repetition || (finishReason == .length && loopCheck.loop(in: tokens) != nil)
        return RAGQAOutcome(
            pmid: item.pmid, question: item.question, gold: EvalDataLoader.pubmedQALabels[item.gold], answer: text,
            decision: parsed.decision.rawValue, explicit: parsed.explicit, correct: parsed.decision.labelIndex == item.gold,
            retrievedRank: hits.firstIndex { $0.pmid == item.pmid }.map { $0 + 1 },
            shownGold: grounded.sources.contains { $0.pmid == item.pmid },
            citedPMIDs: cited.compactMap { $0 }, citedDocuments: cited.count,
            citedGold: cited.contains(item.pmid), citations: checked.citationCount,
            invalidCitations: checked.invalidCitations.count, unsupported: checked.unsupported,
            finishReason: finishReason.rawValue, loop: loop,
            rougeL: item.longAnswer.map { RougeL.score(text, $0) }, tokens: tokens.count, promptTokens: promptTokens,
            seconds: seconds, generationSeconds: generationSeconds)
    }
}

/// One scored answer (a line of `predictions.jsonl`).
public struct RAGQAOutcome: Codable, Sendable, Equatable {
    public var pmid: Int
    public var question: String
    /// The gold label: yes, no or maybe.
    public var gold: String
    public var answer: String
    /// What the answer commits to: yes, no, maybe or unclear (``DecisionParser``).
    public var decision: String
    /// Whether the answer names yes/no/maybe itself.
    public var explicit: Bool
    public var correct: Bool
    /// The rank (1-based) of the gold document's first passage among the k retrieved; nil: not retrieved.
    public var retrievedRank: Int?
    /// Whether a passage of the gold document made it into the prompt (the budget may cut the last ones).
    public var shownGold: Bool
    /// The PMIDs of the documents the answer cites validly.
    public var citedPMIDs: [Int]
    /// Documents cited validly (with or without a PMID).
    public var citedDocuments: Int
    public var citedGold: Bool
    /// Citation marks in the answer, valid or not, and the invalid ones.
    public var citations: Int
    public var invalidCitations: Int
    /// Figures not found in the cited passages.
    public var unsupported: [String]
    public var finishReason: String
    /// Stopped by the repetition stop, or cut at max tokens while repeating (``RAGQAEvaluation/loopCheck``).
    public var loop: Bool
    /// ROUGE-L F to the long answer; nil when the item has none.
    public var rougeL: Double?
    public var tokens: Int
    public var promptTokens: Int
    /// Retrieval + generation, and generation alone (prefill included), in seconds.
    public var seconds: Double
    public var generationSeconds: Double

    enum CodingKeys: String, CodingKey {
        case pmid, question, gold, answer, decision, explicit, correct, shownGold = "shown_gold"
        case retrievedRank = "retrieved_rank", citedPMIDs = "cited_pmids", citedDocuments = "cited_documents"
        case citedGold = "cited_gold", citations, invalidCitations = "invalid_citations", unsupported
        case finishReason = "finish_reason", loop, rougeL = "rouge_l", tokens, promptTokens = "prompt_tokens"
        case seconds, generationSeconds = "generation_seconds"
    }
}
