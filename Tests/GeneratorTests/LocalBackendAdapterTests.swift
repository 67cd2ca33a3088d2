import Foundation
import XCTest
@testable import Generator
import LLM
import Tensor

/// Iterative self-specialization: the local backend with a LoRA adapter (a real GGUF LoRA file
/// written for SmolLM2) applies it, and identifies the adapter (path + SHA-256) in what every
/// example records and in the resume fingerprint.
final class LocalBackendAdapterTests: XCTestCase {
    func testAdapterChangesTheTextAndIsRecorded() throws {
        let file = try GGUFFile(path: LocalBackendTests.model)
        let model = try LlamaModel(file: file, options: .init(denseWeights: false))
        var rng = SplitMix64(seed: 9)
        var pairs: [String: LoRAAdapter.Pair] = [:]
        for w in model.weights.blockLinears where w.name.hasSuffix("ffn_down.weight") {
            let a = (0..<(8 * w.columns)).map { _ in (rng.nextUnitFloat() * 2 - 1) / Float(w.columns).squareRoot() }
            let b = (0..<(w.rows * 8)).map { _ in (rng.nextUnitFloat() * 2 - 1) * 0.1 }
            pairs[w.name] = .init(a: a, b: b, rank: 8, inputs: w.columns, outputs: w.rows, scale: 2)
        }
        let dir = tempPath("adapter")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let adapterFile = dir + "/adapter.gguf"
        try LoRAAdapter(pairs: pairs, base: .init(file: file, config: model.config)).writeGGUF(to: adapterFile)

        let plain = try LocalBackend(modelPath: LocalBackendTests.model, maxBatch: 2)
        let tuned = try LocalBackend(modelPath: LocalBackendTests.model, adapterPath: dir, maxBatch: 2)
        XCTAssertNil(plain.adapterPath)
        XCTAssertEqual(tuned.adapterPath, adapterFile, "a run folder resolves to its adapter.gguf")
        let hash = try SHA256.hexDigest(ofFile: adapterFile)
        XCTAssertEqual(tuned.adapterSHA256, hash)
        XCTAssertEqual(tuned.modelSHA256, plain.modelSHA256)
        XCTAssertEqual(tuned.modelIdentifier, "\(plain.modelIdentifier) adapter=\(adapterFile) adapter_sha256=\(hash)")

        let settings = SamplingSettings(temperature: 0, maxTokens: 12)
        let prompts = ["Name one symptom of asthma."]
        let a = plain.complete(prompts, settings: settings), b = tuned.complete(prompts, settings: settings)
        print("without adapter: \(a[0].text.debugDescription)\nwith adapter:    \(b[0].text.debugDescription)")
        XCTAssertNil(b[0].error)
        XCTAssertNotEqual(a[0].text, b[0].text, "the adapter must change the greedy text")

        // The iterative variant end to end: given instructions answered again by the adapted model.
        var config = SelfSpecializer.Configuration()
        config.count = 2; config.seed = 3; config.promptsPerRound = 1
        config.respondSampling.maxTokens = 48
        let given = [InstructionCandidate(instruction: "List two common symptoms of asthma.", input: ""),
                     InstructionCandidate(instruction: "Name the drug class of atorvastatin.", input: "")]
        let out = tempPath("iterative")
        let stats = try SelfSpecializer(backend: tuned, retriever: nil, seeds: try SeedLoader.load(path: Paths.seeds),
                                        configuration: config, instructions: given)
            .run(into: try DatasetStore(directory: out, settings: "it", resume: false))
        XCTAssertEqual(stats.brainstormPrompts, 0)
        XCTAssertEqual(stats.responsesRequested, 2)
        let examples = try String(contentsOfFile: out + "/examples.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        print("iterative run: \(stats.examples) of 2 kept, filtered \(stats.filtered)")
        XCTAssertNil(stats.filtered["backend_error"])
        XCTAssertGreaterThan(stats.examples, 0, "greedy answers to two plain questions")
        XCTAssertEqual(examples.count, stats.examples)
        XCTAssertNil(stats.instructionsPerMinute, "no brainstorming, no brainstorm rate")
        for e in examples { XCTAssertEqual(e["model"] as? String, tuned.modelIdentifier) }

        XCTAssertThrowsError(try LocalBackend(modelPath: LocalBackendTests.model, adapterPath: dir + "/missing")) { error in
            XCTAssertTrue(error.localizedDescription.contains(dir + "/missing"), error.localizedDescription)
        }
    }
}
