import Foundation
import LLM
import VectorIndex
import XCTest
@testable import Generator

final class PromptTests: XCTestCase {
    func testBrainstormPromptIsDeterministicWithThreeSeeds() throws {
        let seeds = try SeedLoader.load(path: Paths.seeds)
        var r1 = SeededRandom(seed: 5), r2 = SeededRandom(seed: 5), r3 = SeededRandom(seed: 6)
        let a = BrainstormPrompt.make(pool: seeds, using: &r1), b = BrainstormPrompt.make(pool: seeds, using: &r2)
        let c = BrainstormPrompt.make(pool: seeds, using: &r3)
        XCTAssertEqual(a, b); XCTAssertNotEqual(a.text, c.text)
        XCTAssertEqual(a.seeds.count, 3); XCTAssertEqual(Set(a.seeds).count, 3)
        for s in a.seeds { XCTAssertTrue(a.text.contains("Instruction: \(s.instruction)\n")) }
        XCTAssertTrue(a.text.hasSuffix("Task 4\nInstruction:"))
        XCTAssertTrue(a.text.contains("self-contained"))
        XCTAssertTrue(a.text.contains("never ask for images"))
        // Over many prompts every seed gets drawn.
        var rng = SeededRandom(seed: 1)
        var used = Set<Seed>()
        for _ in 0..<200 { used.formUnion(BrainstormPrompt.make(pool: seeds, using: &rng).seeds) }
        XCTAssertEqual(used.count, seeds.count)
    }

    func testResponsePromptTrimsPassagesToTheTokenBudget() throws {
        let gguf = try GGUFFile(path: Paths.repo.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path)
        let tokenizer = try TokenizerFactory.make(metadata: gguf.metadata)
        let count: TokenCounter = { tokenizer.encode($0).count }
        let text = (0..<60).map { "Sentence \($0) reports that metformin lowered HbA1c in the cohort." }.joined(separator: " ")
        var hits: [SearchHit] = []
        for i in 0..<4 {
            let body: String = i == 0 ? "Metformin is first-line therapy for type 2 diabetes." : text
            let fields: [String: Any] = ["rank": i + 1, "score": 1.0 / Double(i + 1), "passageID": 100 + i, "documentKey": "pmid:\(900 + i)",
                                         "pmid": 900 + i, "title": "Title \(i)", "section": "Abstract", "text": body, "year": 2020, "journal": "J"]
            hits.append(try JSONDecoder().decode(SearchHit.self, from: JSONSerialization.data(withJSONObject: fields)))
        }
        let seeds = try SeedLoader.load(path: Paths.seeds)
        for budget in [40, 200, 700] {
            let p = ResponsePrompt.make(instruction: "Explain metformin.", input: "", hits: hits, demonstrations: Array(seeds.prefix(2)),
                                        passageBudget: budget, countTokens: count)
            let block = p.text.components(separatedBy: "Passages:\n").last!.components(separatedBy: "### Instruction:").first!
            let used: Int = count(block.trimmingCharacters(in: CharacterSet.newlines))
            print("budget \(budget): \(p.passages.count) passage(s), \(used) tokens")
            XCTAssertLessThanOrEqual(used, budget)
            let shownPMIDs: [Int?] = p.passages.map { $0.pmid }
            let expectedPMIDs: [Int?] = [900, 901, 902, 903].prefix(p.passages.count).map { Optional($0) }
            XCTAssertEqual(shownPMIDs, expectedPMIDs)
            for ref in p.passages { XCTAssertTrue(p.text.contains("[PMID \(ref.pmid!)]")) }
            XCTAssertTrue(p.text.hasSuffix("### Instruction:\nExplain metformin.\n\n### Response:\n"))
            XCTAssertTrue(p.text.contains(seeds[0].output))
            XCTAssertEqual(p.demonstrations, Array(seeds.prefix(2)), "kept for the stock-answer filter")
        }
        let small = ResponsePrompt.make(instruction: "x", input: "", hits: hits, demonstrations: [], passageBudget: 40, countTokens: count)
        XCTAssertEqual(small.passages.count, 1, "only the short first passage fits in 40 tokens")
        XCTAssertEqual(small.demonstrations, [])
        let mid = ResponsePrompt.make(instruction: "x", input: "", hits: hits, demonstrations: [], passageBudget: 200, countTokens: count)
        XCTAssertEqual(mid.passages.count, 2, "the second passage is shortened to fit")
        XCTAssertTrue(mid.passageTexts[1].hasSuffix(" …"))
        // Ungrounded: no passages section.
        let bare = ResponsePrompt.make(instruction: "Explain metformin.", input: "in one line", hits: [], demonstrations: [], passageBudget: 500, countTokens: count)
        XCTAssertFalse(bare.text.contains("Passages:")); XCTAssertEqual(bare.passages, [])
        XCTAssertTrue(bare.text.contains("### Input:\nin one line\n"))
    }
}
