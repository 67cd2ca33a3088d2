import XCTest
@testable import LLM
@testable import Tuner

/// JSONL parsing, chat rendering, response masks, truncation, errors naming file:line, split, batches.
final class DatasetTests: XCTestCase {
    func loader(maxLength: Int = 256) throws -> DatasetLoader {
        let file = try GGUFFile(path: try TestPaths.smolLM2Path())
        return DatasetLoader(tokenizer: try TokenizerFactory.make(metadata: file.metadata),
                             template: try ChatTemplate(metadata: file.metadata), maxLength: maxLength)
    }

    /// The golden example, as a `messages` line, renders to exactly the golden ids and labels.
    func testGoldenExampleMatchesTransformersChatTemplate() throws {
        let golden = try TestPaths.json("smollm2_lora_golden.json")
        let ids = try XCTUnwrap(golden["ids"] as? [Int]), labels = try XCTUnwrap(golden["labels"] as? [Int])
        let l = try loader()
        XCTAssertEqual(l.template.defaultSystemPrompt, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        let ex = try XCTUnwrap(l.example([.user("Which enzyme does aspirin inhibit?"),
                                          .assistant("Aspirin irreversibly acetylates cyclooxygenase (COX-1 and COX-2), blocking prostaglandin synthesis.")], line: 1))
        XCTAssertEqual(ex.ids.map(Int.init), ids)
        let shifted = (0..<ids.count).map { $0 + 1 < ids.count ? labels[$0 + 1] : -100 }
        XCTAssertEqual(ex.targets.map(Int.init), shifted)
    }

    func testInstructionFormAndTruncation() throws {
        let tmp = try TemporaryDirectory(self)
        let url = tmp.file("d.jsonl")
        try """
        {"instruction": "Name the enzyme aspirin inhibits.", "input": "", "output": "Cyclooxygenase."}
        {"instruction": "Summarise.", "input": "Aspirin acetylates COX-1 and COX-2.", "output": "Aspirin blocks both COX isoforms by acetylation, which stops prostaglandin synthesis in platelets and tissue."}

        """.write(to: url, atomically: true, encoding: .utf8)
        let full = try loader().load(path: url.path)
        XCTAssertEqual(full.examples.count, 2)
        XCTAssertEqual(full.truncated, 0)
        let prompt = try loader().example([.user("Summarise.\n\nAspirin acetylates COX-1 and COX-2.")], line: 0)
        XCTAssertNil(prompt, "no assistant message: nothing to train on")
        // Cut so that only part of the second response survives: the prompt is kept, the end dropped.
        let promptLength = full.examples[1].targets.firstIndex { $0 != Ops.ignoreIndex }! + 1
        let cut = try loader(maxLength: promptLength + 3).load(path: url.path)
        XCTAssertEqual(cut.truncated, 1, "the first example fits")
        XCTAssertEqual(cut.examples.last?.ids, Array(full.examples[1].ids.prefix(promptLength + 3)))
        XCTAssertEqual(cut.examples.last?.targets.filter { $0 != Ops.ignoreIndex }.count, 3, "three response tokens kept")
        // Too short for any response token: skipped, and an all-skipped file is an error.
        XCTAssertThrowsError(try loader(maxLength: 10).load(path: url.path)) { error in
            guard case TunerError.emptyDataset(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, url.path)
        }
    }

    func testMalformedLinesNameFileAndLine() throws {
        let tmp = try TemporaryDirectory(self)
        let cases: [(String, Int, String)] = [
            ("{\"instruction\": \"a\", \"output\": \"b\"}\n\n{\"instruction\": \"a\", \"output\": \"b\"}\n", 2, "empty line"),
            ("{\"instruction\": \"a\", \"output\": \"b\"}\n{not json\n", 2, "not a JSON object"),
            ("{\"instruction\": \"a\"}\n", 1, "output"),
            ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n", 1, "assistant"),
            ("{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}\n", 1, "unknown role"),
        ]
        for (i, (text, line, fragment)) in cases.enumerated() {
            let url = tmp.file("bad\(i).jsonl")
            try text.write(to: url, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try loader().load(path: url.path)) { error in
                guard case TunerError.malformedData(let path, let l, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(path, url.path)
                XCTAssertEqual(l, line, "case \(i)")
                let message = error.localizedDescription
                XCTAssertTrue(message.hasPrefix("\(url.path):\(line):"), message)
                XCTAssertTrue(message.contains(fragment), message)
            }
        }
    }

    func testSplitAndLengthBucketedBatches() throws {
        let data = try loader().load(path: TestPaths.repoRoot.appendingPathComponent("corpora/seeds/biomedical.jsonl").path)
        let (train, val) = splitHeldOut(data.examples, fraction: 0.1, seed: 7)
        XCTAssertEqual(train.count + val.count, data.examples.count)
        XCTAssertEqual(val.count, Int((Double(data.examples.count) * 0.1).rounded()))
        XCTAssertEqual(splitHeldOut(data.examples, fraction: 0.1, seed: 7).validation, val, "same seed, same split")
        let plan = BatchPlan(examples: train, batchSize: 4, seed: 1)
        XCTAssertEqual(plan.batches.flatMap { $0 }.sorted(), Array(train.indices))
        XCTAssertEqual(plan.order(epoch: 3), plan.order(epoch: 3))
        XCTAssertNotEqual(plan.order(epoch: 0), plan.order(epoch: 1))
        // Bucketing: padding of bucketed batches is far below that of batches in file order.
        func padding(_ batches: [[Int]]) -> Int {
            batches.reduce(0) { sum, b in
                let lengths = b.map { train[$0].ids.count }
                return sum + lengths.count * lengths.max()! - lengths.reduce(0, +)
            }
        }
        let fileOrder = stride(from: 0, to: train.count, by: 4).map { Array($0..<min($0 + 4, train.count)) }
        print("padding tokens: bucketed \(padding(plan.batches)), file order \(padding(fileOrder))")
        XCTAssertLessThan(padding(plan.batches), padding(fileOrder) / 2)
    }
}
