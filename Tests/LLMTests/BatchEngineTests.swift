import XCTest
@testable import LLM

/// The continuous-batching engine (behind `generateBatch` and `BatchScheduler`) on SmolLM2:
/// joining mid-flight, stop strings, max tokens, cancellation, per-request sampling, fairness.
/// Every batched result is compared with the same request generated alone.
final class BatchEngineTests: XCTestCase {
    /// What an engine reported, by request id.
    final class Events {
        var text: [Int: String] = [:]
        var results: [Int: GenerationResult] = [:]
        var failures: [Int: Error] = [:]
        var order: [Int] = []

        func report(_ id: Int, _ event: BatchEngine.Event) {
            switch event {
            case let .text(piece): text[id, default: ""] += piece
            case let .finished(result):
                order.append(id)
                switch result {
                case let .success(r): results[id] = r
                case let .failure(e): failures[id] = e
                }
            }
        }
    }

    func generator() throws -> TextGenerator {
        TextGenerator(model: try SharedLlama.model(), tokenizer: try SharedModel.bpe())
    }

    func request(_ text: String, maxTokens: Int, stops: [String] = [], sampling: SamplingParameters = .init()) throws -> GenerationRequest {
        GenerationRequest(prompt: try SharedModel.bpe().encode(text), maxTokens: maxTokens, sampling: sampling,
                          stopStrings: stops, stopAtEndOfSequence: false)
    }

    /// Requests admitted while others are decoding share their steps and give the tokens, text
    /// and streamed pieces each gives alone.
    func testJoiningMidFlightGivesSingleStreamResults() throws {
        let gen = try generator()
        let requests = [try request("The liver", maxTokens: 20), try request("Proteins are made of", maxTokens: 12),
                        try request("Blood pressure is", maxTokens: 9), try request("The immune system", maxTokens: 10)]
        let single = try requests.map { try gen.generate($0) }
        let engine = BatchEngine(generator: gen, maxBatch: 3)
        let events = Events()
        engine.admit([(0, requests[0])], report: events.report)
        for _ in 0..<5 { engine.step(report: events.report) }
        engine.admit([(1, requests[1]), (2, requests[2])], report: events.report)
        XCTAssertEqual(engine.activeIDs, [0, 1, 2])
        XCTAssertEqual(engine.freeSlots, 0)
        while !engine.activeIDs.isEmpty {
            engine.step(report: events.report)
            if engine.freeSlots > 0, events.results[3] == nil, !engine.activeIDs.contains(3) {
                engine.admit([(3, requests[3])], report: events.report)  // into the first slot freed
            }
        }
        XCTAssertEqual(events.order.first, 2, "the shortest joiner finishes first")
        for i in requests.indices {
            XCTAssertEqual(events.results[i]?.tokens, single[i].tokens, "request \(i)")
            XCTAssertEqual(events.results[i]?.text, single[i].text)
            XCTAssertEqual(events.text[i] ?? "", single[i].text, "the streamed pieces add up to the text")
        }
    }

    /// Each request stops at its own stop string (inside a token, or on the first token) with the
    /// text before it; the others in the batch run on unaffected.
    func testStopStringsEndEachSequenceAlone() throws {
        let gen = try generator()
        // Greedy: " cell, responsible for energy production. Mitochondria are ..."
        let prompt = "The mitochondria is the powerhouse of the"
        let requests = [try request(prompt, maxTokens: 24, stops: ["energy prod"]),
                        try request(prompt, maxTokens: 24, stops: ["never appears"]),
                        try request(prompt, maxTokens: 24, stops: [" cell"]),
                        try request("The liver", maxTokens: 16, stops: [",", "."])]
        var batched = [Int: GenerationResult]()
        gen.generateBatch(requests, maxBatch: 3) { i, r in batched[i] = try? r.get() }
        XCTAssertEqual(batched[0]?.text, " cell, responsible for ")
        XCTAssertEqual(batched[0]?.stopString, "energy prod")
        XCTAssertEqual(batched[1]?.finishReason, .length)
        XCTAssertEqual(batched[2]?.text, "")
        XCTAssertEqual(batched[2]?.tokens.count, 1, "stopped on the first token")
        for i in requests.indices {
            let alone = try gen.generate(requests[i])
            XCTAssertEqual(batched[i]?.tokens, alone.tokens, "request \(i)")
            XCTAssertEqual(batched[i]?.text, alone.text)
            XCTAssertEqual(batched[i]?.finishReason, alone.finishReason)
            XCTAssertEqual(batched[i]?.stopString, alone.stopString)
        }
    }

    /// Every request gives exactly `maxTokens` tokens (zero included), reported once, whatever
    /// the batch size; with one slot, requests that finish on their first token still let the
    /// next ones run.
    func testMaxTokensEndsEachRequestAtItsLimit() throws {
        let gen = try generator()
        let limits = [1, 0, 2, 1, 7, 1]
        let requests = try limits.map { try request("Vitamin C deficiency causes", maxTokens: $0) }
        let longest = try gen.generate(try request("Vitamin C deficiency causes", maxTokens: 7)).tokens
        for maxBatch in [1, 4] {
            var results = [Int: GenerationResult](), reports = 0
            gen.generateBatch(requests, maxBatch: maxBatch) { i, r in
                reports += 1
                results[i] = try? r.get()
            }
            XCTAssertEqual(reports, requests.count, "maxBatch \(maxBatch)")
            for (i, n) in limits.enumerated() {
                XCTAssertEqual(results[i]?.tokens, Array(longest.prefix(n)), "request \(i), maxBatch \(maxBatch)")
                XCTAssertEqual(results[i]?.finishReason, .length)
            }
        }
    }

    /// A cancelled sequence ends at once with what it generated and frees its slot before the
    /// next step; the others are unaffected. `generateBatch`'s `shouldStop` cancels the active
    /// requests and skips the waiting ones.
    func testCancellationFreesTheSlotAtOnce() throws {
        let gen = try generator()
        let requests = [try request("The liver", maxTokens: 40), try request("Cancer cells", maxTokens: 14),
                        try request("Blood pressure is", maxTokens: 10)]
        let engine = BatchEngine(generator: gen, maxBatch: 2)
        let events = Events()
        engine.admit([(0, requests[0]), (1, requests[1])], report: events.report)
        for _ in 0..<3 { engine.step(report: events.report) }
        engine.cancel(where: { $0 == 0 }, report: events.report)
        let cancelled = try XCTUnwrap(events.results[0])
        XCTAssertEqual(cancelled.finishReason, .cancelled)
        XCTAssertEqual(cancelled.tokens, Array(try gen.generate(requests[0]).tokens.prefix(4)), "admission + 3 steps")
        XCTAssertEqual(engine.activeIDs, [1])
        XCTAssertEqual(engine.freeSlots, 1)
        engine.admit([(2, requests[2])], report: events.report)
        while !engine.activeIDs.isEmpty { engine.step(report: events.report) }
        for i in 1...2 { XCTAssertEqual(events.results[i]?.tokens, try gen.generate(requests[i]).tokens, "request \(i)") }

        // Stopping a whole batch: once request 0 finishes, the active ones end as cancelled and
        // the waiting ones never start.
        let batch = [try request("The liver", maxTokens: 2)] + Array(repeating: requests[0], count: 4)
        var results = [Int: GenerationResult]()
        gen.generateBatch(batch, maxBatch: 3, shouldStop: { results[0] != nil }) { i, r in results[i] = try? r.get() }
        XCTAssertEqual(Set(results.keys), [0, 1, 2])
        XCTAssertEqual(results[0]?.finishReason, .length)
        for i in 1...2 {
            XCTAssertEqual(results[i]?.finishReason, .cancelled)
            XCTAssertEqual(results[i]?.tokens.count, 2)
        }
    }

    /// Greedy and seeded sampling (temperature, top-k/p, min-p, penalties) mixed in one batch:
    /// each request samples with its own parameters and random state, as it does alone.
    func testPerRequestSamplingInOneBatch() throws {
        let gen = try generator()
        let samplings = [SamplingParameters(),
                         SamplingParameters(temperature: 0.9, topK: 40, topP: 0.95, seed: 1),
                         SamplingParameters(temperature: 1.2, minP: 0.05, repetitionPenalty: 1.3, seed: 2),
                         SamplingParameters(temperature: 0.7, frequencyPenalty: 0.5, seed: 3)]
        let prompts = ["Once upon a time", "The immune system", "Once upon a time", "Insulin is produced by"]
        let requests = try zip(prompts, samplings).map { try request($0, maxTokens: 16, sampling: $1) }
        let single = try requests.map { try gen.generate($0).tokens }
        var batched = [Int: [Int]]()
        gen.generateBatch(requests, maxBatch: 4) { i, r in batched[i] = try? r.get().tokens }
        XCTAssertEqual(requests.indices.map { batched[$0] ?? [] }, single)
        XCTAssertNotEqual(single[0], single[2], "same prompt, greedy vs sampled")
    }

    /// Requests are admitted in order as slots free up, and every active sequence gets one
    /// token per step: a long request neither holds up the queue nor is starved by it.
    func testFairnessAdmitsInOrderAndAdvancesEverySequenceEachStep() throws {
        let gen = try generator()
        let requests = [try request("The liver", maxTokens: 30)]
            + (try ["Cancer cells", "Proteins are made of", "The immune system", "Blood pressure is"].map { try request($0, maxTokens: 3) })
        let engine = BatchEngine(generator: gen, maxBatch: 2)
        var steps = 0, finishedAt = [Int: Int](), next = 0
        let report: BatchEngine.Report = { id, event in if case .finished = event { finishedAt[id] = steps } }
        while true {
            let admitted = next..<min(requests.count, next + engine.freeSlots)
            engine.admit(admitted.map { ($0, requests[$0]) }, report: report)
            next = admitted.upperBound
            if engine.activeIDs.isEmpty && next == requests.count { break }
            steps += 1
            engine.step(report: report)
        }
        // A 3-token request takes its admission and 2 steps; the long one its admission and 29.
        XCTAssertEqual(finishedAt, [1: 2, 2: 4, 3: 6, 4: 8, 0: 29])
    }
}
