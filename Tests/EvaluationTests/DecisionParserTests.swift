import Evaluation
import XCTest

/// The yes / no / maybe a prose answer commits to (`eval --rag-qa`'s correctness).
final class DecisionParserTests: XCTestCase {
    let question = "Do statins reduce the risk of cardiovascular events in older adults?"

    /// "yes", "no", "maybe" or "unclear", with " explicit" when the answer names it.
    func parse(_ answer: String, _ q: String? = nil) -> String {
        let p = DecisionParser.parse(answer, question: q ?? question)
        return p.decision.rawValue + (p.explicit ? " explicit" : "")
    }

    func testExplicitLabels() {
        XCTAssertEqual(parse("Yes, statins reduce events [1]."), "yes explicit")
        XCTAssertEqual(parse("**No.** The trial found no effect [2]."), "no explicit")
        XCTAssertEqual(parse("Answer: maybe; the evidence is mixed."), "maybe explicit")
        XCTAssertEqual(parse("[1] Yes - in adults over 75."), "yes explicit", "a leading citation is not the first word")
        XCTAssertEqual(parse("Based on the passages, the answer is no [1]."), "no explicit")
        XCTAssertEqual(parse("YES"), "yes explicit")
    }

    func testDeclarativeAnswers() {
        XCTAssertEqual(parse("Statins reduced the risk of cardiovascular events in older adults [1]."), "yes")
        XCTAssertEqual(parse("Statins did not reduce cardiovascular events in older adults [1]."), "no")
        XCTAssertEqual(parse("Statins don't lower the risk [1]."), "no")
        XCTAssertEqual(parse("There was no significant reduction of cardiovascular risk [1]."), "no")
        XCTAssertEqual(parse("The effect of statins in older adults remains unclear [1]."), "maybe")
        XCTAssertEqual(parse("Results are inconclusive. Statins reduce risk in some trials."), "maybe")
        // A negation in the question is not a "no" of the answer.
        XCTAssertEqual(parse("Aspirin prevents stroke in these patients [1].", "Does aspirin not prevent stroke in these patients?"),
                       "yes")
        // Decimals do not end the first sentence.
        XCTAssertEqual(parse("Statins reduced cardiovascular events by 1.5% in older adults [1]. They do not harm."), "yes")
    }

    func testNoCommitmentIsUnclear() {
        XCTAssertEqual(parse("The passages do not provide information about statins in older adults."), "unclear")
        XCTAssertEqual(parse("I'm sorry, I cannot answer that."), "unclear")
        XCTAssertEqual(parse("The study enrolled 300 patients at two hospitals [1]."), "unclear")
        XCTAssertEqual(parse(""), "unclear")
        XCTAssertEqual(parse("[1] [2]"), "unclear")
    }

    func testLabelIndexMatchesTheLoader() {
        XCTAssertEqual(DecisionParser.Decision.yes.labelIndex, EvalDataLoader.pubmedQALabels.firstIndex(of: "yes"))
        XCTAssertEqual(DecisionParser.Decision.maybe.labelIndex, 2)
        XCTAssertNil(DecisionParser.Decision.unclear.labelIndex)
    }
}
