import Foundation
import XCTest
@testable import Generator

/// The in-process engine behind the pipeline's backend protocol, with the real SmolLM2 GGUF.
final class LocalBackendTests: XCTestCase {
    static let model = Paths.repo.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path

    func testBatchedGreedyCompletionsAreDeterministicAndFailPerPrompt() throws {
        let backend = try LocalBackend(modelPath: Self.model, maxBatch: 2)
        XCTAssertTrue(backend.usesChat, "SmolLM2 has a ChatML template")
        XCTAssertEqual(backend.modelSHA256, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
        let prompts = ["What is the capital of France?", "Name one symptom of asthma.", "List two statins."]
        let settings = SamplingSettings(temperature: 0, maxTokens: 12)
        let first = backend.complete(prompts, settings: settings)
        XCTAssertEqual(first.count, 3)
        for c in first {
            XCTAssertNil(c.error)
            XCTAssertFalse(c.text.isEmpty)
            XCTAssertTrue(c.finishReason == .length || c.finishReason == .stop)
        }
        XCTAssertTrue(first[0].text.contains("Paris"), first[0].text)
        // Greedy decoding in a batch equals one prompt at a time.
        let alone = backend.complete([prompts[1]], settings: settings)
        XCTAssertEqual(alone[0], first[1])
        // A prompt that cannot fit the context fails alone; the others still complete.
        let huge = String(repeating: "asthma ", count: 9000)
        let mixed = backend.complete([huge, prompts[0]], settings: settings)
        XCTAssertEqual(mixed[0].finishReason, .error)
        XCTAssertNotNil(mixed[0].error)
        XCTAssertEqual(mixed[1], first[0])
        // A stop string ends the text before it.
        let stopped = backend.complete([prompts[0]], settings: SamplingSettings(temperature: 0, maxTokens: 12, stop: ["Paris"]))
        XCTAssertFalse(stopped[0].text.contains("Paris"))
        XCTAssertEqual(stopped[0].finishReason, .stop)
    }

    func testMissingModelIsATypedError() {
        XCTAssertThrowsError(try LocalBackend(modelPath: "/no/such/model.gguf")) { error in
            XCTAssertTrue("\(error)".contains("/no/such/model.gguf"), "\(error)")
        }
    }
}
