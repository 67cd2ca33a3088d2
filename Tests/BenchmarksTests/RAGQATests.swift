@testable import Benchmarks
import Evaluation
import Ingest
import LLM
import Server
import TestSupport
@testable import VectorIndex
import XCTest

/// `eval --rag-qa`'s scoring on hand-made answers, and its corpus built from real PubMed files.
final class RAGQATests: XCTestCase {
    // MARK: One answer

    func hit(_ rank: Int, pmid: Int, _ text: String) -> SearchHit {
        SearchHit(rank: rank, score: 1 / Double(rank), passageID: Int64(rank), documentKey: String(pmid), pmid: pmid,
                  title: "Title \(pmid)", section: "results", text: text, year: nil, journal: nil)
    }

    func testAnOutcomeCountsCitationsDecisionFiguresAndLoops() {
        let item = RAGQAEvaluation.Item(pmid: 111, question: "Do statins reduce cardiovascular events in older adults?", gold: 0,
                                        longAnswer: "Statins reduced cardiovascular events by 20% in older adults.")
        let hits = [hit(1, pmid: 222, "Statins were studied in 300 younger adults."),
                    hit(2, pmid: 111, "Statins reduced cardiovascular events by 20% in adults over 70."),
                    hit(3, pmid: 333, "An unrelated abstract.")]
        let grounded = GroundedQuestion(question: item.question, hits: hits, passageBudget: 512,
                                        countTokens: { $0.split(separator: " ").count })
        let text = "Yes, statins reduced events by 20% [2] and by 35% [1]; see also [7]."
        let o = RAGQAEvaluation.outcome(item, text: text, tokens: Array(0..<20), finishReason: .endOfSequence, promptTokens: 100,
                                        hits: hits, grounded: grounded, checked: grounded.check(answer: text),
                                        seconds: 2, generationSeconds: 1.5)
        XCTAssertEqual(o.retrievedRank, 2)
        XCTAssertTrue(o.shownGold)
        XCTAssertEqual(o.citedPMIDs, [111, 222], "cited documents in order of first citation")
        XCTAssertEqual(o.citedDocuments, 2)
        XCTAssertTrue(o.citedGold)
        XCTAssertEqual(o.invalidCitations, 1, "[7] is out of range")
        XCTAssertEqual(o.unsupported, ["35%"], "20% is in the cited passage of 111, 35% in none")
        XCTAssertEqual(o.decision, "yes")
        XCTAssertTrue(o.explicit)
        XCTAssertTrue(o.correct)
        XCTAssertFalse(o.loop)
        XCTAssertGreaterThan(o.rougeL ?? 0, 0.3)

        // Cut at max tokens while repeating: a loop; stopped by the repetition stop: a loop.
        let looping = Array(repeating: [5, 6, 7, 8, 9, 10, 11, 12], count: 3).flatMap { $0 }
        let cut = RAGQAEvaluation.outcome(item, text: "No. It repeats.", tokens: looping, finishReason: .length, promptTokens: 100,
                                          hits: [], grounded: grounded, checked: grounded.check(answer: "No."),
                                          seconds: 1, generationSeconds: 1)
        XCTAssertTrue(cut.loop)
        XCTAssertFalse(cut.correct)
        XCTAssertNil(cut.retrievedRank)
        XCTAssertFalse(RAGQAEvaluation.outcome(item, text: "x", tokens: Array(0..<24), finishReason: .length, promptTokens: 1,
                                               hits: [], grounded: grounded, checked: grounded.check(answer: "x"),
                                               seconds: 1, generationSeconds: 1).loop, "cut without repeating")
    }

    // MARK: The report

    func outcome(_ pmid: Int, gold: String = "yes", decision: String, cited: [Int], citedGold goldCited: Bool, loop: Bool = false,
                 unsupported: [String] = [], retrieved: Int? = 1, rouge: Double = 0.5, seconds: Double = 1, tokens: Int = 10) -> RAGQAOutcome {
        RAGQAOutcome(pmid: pmid, question: "q", gold: gold, answer: "a", decision: decision, explicit: false,
                     correct: decision == gold, retrievedRank: retrieved, shownGold: retrieved != nil, citedPMIDs: cited,
                     citedDocuments: cited.count, citedGold: goldCited, citations: cited.count, invalidCitations: 0,
                     unsupported: unsupported, finishReason: loop ? "repetition" : "eos", loop: loop, rougeL: rouge, tokens: tokens,
                     promptTokens: 50, seconds: seconds, generationSeconds: seconds / 2)
    }

    func testTheReportAggregatesHandMadeOutcomes() throws {
        let items = (1...4).map { RAGQAEvaluation.Item(pmid: $0, question: "q", gold: $0 == 4 ? 1 : 0, longAnswer: "a") }
        let base = [
            outcome(1, decision: "yes", cited: [1, 9], citedGold: true, rouge: 0.2, seconds: 1),
            outcome(2, decision: "no", cited: [2], citedGold: true, rouge: 0.4, seconds: 2),
            outcome(3, decision: "unclear", cited: [], citedGold: false, loop: true, retrieved: nil, rouge: 0.6, seconds: 3),
            outcome(4, gold: "no", decision: "no", cited: [8], citedGold: false, unsupported: ["5%"], rouge: 0.8, seconds: 4, tokens: 30),
        ]
        let adapter = base.map { var o = $0; o.correct = true; o.decision = o.gold; return o }
        let r = RAGQAReport.build(file: "f.json", db: "c.sqlite", k: 3, mode: "bm25", items: items, missingFromCorpus: [3],
                                  names: ["base", "med"], models: ["m", "m"], adapters: [nil, "a"], runs: [base, adapter],
                                  seconds: [10, 10], resamples: 200, seed: 1, settings: "model m; context document")
        let b = r.models[0]
        XCTAssertEqual(b.recallAtK.value, 0.75)
        XCTAssertEqual(b.citationPrecision.value, 0.5, "2 gold of 4 documents cited")
        XCTAssertEqual(b.citationRecall.value, 0.5)
        XCTAssertEqual(b.citingShare, 0.75)
        XCTAssertEqual(b.correctness.value, 0.5, "items 1 and 4")
        XCTAssertEqual(b.unclearShare, 0.25)
        XCTAssertEqual(b.decisions, ["yes": 1, "no": 2, "unclear": 1])
        XCTAssertEqual(b.unsupportedShare.value, 0.25)
        XCTAssertEqual(b.loopRate.value, 0.25)
        XCTAssertEqual(b.rougeL.value, 0.5, accuracy: 1e-9)
        XCTAssertEqual(b.latencyP50, 2.5)
        XCTAssertEqual(b.latencyP95, 3.85, accuracy: 1e-9)
        XCTAssertEqual(b.tokensPerSecond, 60.0 / 5.0, accuracy: 1e-9)
        XCTAssertEqual(r.majorityLabel, "yes")
        XCTAssertEqual(r.majorityShare, 0.75)
        XCTAssertEqual(r.missingFromCorpus, [3])
        for x in [b.recallAtK, b.citationPrecision, b.correctness, b.loopRate, b.rougeL] {
            XCTAssertLessThanOrEqual(x.low, x.value)
            XCTAssertGreaterThanOrEqual(x.high, x.value)
        }
        XCTAssertEqual(r.models[1].correctness.value, 1)
        let c = r.comparisons.first { $0.metric == "correctness" }!
        XCTAssertEqual(c.difference, 0.5)
        XCTAssertEqual(c.test, "exact McNemar")
        XCTAssertEqual(c.p, 0.5, "2 discordant items, both for the adapter: p = 2 · ¼")
        XCTAssertEqual(r.comparisons.first { $0.metric == "citation precision" }?.p, 1, "no difference")
        let md = r.markdown()
        XCTAssertTrue(md.contains("| correctness yes/no/maybe (majority 'yes' 0.750) | 0.500 ["), md)
        XCTAssertTrue(md.contains("1 item PMIDs are not in the corpus"), md)
        XCTAssertTrue(md.contains("\nSettings: model m; context document\n"), md)
        // A report.json written before settings were recorded still reads.
        var old = try JSONSerialization.jsonObject(with: RAGQAReport.encoder().encode(r)) as! [String: Any]
        old["settings"] = nil
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        XCTAssertNil(try decoder.decode(RAGQAReport.self, from: JSONSerialization.data(withJSONObject: old)).settings)

        // The run report shows it (RUN/ragqa/report.json, as `eval --rag-qa --report RUN/ragqa` writes it).
        let run = try makeTemporaryDirectory("ragqa-run")
        try FileManager.default.createDirectory(at: run.appendingPathComponent("ragqa"), withIntermediateDirectories: true)
        try RAGQAReport.encoder().encode(r).write(to: run.appendingPathComponent("ragqa/report.json"))
        let lines = try RunReport(directory: run.path).summaryLines()
        XCTAssertTrue(lines.contains { $0.hasPrefix("rag-qa base (4 items, bm25 k = 3): recall@k 0.750, citation precision 0.500") }, "\(lines)")
        XCTAssertTrue(try RunReport(directory: run.path).html().contains("eval --rag-qa"))
    }

    /// A model that cites nothing has no citation precision: "n/a", not 0 (which would read as
    /// "every citation wrong"); the JSON keeps NaN.
    func testPrecisionWithoutAnyCitationIsUndefined() throws {
        let items = (1...3).map { RAGQAEvaluation.Item(pmid: $0, question: "q", gold: 0, longAnswer: "a") }
        let none = (1...3).map { outcome($0, decision: "yes", cited: [], citedGold: false, rouge: 0.1, seconds: 1) }
        let r = RAGQAReport.build(file: "f.json", db: "c.sqlite", k: 3, mode: "bm25", items: items, missingFromCorpus: [],
                                  names: ["base"], models: ["m"], adapters: [nil], runs: [none], seconds: [3], resamples: 50, seed: 1)
        XCTAssertTrue(r.models[0].citationPrecision.value.isNaN)
        XCTAssertTrue(r.markdown().contains("| citation precision (gold / cited documents) | n/a (no passage cited) |"), r.markdown())
        let decoded = try RAGQAReport.decoder().decode(RAGQAReport.self, from: RAGQAReport.encoder().encode(r))
        XCTAssertTrue(decoded.models[0].citationPrecision.value.isNaN)
        // The run report's one-line summary says so too (it printed "nan").
        let run = try makeTemporaryDirectory("ragqa-run-none")
        try FileManager.default.createDirectory(at: run.appendingPathComponent("ragqa"), withIntermediateDirectories: true)
        try RAGQAReport.encoder().encode(r).write(to: run.appendingPathComponent("ragqa/report.json"))
        let lines = try RunReport(directory: run.path).summaryLines()
        XCTAssertTrue(lines.contains { $0.contains("citation precision n/a, recall 0.000") }, "\(lines)")
    }

    // MARK: The corpus

    func testTheCorpusHoldsTheItemsWithTheirSectionsAndSeededDistractors() throws {
        let items = try RAGQAEvaluation.records(file: RepositoryFiles.eval("pubmedqa/pqal_dev.json"), limit: 3, seed: 7)
        XCTAssertEqual(items.count, 3)
        XCTAssertEqual(try RAGQAEvaluation.records(file: RepositoryFiles.eval("pubmedqa/pqal_dev.json"), limit: 3, seed: 7), items)
        let db = try makeTemporaryDirectory("ragqa").appendingPathComponent("corpus.sqlite").path
        let samples = RepositoryFiles.pubmedSamples.path
        let report = try RAGQACorpus.build(records: items, itemsFile: "pqal_dev.json", distractorPaths: [samples], count: 50, seed: 3,
                                           db: db, embedder: nil)
        XCTAssertEqual(report.items, 3)
        XCTAssertEqual(report.distractors, 50)
        XCTAssertGreaterThan(report.distractorCandidates, 200)
        XCTAssertEqual(report.documents, 53)
        let store = try CorpusStore(path: db, readOnly: true)
        let stored = try XCTUnwrap(try store.document(key: items[0].pmid))
        XCTAssertEqual(stored.document.pmid, Int(items[0].pmid))
        XCTAssertEqual(stored.document.title, "")
        // The whole abstract: the CONTEXTS sections, then the conclusion (LONG_ANSWER).
        XCTAssertTrue(report.conclusions)
        XCTAssertEqual(stored.document.sections.map(\.name), items[0].sectionLabels.map { $0.lowercased() } + ["conclusions"])
        XCTAssertTrue(stored.document.text.hasSuffix(try XCTUnwrap(items[0].longAnswer)), "the conclusion ends the text")
        XCTAssertEqual(RAGQACorpus.document(items[0], file: "f", line: 1, conclusions: false).sections.map(\.name),
                       items[0].sectionLabels.map { $0.lowercased() }, "PubMedQA's reasoning-required setting: no conclusion")
        XCTAssertFalse(stored.passages.isEmpty)
        let asItems = items.map { RAGQAEvaluation.Item(pmid: Int($0.pmid)!, question: $0.question, gold: $0.decision, longAnswer: nil) }
        XCTAssertEqual(try RAGQAEvaluation.missing(asItems + [.init(pmid: 1, question: "q", gold: 0, longAnswer: nil)], in: store), [1])

        // The same seed chooses the same distractors; another seed others.
        let again = try RAGQACorpus.distractors(paths: [samples], excluding: [], count: 50, seed: 3).documents.map(\.key)
        let other = try RAGQACorpus.distractors(paths: [samples], excluding: [], count: 50, seed: 4).documents.map(\.key)
        var keys = Set<String>()
        let st = try store.db.prepare("SELECT key FROM documents")
        while try st.step() { keys.insert(st.string(0) ?? "") }
        XCTAssertTrue(Set(again).isSubset(of: keys))
        XCTAssertNotEqual(Set(again), Set(other))
        XCTAssertThrowsError(try RAGQACorpus.distractors(paths: [samples], excluding: [], count: 100_000, seed: 3))
    }

    func testSavedAnswersSurviveATornLineAndRefuseOtherSettings() throws {
        let dir = try makeTemporaryDirectory("ragqa-partial").path
        let cp = try RAGQACheckpoint(reportDirectory: dir, settings: "k 3")
        let a = outcome(11, decision: "yes", cited: [11], citedGold: true), b = outcome(12, decision: "no", cited: [], citedGold: false)
        try cp.append(a, model: "base")
        try cp.append(b, model: "base")
        // A kill in the middle of the third line.
        let file = cp.directory.appendingPathComponent("base.jsonl")
        let h = try FileHandle(forWritingTo: file)
        try h.seekToEnd(); try h.write(contentsOf: Data("{\"pmid\": 13, \"quest".utf8)); try h.close()
        let again = try RAGQACheckpoint(reportDirectory: dir, settings: "k 3")
        XCTAssertEqual(try again.saved(model: "base"), [a, b])
        try again.append(a, model: "base")
        XCTAssertEqual(try again.saved(model: "base"), [a, b, a], "appends continue a clean file")
        XCTAssertEqual(try again.saved(model: "specialist"), [])
        XCTAssertThrowsError(try RAGQACheckpoint(reportDirectory: dir, settings: "k 5")) { error in
            guard case BenchmarkError.resumeConflict = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("stored: k 3; now: k 5"), "\(error)")
        }
        again.remove()
        XCTAssertFalse(FileManager.default.fileExists(atPath: again.directory.path))
    }

    func testAnEmptyItemFileIsRefused() throws {
        let file = try makeTemporaryDirectory("ragqa").appendingPathComponent("empty.json").path
        try Data("{}".utf8).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try RAGQAEvaluation.items(file: file, limit: nil, seed: 0)) { error in
            XCTAssertTrue(error.localizedDescription.contains("no pubmedqa items"), "\(error)")
        }
    }
}
