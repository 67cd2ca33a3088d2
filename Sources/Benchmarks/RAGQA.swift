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

    /// The items of a PubMedQA file: the first `limit` after a shuffle seeded with `seed` and the
    /// first `skip` dropped (the same items `selfspec eval --pubmedqa --limit --seed --skip`
    /// scores), with their records.
    /// - Throws: `EvaluationError` (unreadable, malformed, empty file); ``BenchmarkError/nonNumericPMID``.
    public static func records(file: String, limit: Int?, seed: UInt64, skip: Int = 0) throws -> [PubMedQARecord] {
        guard case let .labels(sampled) = try EvalDataLoader.load(task: .pubmedqa, path: file).sample(limit: limit, seed: seed, skip: skip).items
        else { return [] }
        let chosen = sampled.map(\.id)
        let byPMID = Dictionary(try EvalDataLoader.pubmedQA(EvalDataLoader.contents(of: file), file: file).map { ($0.pmid, $0) },
                                uniquingKeysWith: { a, _ in a })
        return try chosen.map { id in
            guard let r = byPMID[id], Int(id) != nil else { throw BenchmarkError.nonNumericPMID(file: file, id: id) }
            return r
        }
    }

    /// ``records(file:limit:seed:skip:)`` as items.
    public static func items(file: String, limit: Int?, seed: UInt64, skip: Int = 0) throws -> [Item] {
        try records(file: file, limit: limit, seed: seed, skip: skip).map {
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
    /// - Parameters:
    ///   - done: outcomes of the first items from an interrupted run (``RAGQACheckpoint``); those
    ///     items are not asked again. Their PMIDs must be the items' first ones, in order.
    ///   - finished: called with each new outcome as soon as it is scored (to save it).
    ///   - progress: called after each item with (done, total); returning false stops
    ///     the run with `CancellationError`.
    public static func run(_ items: [Item], asker: GroundedAsker, done: [RAGQAOutcome] = [],
                           finished: (RAGQAOutcome) throws -> Void = { _ in },
                           progress: (Int, Int) -> Bool = { _, _ in true }) throws -> [RAGQAOutcome] {
        guard done.count <= items.count, zip(done, items).allSatisfy({ $0.pmid == $1.pmid }) else {
            throw BenchmarkError.unreadable(file: "partial answers", reason: "they are not for these items (other --limit/--seed?)")
        }
        var out = done
        for item in items.dropFirst(done.count) {
            var cancelled = false
            let answer = try asker.answer(item.question) { _ in
                cancelled = cancelled || !progress(out.count, items.count)
                return cancelled ? .stop : .more
            }
            if cancelled || answer.result.finishReason == .cancelled { throw CancellationError() }
            let scored = outcome(item, answer: answer)
            try finished(scored)
            out.append(scored)
            if !progress(out.count, items.count) { throw CancellationError() }
        }
        return out
    }

    /// Scores one answer.
    public static func outcome(_ item: Item, answer a: GroundedAsker.Answer) -> RAGQAOutcome {
        var o = outcome(item, text: a.result.text, tokens: a.result.tokens, finishReason: a.result.finishReason,
                promptTokens: a.result.promptTokens, hits: a.hits, grounded: a.grounded, checked: a.checked,
                seconds: a.retrievalSeconds + a.generationSeconds, generationSeconds: a.generationSeconds)
        o.verdictLogProbs = a.result.choice?.logProbs
        return o
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
            retrievedRank: hits.first { $0.pmid == item.pmid }?.rank,
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
    /// With a verdict (`--verdict`): the model's log-probabilities of yes, no and maybe at the
    /// first token, before calibration; nil otherwise.
    public var verdictLogProbs: [Double]? = nil

    enum CodingKeys: String, CodingKey {
        case pmid, question, gold, answer, decision, explicit, correct, shownGold = "shown_gold"
        case retrievedRank = "retrieved_rank", citedPMIDs = "cited_pmids", citedDocuments = "cited_documents"
        case citedGold = "cited_gold", citations, invalidCitations = "invalid_citations", unsupported
        case finishReason = "finish_reason", loop, rougeL = "rouge_l", tokens, promptTokens = "prompt_tokens"
        case seconds, generationSeconds = "generation_seconds", verdictLogProbs = "verdict_logprobs"
    }
}

/// The answers of an unfinished `eval --rag-qa` run, saved item by item in `DIR/partial/` (one
/// JSON line per answer in `MODEL.jsonl`, the run's settings in `settings.txt`), so that the same
/// command continues after the last saved answer instead of starting over.
public struct RAGQACheckpoint: Sendable {
    public let directory: URL

    /// Opens (creating) `reportDirectory/partial` for a run with `settings`.
    /// - Throws: ``BenchmarkError/resumeConflict(dir:stored:now:)`` when it holds a run with other settings.
    public init(reportDirectory: String, settings: String) throws {
        directory = URL(fileURLWithPath: reportDirectory).appendingPathComponent("partial")
        let settingsURL = directory.appendingPathComponent("settings.txt")
        do {
            if let stored = try? String(contentsOf: settingsURL, encoding: .utf8) {
                guard stored == settings else { throw BenchmarkError.resumeConflict(dir: reportDirectory, stored: stored, now: settings) }
            } else {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try Data(settings.utf8).write(to: settingsURL, options: .atomic)
            }
        } catch let e as BenchmarkError { throw e } catch {
            throw BenchmarkError.unreadable(file: settingsURL.path, reason: error.localizedDescription)
        }
    }

    private func url(_ model: String) -> URL { directory.appendingPathComponent("\(model).jsonl") }

    /// The saved answers of `model`, in order; a torn last line (a kill mid-write) is dropped.
    public func saved(model: String) throws -> [RAGQAOutcome] {
        guard let data = FileManager.default.contents(atPath: url(model).path) else { return [] }
        var out: [RAGQAOutcome] = []
        let decoder = JSONDecoder()
        for line in data.split(separator: 0x0A) {
            guard let o = try? decoder.decode(RAGQAOutcome.self, from: Data(line)) else { break }
            out.append(o)
        }
        // Rewrite without a torn tail, so that appends continue a clean file.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var clean = Data()
        for o in out { clean += try encoder.encode(o) + Data([0x0A]) }
        if clean.count != data.count { try clean.write(to: url(model), options: .atomic) }
        return out
    }

    /// Appends one answer of `model`.
    public func append(_ outcome: RAGQAOutcome, model: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = try encoder.encode(outcome) + Data([0x0A])
        let path = url(model).path
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw BenchmarkError.unreadable(file: path, reason: "cannot open for appending") }
        defer { try? h.close() }
        do {
            try h.seekToEnd()
            try h.write(contentsOf: line)
        } catch { throw BenchmarkError.unreadable(file: path, reason: error.localizedDescription) }
    }

    /// Removes the partial answers (once the report is written).
    public func remove() { try? FileManager.default.removeItem(at: directory) }
}
