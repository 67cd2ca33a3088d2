import Foundation
import XCTest
import LLM
import Tensor
import TestSupport
@testable import Benchmarks

/// The benchmark library without the CLI: small runs, their results and their errors.
final class BenchmarksTests: XCTestCase {
    func tempPath(_ tag: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))").path
        removeAfterTest(path)
        return path
    }

    // MARK: Parsing

    func testParseCountsArticles() throws {
        let r = try PubMedParseBenchmark.run(file: RepositoryFiles.pubmedSample("qi29_main_finding_pubmed_result.xml"))
        XCTAssertEqual(r.articles, 121)
        XCTAssertGreaterThan(r.peakRSSMB, 0)
    }

    // MARK: Vector files

    func testVectorFileRoundTripAndPartialRows() throws {
        let path = tempPath("vectors")
        try VectorFile.write([Float](repeating: 0.5, count: 12), to: path)
        XCTAssertEqual(try VectorFile.read(path, dimension: 4).count, 12)
        XCTAssertThrowsError(try VectorFile.read(path, dimension: 5)) { error in
            XCTAssertEqual(error as? BenchmarkError, .partialRows(file: path, bytes: 48, dimension: 5))
            XCTAssertEqual(error.localizedDescription, "\(path): 48 bytes is not a whole number of 5-d float32 rows")
        }
        XCTAssertThrowsError(try VectorFile.read(path + ".missing", dimension: 4)) { error in
            XCTAssertTrue(error.localizedDescription.hasPrefix(path + ".missing: "), error.localizedDescription)
        }
    }

    // MARK: Search benchmarks

    func testScaleRowsAreSeededAndExactFindsItself() throws {
        var a = SplitMix64(seed: 7), b = SplitMix64(seed: 7)
        let x = ScaleBenchmark.unitVectors(3, 16, seed: &a), y = ScaleBenchmark.unitVectors(3, 16, seed: &b)
        XCTAssertEqual(x, y)
        for row in 0..<3 {
            let norm = (0..<16).map { x[row * 16 + $0] * x[row * 16 + $0] }.reduce(0, +)
            XCTAssertEqual(norm, 1, accuracy: 1e-5)
        }
        var seen: [Int] = []
        let rows = try ScaleBenchmark.run(sizes: [300], dimension: 16, queries: 20, ef: 64, seed: 1) { seen.append($0.n) }
        XCTAssertEqual(seen, [300])
        XCTAssertGreaterThan(rows[0].hnswRecall, 0.9)
        // The stored vectors as queries: exact search finds each one first.
        var s = SplitMix64(seed: 3)
        let base = ScaleBenchmark.unitVectors(50, 16, seed: &s)
        let (r, ids) = try ExactSearchBenchmark.run(base: base, queries: base, dimension: 16, k: 5, single: 10)
        XCTAssertEqual([r.n, r.q], [50, 50])
        XCTAssertEqual(ids.count, 250)
        XCTAssertEqual((0..<50).map { ids[$0 * 5] }, (0..<50).map(Int64.init))
        let h = try HNSWBenchmark.run(base: base, queries: base, dimension: 16, k: 5, efValues: [16, 32])
        XCTAssertEqual(h.points.map(\.ef), [16, 32])
        XCTAssertTrue(h.points.allSatisfy { $0.recall > 0.9 }, "\(h.points)")
    }

    func testPubMedQAQuestionsSplitByParity() throws {
        let file = RepositoryFiles.eval("pubmedqa/pqal_dev.json")
        let all = try PubMedQARetrievalBenchmark.questions(file: file, split: .all)
        XCTAssertEqual(all.count, 500)
        XCTAssertEqual(all.map(\.pmid), all.map(\.pmid).sorted())
        let even = try PubMedQARetrievalBenchmark.questions(file: file, split: .even)
        let odd = try PubMedQARetrievalBenchmark.questions(file: file, split: .odd)
        XCTAssertEqual(even.count + odd.count, 500)
        XCTAssertTrue(even.allSatisfy { $0.pmid % 2 == 0 })
        XCTAssertThrowsError(try PubMedQARetrievalBenchmark.questions(file: RepositoryFiles.eval("gad/dev.jsonl"), split: .all)) { error in
            XCTAssertTrue(error.localizedDescription.contains("not pubmedqa format at top level"), error.localizedDescription)
        }
    }

    // MARK: Run report

    func testRunReportOfAnEmptyFolderAndABrokenFile() throws {
        let dir = tempPath("run")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let report = try RunReport(directory: dir)
        XCTAssertEqual(report.summaryLines(), ["corpus: not ingested", "dataset: not generated", "training: not run", "evaluation: not run"])
        XCTAssertTrue(report.html().contains("<h2>1. Corpus</h2>"))
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        try Data("{oops".utf8).write(to: URL(fileURLWithPath: dir + "/data/stats.json"))
        XCTAssertThrowsError(try RunReport(directory: dir)) { error in
            XCTAssertTrue("\(error)".hasPrefix(dir + "/data/stats.json: "), "\(error)")
        }
    }

    // MARK: LLM

    func testLLMBenchmarkOnSmolLM2() throws {
        let file = try GGUFFile(path: RepositoryFiles.model("SmolLM2-135M-Instruct.Q4_1.gguf"))
        let r = try LLMBenchmark.run(model: loadLanguageModel(file: file), tokenizer: TokenizerFactory.make(metadata: file.metadata),
                                     promptTokens: 32, decodeTokens: 4, repeats: 1, batch: 2, batchTokens: 3, memorySequences: 2, memoryTokens: 40)
        XCTAssertEqual(r.prefillTokens, 32)
        XCTAssertEqual(r.decodeTokens, 4)
        XCTAssertEqual(r.batchSequences, 2)
        XCTAssertGreaterThan(r.prefillTokensPerSecond, 0)
        XCTAssertGreaterThan(r.batchTokensPerSecond, 0)
        XCTAssertGreaterThan(r.memoryPeakRSSMB, 0)
    }
}
