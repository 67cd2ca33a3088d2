import XCTest
@testable import Experiment

/// `balance_labels`: a kind's sample is drawn evenly over its answer labels.
final class BalancedSampleTests: XCTestCase {
    private func lines(_ outputs: [String]) -> [ExampleLine] {
        outputs.enumerated().map { ExampleLine(instruction: "q\($0.offset)", input: "", output: $0.element) }
    }

    func testLabelsAreTakenRoundRobinAsFarAsEachHasExamples() {
        let pool = lines(Array(repeating: "yes", count: 8) + ["no", "no", "maybe"])
        let picked = ExperimentRunner.balanced(pool, count: 6).map(\.output)
        XCTAssertEqual(picked, ["yes", "no", "maybe", "yes", "no", "yes"])
        XCTAssertEqual(ExperimentRunner.balanced(pool, count: 20).count, 11, "never more than the pool")
    }

    func testFreeTextAnswersKeepTheirOrder() {
        let pool = lines(["aspirin\nibuprofen", "none", "cisplatin"])
        XCTAssertEqual(ExperimentRunner.balanced(pool, count: 2).map(\.output), ["aspirin\nibuprofen", "none"])
    }
}
