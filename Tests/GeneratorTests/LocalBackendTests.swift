import Foundation
import XCTest
@testable import Generator

/// The in-process engine behind the pipeline's backend protocol, with the real SmolLM2 GGUF.
final class LocalBackendTests: XCTestCase {
    static let model = Paths.repo.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path

    func testBatchedGreedyCompletionsAreDeterministicAndFailPerPrompt() throws {
        let backend = try LocalBackend(modelPath: Self.model, maxBatch: 2)
        XCTAssertTrue(backend.usesChat, "SmolLM2 has a ChatML template")
        XCTAssertTrue(backend.usesChat(for: .respond))
        XCTAssertFalse(backend.usesChat(for: .brainstorm), "stage 1 is a plain completion prompt by default")
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
        XCTAssertTrue(mixed[0].error?.contains("do not fit the context of") == true, mixed[0].error ?? "no error")
        XCTAssertEqual(mixed[1], first[0])
        // A stop string ends the text before it.
        let stopped = backend.complete([prompts[0]], settings: SamplingSettings(temperature: 0, maxTokens: 12, stop: ["Paris"]))
        XCTAssertFalse(stopped[0].text.contains("Paris"))
        XCTAssertEqual(stopped[0].finishReason, .stop)
        // `chat: false` sends the text as it is, for the model to continue (the brainstorm
        // stage's form); in the chat template the same text is a user turn the model replies to.
        let plain = backend.complete(["The capital of France is"], settings: SamplingSettings(temperature: 0, maxTokens: 12, chat: false))
        let turn = backend.complete(["The capital of France is"], settings: SamplingSettings(temperature: 0, maxTokens: 12))
        XCTAssertTrue(plain[0].text.hasPrefix(" Paris"), plain[0].text)
        XCTAssertNotEqual(plain[0].text, turn[0].text)
    }

    /// Ctrl-C with the local engine cancels the batch in flight: the pipeline drops that round
    /// (nothing half-done is committed, no prompt counts as failed) and `--resume` redoes it.
    func testInterruptedRoundIsDroppedAndRedoneOnResume() throws {
        var config = SelfSpecializer.Configuration()
        config.count = 1; config.seed = 7; config.promptsPerRound = 2; config.searchMode = .bm25
        let seeds = try SeedLoader.load(path: Paths.seeds)
        let dir = tempPath("interrupted")
        let steps = StepCountdown(40)  // stops in the first round's brainstorming
        let stopping = try LocalBackend(modelPath: Self.model, shouldStop: { steps.tick() })
        let settings = config.fingerprint(seedsFile: "s", model: stopping.modelIdentifier, grounded: false)
        let first = try SelfSpecializer(backend: stopping, retriever: nil, seeds: seeds, configuration: config)
            .run(into: try DatasetStore(directory: dir, settings: settings, resume: false))
        XCTAssertTrue(steps.tick(), "the backend was never stopped")
        XCTAssertEqual(first.rounds, 0)
        XCTAssertEqual(first.filtered, [:])
        let store = try DatasetStore(directory: dir, settings: settings, resume: true)
        XCTAssertEqual(store.progress.nextRound, 0)
        XCTAssertEqual(try store.keptInstructions().count, 0)
        // Resumed with a backend that is not stopped: the run starts at round 0 and finishes.
        let backend = try LocalBackend(modelPath: Self.model)
        let done = try SelfSpecializer(backend: backend, retriever: nil, seeds: seeds, configuration: config).run(into: store)
        XCTAssertGreaterThanOrEqual(done.examples, 1)
        XCTAssertNil(done.filtered["backend_error"])
        // Each example records the forms the local engine used: stage 1 plain text, stage 2 chat.
        let lines = try String(contentsOfFile: dir + "/examples.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertFalse(lines.isEmpty)
        for line in lines {
            let settings = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["settings"] as? [String: Any])
            XCTAssertEqual(settings["prompt"] as? String, "chat")
            XCTAssertEqual((settings["brainstorm"] as? [String: Any])?["prompt"] as? String, "completion")
        }
    }

    /// `SamplingSettings.repetitionStop` reaches the engine: a looping greedy answer ends as
    /// `.repetition` (off by default), and the response filter drops it as a repetition.
    func testRepetitionStopIsReportedAndFiltered() throws {
        let backend = try LocalBackend(modelPath: Self.model, maxBatch: 2)
        let prompt = "Is there still a need for living-related liver transplantation in children?"
        var settings = SamplingSettings(temperature: 0, maxTokens: 200)
        let free = backend.complete([prompt], settings: settings)[0]
        settings.repetitionStop = .default
        let stopped = backend.complete([prompt], settings: settings)[0]
        print("backend: without the loop stop \(free.finishReason) (\(free.text.count) chars), with it \(stopped.finishReason) (\(stopped.text.count) chars)")
        XCTAssertEqual(free.finishReason, .length)
        XCTAssertEqual(stopped.finishReason, .repetition)
        XCTAssertTrue(free.text.hasPrefix(stopped.text) && stopped.text.count < free.text.count)
        XCTAssertEqual(ResponseFilter().check(stopped, passages: []), .repetition)
    }

    func testMissingModelIsATypedError() {
        XCTAssertThrowsError(try LocalBackend(modelPath: "/no/such/model.gguf")) { error in
            XCTAssertTrue("\(error)".contains("/no/such/model.gguf"), "\(error)")
        }
    }
}

/// `shouldStop` for the tests: true from the `n`-th poll on.
final class StepCountdown: @unchecked Sendable {
    private let lock = NSLock()
    private var left: Int
    init(_ n: Int) { left = n }
    func tick() -> Bool {
        lock.lock(); defer { lock.unlock() }
        left -= 1
        return left < 0
    }
}
