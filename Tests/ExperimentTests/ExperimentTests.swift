import Evaluation
import Experiment
import Foundation
import TestSupport
import XCTest

/// `experiments/smoke.json` end to end with the real SmolLM2 model: corpus ingest, mining,
/// curation, 3 LoRA steps, base vs specialist on 8 items of each dev set, the report; then resume.
final class ExperimentTests: XCTestCase {
    private func temporaryRuns() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("experiment-\(getpid())-\(UUID().uuidString.prefix(8))").path
        removeAfterTest(dir)
        return dir
    }

    private func smokeConfig() throws -> ExperimentConfig {
        _ = try RepositoryFiles.model("SmolLM2-135M-Instruct.Q4_1.gguf")
        return try ExperimentConfig.load(path: RepositoryFiles.root.appendingPathComponent("experiments/smoke.json").path,
                                         root: RepositoryFiles.root.path)
    }

    func testSmokeExperimentRunsEndToEndAndResumes() throws {
        let config = try smokeConfig()
        let runs = temporaryRuns()
        let start = Date()
        let report = try ExperimentRunner(config: config, configPath: "experiments/smoke.json", runsDirectory: runs).run()
        print("smoke experiment: \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        print(report.markdown())

        // Stages, in order, all run this time, each timed.
        XCTAssertEqual(report.stages.map(\.stage), ["corpus", "data-mined", "curate", "tune", "eval"])
        XCTAssertEqual(Set(report.stages.map(\.status)), ["ran"])
        for s in report.stages { XCTAssertGreaterThan(s.seconds, 0, s.stage) }
        // Data: about 40 mined examples, curated, trained for 3 steps.
        XCTAssertEqual(report.data.first?.examples, 40)
        XCTAssertGreaterThan(report.data.first?.candidates ?? 0, 40)
        let curate = try XCTUnwrap(report.curate.first)
        XCTAssertEqual(curate.recipes.first?.input, 40)
        XCTAssertEqual(curate.kept + (curate.recipes.first?.filtered.values.reduce(0, +) ?? 0), 40)
        XCTAssertEqual(report.training.first?.curve.map(\.step), [1, 2, 3])
        XCTAssertTrue(FileManager.default.fileExists(atPath: try XCTUnwrap(report.training.first?.adapterPath)))
        // One table per task with the specialist's paired delta, its CI and p-value.
        XCTAssertEqual(report.tasks.map(\.task), ["pubmedqa", "mcq", "gad", "ner"])
        for t in report.tasks {
            XCTAssertEqual(t.n, 8, t.task)
            let primary = try XCTUnwrap(t.rows.first { $0.scoring == t.primaryScoring && $0.metric == t.primaryMetric }, t.task)
            XCTAssertEqual(primary.values.map(\.model), ["base", "specialist"])
            let d = try XCTUnwrap(primary.deltas.first, t.task)
            XCTAssertEqual(d.model, "specialist")
            XCTAssertTrue(d.ciLow.isFinite && d.ciHigh.isFinite && d.ciLow <= d.ciHigh, "\(t.task): \(d)")
            XCTAssertTrue((0...1).contains(d.pValue), "\(t.task): \(d)")
            for v in primary.values { XCTAssertTrue(v.ciLow <= v.value + 1e-9 && v.value <= v.ciHigh + 1e-9, "\(t.task): \(v)") }
            // Label tasks carry the best always-one-label value of each metric (a collapse reaches at most this).
            let baselines = report.eval.tasks.first { $0.task == t.task }?.baselines ?? []
            if t.task == "ner" { XCTAssertNil(primary.bestConstant) } else {
                let c = try XCTUnwrap(primary.bestConstant, t.task)
                XCTAssertEqual(c.value, baselines.compactMap { $0.metrics[t.primaryMetric] }.max())
            }
        }
        XCTAssertEqual(report.eval.schema, "selfspec-eval/2")
        let dir = URL(fileURLWithPath: runs).appendingPathComponent("smoke")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("report.json"))) as? [String: Any])
        XCTAssertEqual(json["schema"] as? String, "selfspec-experiment/1")
        for key in ["stages", "data", "curate", "training", "tasks", "eval"] { XCTAssertNotNil(json[key], key) }
        let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<svg") && html.contains("Task: pubmedqa"))
        XCTAssertTrue(try String(contentsOf: dir.appendingPathComponent("report.md"), encoding: .utf8).contains("Δ specialist − base"))
        XCTAssertTrue(try String(contentsOf: dir.appendingPathComponent("report.md"), encoding: .utf8).contains("specialist − best single label"))

        // The same configuration again: every stage is skipped (the state files say done, same hash).
        let again = try ExperimentRunner(config: config, configPath: "experiments/smoke.json", runsDirectory: runs).run()
        XCTAssertEqual(again.stages.map(\.status), Array(repeating: "skipped", count: 5))
        XCTAssertEqual(again.stages.map(\.hash), report.stages.map(\.hash))
        XCTAssertEqual(String(describing: again.tasks), String(describing: report.tasks), "the report is rebuilt from the same outputs")
        let state = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("state/tune.json"))) as? [String: Any])
        XCTAssertEqual(state["status"] as? String, "done")

        // Fewer tune steps: tune and eval rerun, the data stages are skipped.
        var changed = config
        changed.tune.steps = 2
        let third = try ExperimentRunner(config: changed, configPath: "experiments/smoke.json", runsDirectory: runs).run()
        XCTAssertEqual(third.stages.map(\.status), ["skipped", "skipped", "skipped", "ran", "ran"])
        XCTAssertEqual(third.training.first?.curve.map(\.step), [1, 2])
        XCTAssertNotEqual(third.stages[3].hash, report.stages[3].hash)
    }

    func testBadConfigurationsNameTheKeyAndFile() throws {
        let dir = temporaryRuns()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let root = RepositoryFiles.root.path
        func error(_ json: String) -> String {
            let path = (dir as NSString).appendingPathComponent("bad.json")
            try? Data(json.utf8).write(to: URL(fileURLWithPath: path))
            do { _ = try ExperimentConfig.load(path: path, root: root); return "no error" } catch { return error.localizedDescription }
        }
        let model = #""model": "models/SmolLM2-135M-Instruct.Q4_1.gguf""#
        let eval = #""eval": {"tasks": {"pubmedqa": {"file": "corpora/eval/pubmedqa/pqal_dev.json", "limit": 4}}}"#
        let data = #""data": [{"recipe": "dataset", "path": "corpora/seeds/biomedical.jsonl"}]"#
        let ok = error("{\(model), \(data), \(eval)}")
        XCTAssertEqual(ok, "no error")
        let unknown = error("{\(model), \(data), \(eval), \"tune\": {\"stepz\": 3}}")
        XCTAssertTrue(unknown.contains("bad.json") && unknown.contains("'tune.stepz'") && unknown.contains("unknown key"), unknown)
        let type = error("{\(model), \(data), \(eval), \"tune\": {\"steps\": \"many\"}}")
        XCTAssertTrue(type.contains("'tune.steps'") && type.contains("expected an integer"), type)
        let missing = error(#"{"model": "models/none.gguf", \#(data), \#(eval)}"#)
        XCTAssertTrue(missing.contains("models/none.gguf") && missing.contains("model"), missing)
        let recipe = error(#"{\#(model), "data": [{"recipe": "dream"}], \#(eval)}"#)
        XCTAssertTrue(recipe.contains("'data[0].recipe'") && recipe.contains("unknown recipe 'dream'"), recipe)
        let task = error(#"{\#(model), \#(data), "eval": {"tasks": {"bioasq": {"file": "corpora/eval/gad/dev.jsonl"}}}}"#)
        XCTAssertTrue(task.contains("'eval.tasks.bioasq'"), task)
        let corpus = #""corpus": ["corpora/samples/pubmed_xml/pubmed-29768149.xml"]"#
        let noLexicon = error(#"{\#(model), \#(corpus), "data": [{"recipe": "mine", "kinds": ["entities"]}], \#(eval)}"#)
        XCTAssertTrue(noLexicon.contains("'data[0].lexicons'") && noLexicon.contains("kind 'entities' needs"), noLexicon)
        let kind = error(#"{\#(model), \#(corpus), "data": [{"recipe": "mine", "kinds": ["entity"]}], \#(eval)}"#)
        XCTAssertTrue(kind.contains("'data[0].kinds'") && kind.contains("unknown kind 'entity'") && kind.contains("cloze"), kind)
        let lexicon = error(#"{\#(model), \#(corpus), "data": [{"recipe": "mine", "kinds": ["cloze"], "lexicons": ["corpora/none.tsv"], "balance_labels": true}], \#(eval)}"#)
        XCTAssertTrue(lexicon.contains("corpora/none.tsv") && lexicon.contains("data[0].lexicons[0]"), lexicon)
        let backCount = error(#"{\#(model), \#(corpus), "data": [{"recipe": "backtranslate", "verify": false}], \#(eval)}"#)
        XCTAssertTrue(backCount.contains("'data[0].count'") && backCount.contains("backtranslate recipe needs a positive count"), backCount)
        let backCorpus = error(#"{\#(model), "data": [{"recipe": "backtranslate", "count": 4}], \#(eval)}"#)
        XCTAssertTrue(backCorpus.contains("'corpus'") && backCorpus.contains("back-translates the corpus"), backCorpus)
        let backOK = error(#"{\#(model), \#(corpus), "data": [{"recipe": "backtranslate", "count": 4, "writer": "models/SmolLM2-135M-Instruct.Q4_1.gguf", "verify": true}], \#(eval)}"#)
        XCTAssertEqual(backOK, "no error")
    }
}
