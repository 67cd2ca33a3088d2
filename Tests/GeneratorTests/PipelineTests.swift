import Foundation
import Ingest
import VectorIndex
import XCTest
import TestSupport
@testable import Generator

/// End to end: a real PubMed file ingested into a temporary corpus, BM25 retrieval, the scripted
/// OpenAI-compatible server as the model, our seed set.
final class PipelineTests: XCTestCase {
    static let pubmed = RepositoryFiles.pubmedSample("xizhou_pubMR_pubmed_result.xml")

    func makeRetriever() throws -> Retriever {
        let corpus = try CorpusStore(path: tempPath("corpus") + ".sqlite")
        _ = try Ingester(store: corpus).ingest(paths: [Self.pubmed])
        return Retriever(vectors: try VectorStore(corpus: corpus), embedder: nil, index: nil)
    }

    func configuration(count: Int) -> SelfSpecializer.Configuration {
        var c = SelfSpecializer.Configuration()
        c.count = count; c.seed = 42; c.searchMode = .bm25; c.promptsPerRound = 3; c.passageBudget = 300
        return c
    }

    func lines(_ dir: String, _ file: String) throws -> [[String: Any]] {
        try String(contentsOfFile: (dir as NSString).appendingPathComponent(file), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    func testGroundedRunWritesCitedExamplesAndStats() throws {
        let server = try TestServer()
        let retriever = try makeRetriever()
        let seeds = try SeedLoader.load(path: Paths.seeds)
        let backend = OpenAIBackend(.init(baseURL: server.baseURL, model: "test", parallel: 3))
        let dir = tempPath("run")
        let config = configuration(count: 15)
        let store = try DatasetStore(directory: dir, settings: config.fingerprint(seedsFile: "s", model: backend.modelIdentifier, grounded: true), resume: false)
        var reports = 0
        let stats = try SelfSpecializer(backend: backend, retriever: retriever, seeds: seeds, configuration: config).run(into: store) { _ in reports += 1; return .more }
        XCTAssertGreaterThanOrEqual(stats.examples, 15)
        XCTAssertEqual(reports, stats.rounds)
        let examples = try lines(dir, "examples.jsonl")
        XCTAssertEqual(examples.count, stats.examples)
        let st = try retriever.vectors.corpus.db.prepare("SELECT pmid FROM documents")
        var pmids = Set<Int>()
        while try st.step() { pmids.insert(st.int(0)) }
        for e in examples {
            for key in ["instruction", "input", "output", "task", "passages", "model_sha256", "model", "settings"] { XCTAssertNotNil(e[key], key) }
            XCTAssertTrue(e["model_sha256"] is NSNull, "an endpoint has no model file hash")
            let passages = e["passages"] as! [[String: Any]]
            XCTAssertFalse(passages.isEmpty, "grounded example without passages")
            for p in passages { XCTAssertTrue(pmids.contains(p["pmid"] as! Int)); XCTAssertNotNil(p["passage_id"]); XCTAssertNotNil(p["score"]) }
            // A cited answer, or a demonstration's answer kept because the task shares its subject.
            let output = e["output"] as! String
            XCTAssertTrue(output.contains("[PMID \(passages[0]["pmid"] as! Int)]") || seeds.contains { $0.output == output }, output)
            let settings = e["settings"] as! [String: Any]
            XCTAssertEqual(settings["retrieval"] as? String, "bm25")
            // How it was made: the completions endpoint for both stages, the default demonstrations and stage-1 sampling.
            XCTAssertEqual(settings["prompt"] as? String, "completion")
            XCTAssertEqual(settings["demonstrations"] as? Int, 2)
            let brainstorm = settings["brainstorm"] as? [String: Any]
            XCTAssertEqual(brainstorm?["temperature"] as? Double, 0.5)
            XCTAssertEqual(brainstorm?["top_p"] as? Double, 0.9)
            XCTAssertEqual(brainstorm?["max_tokens"] as? Int, 384)
            XCTAssertEqual(brainstorm?["prompt"] as? String, "completion")
        }
        // Every filter the scripted model provokes was counted, and the counts add up.
        print("pipeline stats: \(stats.filtered), kept \(stats.instructionsKept)/\(stats.candidates), rouge \(stats.rougeLHistogram)")
        let provoked: [FilterReason] = [.refusal, .truncated, .banned, .similar, .assistantTalk, .missingInput, .copiesPrompt, .echo, .copiesDemonstration]
        for reason in provoked { XCTAssertGreaterThan(stats.filtered[reason.rawValue] ?? 0, 0, reason.rawValue) }
        let stage1 = ["too_short", "too_long", "banned", "assistant_talk", "copies_prompt", "missing_input", "duplicate", "near_duplicate", "rouge_l"].reduce(0) { $0 + (stats.filtered[$1] ?? 0) }
        XCTAssertEqual(stats.candidates, stats.instructionsKept + stage1)
        XCTAssertEqual(stats.instructionsKept, stats.responsesRequested)
        let stage2 = ["empty_response", "repetition", "truncated", "copies_passage", "copies_demonstration", "refusal", "echoes_prompt", "backend_error", "contaminated"].reduce(0) { $0 + (stats.filtered[$1] ?? 0) }
        XCTAssertEqual(stats.responsesRequested, stats.examples + stage2)
        XCTAssertEqual(stats.rougeLHistogram.reduce(0, +), stats.instructionsKept + (stats.filtered["rouge_l"] ?? 0))
        XCTAssertEqual(stats.leadingVerbs.values.reduce(0, +), stats.instructionsKept)
        // Every example carries a seed's task family, and the per-task counts add up.
        let families = Set(seeds.map(\.task))
        for e in examples { XCTAssertTrue(families.contains(e["task"] as? String ?? "-"), "\(e["task"] ?? "nil")") }
        XCTAssertEqual(stats.examplesByTask.values.reduce(0, +), stats.examples)
        // Per-stage time: each stage ran, and together they fit in the run's time.
        for stage in ["brainstorm", "retrieve", "respond"] { XCTAssertGreaterThan(stats.stageSeconds[stage] ?? 0, 0, stage) }
        XCTAssertLessThanOrEqual(stats.stageSeconds.values.reduce(0, +), stats.seconds + 1e-6)
        XCTAssertNotNil(stats.examplesPerMinute)
        let saved = try JSONDecoder().decode(DatasetStats.self, from: Data(contentsOf: URL(fileURLWithPath: (dir as NSString).appendingPathComponent("stats.json"))))
        XCTAssertEqual(saved, stats)
        // Kept instructions are mutually below the ROUGE-L threshold and differ from every seed.
        let kept = try lines(dir, "instructions.jsonl").map { $0["instruction"] as! String }
        let pool = kept + seeds.map(\.instruction)
        var worst = 0.0
        for (i, a) in kept.enumerated() { for (j, b) in pool.enumerated() where j != i { worst = max(worst, RougeL.score(a, b)) } }
        print("max ROUGE-L among kept instructions and seeds: \(worst)")
        XCTAssertLessThan(worst, 0.7)
        // A second run into the same directory without --resume is refused.
        XCTAssertThrowsError(try DatasetStore(directory: dir, settings: "x", resume: false))
    }

    /// A run stopped after 2 rounds (with a half-written line left behind, as by a kill) and
    /// resumed gives byte-for-byte the dataset of an uninterrupted run with the same seed.
    func testResumeReproducesTheUninterruptedRun() throws {
        let server = try TestServer()
        let retriever = try makeRetriever()
        let seeds = try SeedLoader.load(path: Paths.seeds)
        let backend = OpenAIBackend(.init(baseURL: server.baseURL, model: "test", parallel: 2))
        let config = configuration(count: 12)
        let fp = config.fingerprint(seedsFile: "s", model: backend.modelIdentifier, grounded: true)
        let full = tempPath("full"), parts = tempPath("parts")
        _ = try SelfSpecializer(backend: backend, retriever: retriever, seeds: seeds, configuration: config)
            .run(into: try DatasetStore(directory: full, settings: fp, resume: false))
        do {
            let store = try DatasetStore(directory: parts, settings: fp, resume: false)
            _ = try SelfSpecializer(backend: backend, retriever: retriever, seeds: seeds, configuration: config).run(into: store) { $0.round >= 1 ? .stop : .more }
            XCTAssertEqual(store.progress.nextRound, 2)
        }
        let h = FileHandle(forWritingAtPath: (parts as NSString).appendingPathComponent("examples.jsonl"))!
        h.seekToEndOfFile(); h.write(Data("{\"instruction\": \"half a li".utf8)); h.closeFile()
        XCTAssertThrowsError(try DatasetStore(directory: parts, settings: fp + " changed", resume: true)) {
            XCTAssertTrue(($0 as? GeneratorError)?.errorDescription?.contains("other settings") == true)
        }
        let resumed = try DatasetStore(directory: parts, settings: fp, resume: true)
        let stats = try SelfSpecializer(backend: backend, retriever: retriever, seeds: seeds, configuration: config).run(into: resumed)
        let a = try String(contentsOfFile: (full as NSString).appendingPathComponent("examples.jsonl"), encoding: .utf8)
        let b = try String(contentsOfFile: (parts as NSString).appendingPathComponent("examples.jsonl"), encoding: .utf8)
        XCTAssertEqual(a, b)
        XCTAssertEqual(stats.examples, a.split(separator: "\n").count)
        XCTAssertThrowsError(try DatasetStore(directory: tempPath("none"), settings: fp, resume: true))
    }

    func testUngroundedRunAndContaminationDrops() throws {
        let server = try TestServer()
        let seeds = try SeedLoader.load(path: Paths.seeds)
        let backend = OpenAIBackend(.init(baseURL: server.baseURL, model: "test", chat: true))
        // Evaluation data that contains what the scripted model writes about two topics.
        var contamination = ContaminationIndex()
        for topic in ["asthma", "breast cancer", "heart failure"] {
            for n in 100..<1000 { for m in 3..<23 { contamination.add("A study of \(n) patients with \(topic) reported outcomes after \(m) months of follow-up.") } }
        }
        let dir = tempPath("bare")
        var config = configuration(count: 10)
        config.promptsPerRound = 2
        let stats = try SelfSpecializer(backend: backend, retriever: nil, seeds: seeds, configuration: config, contamination: contamination)
            .run(into: try DatasetStore(directory: dir, settings: "bare", resume: false))
        let examples = try lines(dir, "examples.jsonl")
        XCTAssertGreaterThanOrEqual(examples.count, 10)
        for e in examples {
            XCTAssertEqual((e["passages"] as! [Any]).count, 0)
            let settings = e["settings"] as! [String: Any]
            XCTAssertEqual(settings["retrieval"] as? String, "none")
            XCTAssertEqual(settings["prompt"] as? String, "chat", "the chat endpoint")
            XCTAssertEqual((settings["brainstorm"] as? [String: Any])?["prompt"] as? String, "chat")
            for topic in ["asthma", "breast cancer", "heart failure"] { XCTAssertFalse((e["input"] as! String).contains("with \(topic) reported outcomes")) }
        }
        XCTAssertGreaterThan(stats.filtered["contaminated"] ?? 0, 0)
    }

    /// A line written before the settings recorded the prompt form, demonstrations and stage 1 still reads.
    func testExamplesOfEarlierVersionsDecode() throws {
        let old = #"{"instruction":"List two statins.","input":"","output":"Atorvastatin and simvastatin.","task":null,"passages":[],"model_sha256":null,"model":"m","settings":{"temperature":0,"top_p":1,"max_tokens":320,"retrieval":"none","k":3,"seed":0,"round":4}}"#
        let e = try JSONDecoder().decode(Example.self, from: Data(old.utf8))
        XCTAssertEqual(e.settings.round, 4)
        XCTAssertNil(e.settings.prompt)
        XCTAssertNil(e.settings.brainstorm)
        let again = try JSONDecoder().decode(Example.self, from: JSONEncoder().encode(e))
        XCTAssertEqual(again, e)
    }

    /// `--instructions`: an earlier run's instructions answered again, in order, with no brainstorming.
    func testGivenInstructionsSkipBrainstormingAndEndWhenUsedUp() throws {
        let server = try TestServer()
        let seeds = try SeedLoader.load(path: Paths.seeds)
        let backend = OpenAIBackend(.init(baseURL: server.baseURL, model: "test", parallel: 3))
        let first = tempPath("first")
        _ = try SelfSpecializer(backend: backend, retriever: nil, seeds: seeds, configuration: configuration(count: 8))
            .run(into: try DatasetStore(directory: first, settings: "a", resume: false))
        let given = try InstructionLoader.load(path: (first as NSString).appendingPathComponent("instructions.jsonl"))
        XCTAssertGreaterThanOrEqual(given.count, 8)
        let again = tempPath("again")
        var config = configuration(count: 1000)
        config.promptsPerRound = 1  // 4 instructions a round
        let stats = try SelfSpecializer(backend: backend, retriever: nil, seeds: seeds, configuration: config, instructions: given)
            .run(into: try DatasetStore(directory: again, settings: "b", resume: false))
        XCTAssertEqual(stats.brainstormPrompts, 0)
        XCTAssertEqual(stats.instructionsKept, given.count)
        XCTAssertEqual(stats.responsesRequested, given.count)
        XCTAssertEqual(stats.rounds, (given.count + 3) / 4)
        XCTAssertEqual(try InstructionLoader.load(path: (again as NSString).appendingPathComponent("instructions.jsonl")), given)
        let answeredLines = try lines(again, "examples.jsonl")
        for e in answeredLines { XCTAssertTrue((e["settings"] as! [String: Any])["brainstorm"] == nil, "given, not brainstormed") }
        let answered = answeredLines.map { InstructionCandidate(instruction: $0["instruction"] as! String, input: $0["input"] as! String) }
        XCTAssertGreaterThan(answered.count, 0)
        var rest = given[...]
        for a in answered {  // in the given order
            guard let i = rest.firstIndex(of: a) else { return XCTFail("\(a) not among the given instructions, in order") }
            rest = rest[(i + 1)...]
        }
        // A bad instructions file names its line.
        let bad = tempPath("bad") + ".jsonl"
        try Data("{\"instruction\": \"List the genes.\", \"input\": \"\"}\n{\"input\": \"x\"}\n".utf8).write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try InstructionLoader.load(path: bad)) {
            XCTAssertEqual(($0 as? GeneratorError)?.errorDescription, "\(bad):2: missing string field \"instruction\"")
        }
    }

    func testUnreachableEndpointStopsWithAClearErrorAndKeepsProgress() throws {
        let seeds = try SeedLoader.load(path: Paths.seeds)
        let backend = OpenAIBackend(.init(baseURL: URL(string: "http://127.0.0.1:\(closedPort())")!, model: "m", attempts: 1))
        let dir = tempPath("down")
        XCTAssertThrowsError(try SelfSpecializer(backend: backend, retriever: nil, seeds: seeds, configuration: configuration(count: 5))
            .run(into: try DatasetStore(directory: dir, settings: "down", resume: false))) {
            XCTAssertTrue(($0 as? GeneratorError)?.errorDescription?.contains("cannot reach") == true, "\($0)")
        }
        let progress = try JSONDecoder().decode(DatasetStore.Progress.self, from: Data(contentsOf: URL(fileURLWithPath: (dir as NSString).appendingPathComponent("progress.json"))))
        XCTAssertEqual(progress.nextRound, 3)
        XCTAssertEqual(progress.stats.filtered["backend_error"], 3 * configuration(count: 5).promptsPerRound)
    }

    func testBrainstormPromptsShrinkOnlyNearTheEnd() {
        var c = SelfSpecializer.Configuration()
        // Stage 1: plain completion prompts at 0.5 / 0.9 (the paper's 1.0 / 0.98 is kept as
        // `paperBrainstorm`); greedy responses in the chat template.
        XCTAssertEqual([c.brainstormSampling.temperature, c.brainstormSampling.topP], [0.5, 0.9])
        XCTAssertFalse(c.brainstormSampling.chat)
        XCTAssertEqual([SamplingSettings.paperBrainstorm.temperature, SamplingSettings.paperBrainstorm.topP], [1.0, 0.98])
        XCTAssertEqual(c.respondSampling.temperature, 0)
        XCTAssertTrue(c.respondSampling.chat)
        XCTAssertFalse(c.fingerprint(seedsFile: "s", model: "m", grounded: true).contains("response_prompt"))
        XCTAssertTrue(c.fingerprint(seedsFile: "s", model: "m", grounded: true).hasSuffix("brainstorm=0.5/0.9/384 respond=0.0/1.0/320 brainstorm_prompt=completion"))
        // Every setting that changes the data changes the fingerprint; the settings of a run made
        // before the stage-1 defaults changed give its old fingerprint back (no suffix).
        let base = c.fingerprint(seedsFile: "s", model: "m", grounded: true)
        var variants: [SelfSpecializer.Configuration] = []
        for change in 0..<5 {
            var v = c
            switch change {
            case 0: v.respondSampling.temperature = 0.2
            case 1: v.demonstrations = 0
            case 2: v.respondSampling.chat = false
            case 3: v.brainstormSampling.chat = true
            default: v.brainstormSampling.topP = 0.95
            }
            variants.append(v)
        }
        let prints = variants.map { $0.fingerprint(seedsFile: "s", model: "m", grounded: true) }
        XCTAssertEqual(Set(prints + [base]).count, 6, "\(prints)")
        var paper = c
        paper.brainstormSampling = .paperBrainstorm
        paper.brainstormSampling.chat = true
        XCTAssertTrue(paper.fingerprint(seedsFile: "s", model: "m", grounded: true).hasSuffix("brainstorm=1.0/0.98/384 respond=0.0/1.0/320"))
        XCTAssertEqual(c.promptsPerRound, 8)
        XCTAssertEqual(c.tasksPerPrompt, 4)
        // Before a full round: 4 tasks per prompt give about half an example (1.25 x needed / 0.5).
        XCTAssertEqual([5000, 16, 3, 2, 1, 0].map { c.prompts(needed: $0) }, [8, 8, 8, 5, 3, 3])
        // Then the run's own yield: 10 examples from 40 prompts is 0.25 per prompt.
        XCTAssertEqual([16, 2, 1].map { c.prompts(needed: $0, examples: 10, promptsSoFar: 40) }, [8, 8, 5])
        // 30 from 40 is 0.75 per prompt; a run that kept nothing counts as 0.05 per prompt.
        XCTAssertEqual([4, 1].map { c.prompts(needed: $0, examples: 30, promptsSoFar: 40) }, [7, 2])
        XCTAssertEqual(c.prompts(needed: 1, examples: 0, promptsSoFar: 40), 8)
        c.promptsPerRound = 3
        XCTAssertEqual(c.prompts(needed: 5000), 3)
    }
}
