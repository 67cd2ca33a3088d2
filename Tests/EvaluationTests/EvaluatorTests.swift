import Foundation
import LLM
import XCTest
@testable import Evaluation

/// The evaluator with the real SmolLM2 on small samples of the real development sets.
final class EvaluatorTests: XCTestCase {
    func evaluator(shots: Int = 0) throws -> Evaluator {
        let (model, tokenizer, template) = try SmolLM2.load()
        return Evaluator(model: model, tokenizer: tokenizer, template: template, settings: EvalSettings(shots: shots, seed: 0))
    }

    /// 20 PubMedQA items zero-shot, then a report: predictions agree with the option scores, the
    /// metrics recompute from the predictions, the intervals hold the point estimates, and the JSON
    /// round-trips.
    func testPubMedQAReport() throws {
        let data = try EvalDataLoader.load(task: .pubmedqa, path: Paths.eval("pubmedqa/pqal_dev.json")).sample(limit: 20, seed: 0)
        let run = try evaluator().run(data, demos: nil)
        XCTAssertEqual(run.predictions.count, 20)
        guard case let .labels(items) = data.items, case let .labels(gold, predicted, count) = run.outcomes else { return XCTFail() }
        XCTAssertEqual(gold, items.map(\.gold))
        XCTAssertEqual(count, 3)
        for (p, item) in zip(run.predictions, items) {
            let scores = try XCTUnwrap(p.scores)
            XCTAssertEqual(p.byScoring?["labels"], item.labels[scores.indices.max { scores[$0] < scores[$1] }!])
            XCTAssertEqual(p.predicted, p.byScoring?[EvalTask.pubmedqa.primaryScoring.rawValue])
        }
        let accuracy = Double(zip(gold, predicted).filter { $0 == $1 }.count) / 20
        print(String(format: "PubMedQA 20 items zero-shot: accuracy %.3f, %.2f items/s", accuracy, run.itemsPerSecond))

        let info = EvalReport.ModelInfo(name: "base", model: Paths.smolLM2, adapter: nil, promptFormat: "chatml")
        let report = EvalReport.build(models: [info], datasets: [data], runs: [[run]], settings: EvalSettings(), limit: 20)
        let task = try XCTUnwrap(report.tasks.first)
        XCTAssertEqual(task.n, 20)
        XCTAssertEqual(task.primaryMetric, "accuracy")
        XCTAssertEqual(task.results.map(\.scoring), Scoring.allCases.map(\.rawValue))
        let primary = try XCTUnwrap(task.results.first { $0.scoring == task.primaryScoring })
        let acc = try XCTUnwrap(primary.metrics.first { $0.name == "accuracy" })
        XCTAssertEqual(acc.value, accuracy, accuracy: 1e-12)
        for m in primary.metrics {
            XCTAssertLessThanOrEqual(m.ciLow, m.value + 1e-12, m.name)
            XCTAssertGreaterThanOrEqual(m.ciHigh, m.value - 1e-12, m.name)
        }
        let json = try EvalReport.encoder().encode(report)
        XCTAssertEqual(try EvalReport.decoder().decode(EvalReport.self, from: json), report)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        XCTAssertEqual(object["schema"] as? String, "selfspec-eval/2")
        let metric = try XCTUnwrap(((object["tasks"] as? [[String: Any]])?[0]["results"] as? [[String: Any]])?[0]["metrics"] as? [[String: Any]])
        XCTAssertNotNil(metric[0]["ci_low"] as? Double)
        XCTAssertTrue(report.markdown().contains("| pubmedqa | labels"), report.markdown())
        XCTAssertTrue(report.markdown().contains("| \(task.primaryScoring) (primary) | accuracy | 20 |"), report.markdown())
    }

    /// NER on 6 sentences, 1-shot from the train split: every gold entity is a hit or a miss.
    func testNEROneShot() throws {
        let data = try EvalDataLoader.load(task: .ner, path: Paths.eval("ner/BC5CDR-chem/devel.tsv")).sample(limit: 6, seed: 1)
        let demos = try DemonstrationPool.candidates(try EvalDataLoader.load(task: .ner, path: Paths.eval("ner/BC5CDR-chem/train.tsv")),
                                                     excluding: data)
        let run = try evaluator(shots: 1).run(data, demos: demos)
        guard case let .sentences(s) = data.items, case let .spans(counts) = run.outcomes else { return XCTFail() }
        XCTAssertEqual(counts.count, 6)
        for (c, sentence) in zip(counts, s) { XCTAssertEqual(c.truePositives + c.falseNegatives, sentence.entities.count) }
        let total = counts.reduce(into: SpanCounts()) { $0 += $1 }
        XCTAssertEqual(run.scored.map(\.scoring), [.generate])
        let failures = try XCTUnwrap(run.scored[0].parseFailures)
        XCTAssertTrue((0...6).contains(failures), "one answer per sentence and type")
        XCTAssertNil(run.scored[0].labelCounts)
        print("NER 6 sentences 1-shot: \(total), F1 \(total.f1), \(failures) unparsed; first answer: \(run.predictions[0].predicted)")
    }

    func testShotsNeedSeparateDemonstrations() throws {
        let data = try EvalDataLoader.load(task: .gad, path: Paths.eval("gad/dev.jsonl")).sample(limit: 2, seed: 0)
        XCTAssertThrowsError(try evaluator(shots: 2).run(data, demos: nil)) { error in
            XCTAssertEqual(error as? EvaluationError, .missingDemonstrations(task: "gad", shots: 2))
            XCTAssertEqual(error.localizedDescription, "gad: --shots 2 needs demonstrations from a separate file (--demos gad=FILE)")
        }
        let few = data.selecting([0])
        XCTAssertThrowsError(try evaluator(shots: 2).run(data, demos: few)) { error in
            XCTAssertEqual(error as? EvaluationError, .tooFewDemonstrations(file: data.file, task: "gad", available: 1, shots: 2))
        }
    }
}
