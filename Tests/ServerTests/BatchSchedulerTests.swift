import Foundation
import LLM
@testable import VectorIndex
import XCTest
@testable import Server

/// The continuous batcher with the real SmolLM2: requests arriving at different times share
/// decode steps and give the text each gives alone; cancelled requests free their slots.
final class BatchSchedulerTests: XCTestCase {
    func testStaggeredRequestsMatchSingleStreamAndCancelFreesSlot() async throws {
        let served = try ServerFixture.servedModel(id: "s", options: .init(maxBatch: 3, maxQueue: 2))
        let scheduler = served.scheduler
        let prompts = ["The liver", "Proteins are made of", "Blood pressure is", "The immune system", "Cancer cells"]
        let requests = prompts.enumerated().map { i, p in
            GenerationRequest(prompt: served.encode(prompt: p), maxTokens: 12 + 3 * i, sampling: SamplingParameters(temperature: 0))
        }
        let alone = try requests.map { try scheduler.generator.generate($0) }

        // Submitted a few steps apart, so later ones join a batch already decoding.
        let results = try await withThrowingTaskGroup(of: (Int, GenerationResult, String).self) { group in
            for (i, r) in requests.enumerated() {
                let submission = try scheduler.submit(r)
                group.addTask {
                    var pieces = ""
                    for try await e in submission {
                        switch e {
                        case let .text(t): pieces += t
                        case let .finished(result): return (i, result, pieces)
                        }
                    }
                    throw ServerError.internalError("no result")
                }
                try await Task.sleep(nanoseconds: 30_000_000)
            }
            var out = [(GenerationResult, String)?](repeating: nil, count: requests.count)
            for try await (i, r, pieces) in group { out[i] = (r, pieces) }
            return out.map { $0! }
        }
        for i in requests.indices {
            XCTAssertEqual(results[i].0.tokens, alone[i].tokens, prompts[i])
            XCTAssertEqual(results[i].0.text, alone[i].text)
            XCTAssertEqual(results[i].1, alone[i].text, "the streamed pieces add up to the text")
        }

        // Queue bound: 3 slots + 2 waiting; the 6th submission is refused at once.
        await scheduler.waitUntilIdle()
        let long = GenerationRequest(prompt: served.encode(prompt: "Once upon a time"), maxTokens: 500, sampling: SamplingParameters(temperature: 0))
        let held = try (0..<5).map { _ in try scheduler.submit(long) }
        XCTAssertThrowsError(try scheduler.submit(long)) { XCTAssertEqual($0 as? SchedulerError, .queueFull(limit: 2)) }
        let before = scheduler.snapshot
        for h in held { h.cancel() }
        await scheduler.waitUntilIdle()
        let after = scheduler.snapshot
        XCTAssertEqual(after.dropped - before.dropped, 5)
        XCTAssertEqual(after.active, 0)
        // An invalid request is refused before queueing.
        XCTAssertThrowsError(try scheduler.submit(GenerationRequest(prompt: [], maxTokens: 4)))
        print("scheduler: \(requests.count) staggered requests equal single-stream; 5 cancelled, slots freed")
    }

    func testGroundedQuestionTrimsPassagesToTheBudgetAndListsSources() throws {
        func hit(_ id: Int64, pmid: Int, words: Int) -> SearchHit {
            SearchHit(rank: Int(id), score: 1 / Double(id), passageID: id, documentKey: "pmid:\(pmid)", pmid: pmid, title: "Title \(pmid)",
                      section: "Abstract", text: (0..<words).map { "w\($0)" }.joined(separator: " "), year: 2020, journal: "J")
        }
        let count: (String) -> Int = { $0.split(whereSeparator: { $0 == " " || $0 == "\n" }).count }
        let hits = [hit(1, pmid: 11, words: 40), hit(2, pmid: 11, words: 40), hit(3, pmid: 33, words: 100), hit(4, pmid: 44, words: 10)]
        let q = GroundedQuestion(question: "Why?", hits: hits, passageBudget: 130, countTokens: count)
        // 40 + 40 words (+ headers) fit whole; the third is cut to what is left (>= 24 words); the fourth is not shown.
        XCTAssertEqual(q.sources.map(\.pmid), [11, 33])
        XCTAssertEqual(q.sources[0].passageIDs, [1, 2])
        XCTAssertLessThanOrEqual(q.passageTokens, 130)
        XCTAssertTrue(q.messages[0].content.contains("[3] PMID 33 · Title 33"))
        XCTAssertFalse(q.messages[0].content.contains("PMID 44"))
        XCTAssertEqual(q.messages[1], .user("Why?"))
        XCTAssertEqual(q.sources.map(\.numbers), [[1, 2], [3]])
        // Only the cited documents are sources; an invented citation is listed, never a source.
        let checked = q.check(answer: "Because of w3 [3] and [9].")
        XCTAssertEqual(checked.sources.map(\.pmid), [33])
        XCTAssertEqual(checked.invalidCitations, ["[9]"])
        XCTAssertTrue(q.report(checked).hasPrefix("Sources:\n- [3] PMID 33: Title 33\nInvalid citations"), q.report(checked))
        XCTAssertTrue(q.report(q.check(answer: "Because.")).hasPrefix("Sources: none cited"))
        // Figures: looked up in the shown passages of the cited documents (PMID 11's hold w0…w39;
        // PMID 33's cut passage w0…w30).
        XCTAssertEqual(q.check(answer: "It is 35 mg and 77 mg [1].").unsupported, ["77 mg"])
        XCTAssertEqual(q.check(answer: "It is 35 mg [3].").unsupported, ["35 mg"])
        let none = GroundedQuestion(question: "Why?", hits: [], passageBudget: 100, countTokens: count)
        XCTAssertEqual(none.messages.count, 2)
        XCTAssertTrue(none.sources.isEmpty)
        XCTAssertEqual(none.report(none.check(answer: "Because [1].")),
                       "Sources: none (no passage was retrieved)\nInvalid citations (not among the passages shown; dropped): [1]")
    }
}
