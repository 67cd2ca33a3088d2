import Foundation
import LLM
import XCTest
@testable import Evaluation

/// The scoring conventions: the answer parser on tricky answers, the surface forms with the real
/// SmolLM2 tokenizer, each convention recomputed independently on a real SmolLM2 run, and the
/// report's baselines, histograms and robust flag.
final class ScoringTests: XCTestCase {
    let yesNoMaybe = ["yes", "no", "maybe"], letters = ["A", "B", "C", "D"]
    let options = ["Aspirin", "Ibuprofen", "Vitamin B12", "None of the above"]

    func testParserOnTrickyAnswers() {
        XCTAssertEqual(AnswerParser.parse("Yes, but only in adults.", labels: yesNoMaybe), 0)
        XCTAssertEqual(AnswerParser.parse("no.", labels: yesNoMaybe), 1)
        XCTAssertEqual(AnswerParser.parse("Maybe not", labels: yesNoMaybe), 2)
        XCTAssertEqual(AnswerParser.parse("The answer is: NO", labels: yesNoMaybe), 1)
        XCTAssertEqual(AnswerParser.parse("**Yes**", labels: yesNoMaybe), 0)
        XCTAssertNil(AnswerParser.parse("Not enough evidence to say.", labels: yesNoMaybe))
        XCTAssertNil(AnswerParser.parse("", labels: yesNoMaybe))
        XCTAssertEqual(AnswerParser.parse("No, the sentence does not link them.", labels: ["yes", "no"]), 1)

        XCTAssertEqual(AnswerParser.parse("The answer is (B)", labels: letters, options: options), 1)
        XCTAssertEqual(AnswerParser.parse("B", labels: letters, options: options), 1)
        XCTAssertEqual(AnswerParser.parse("(d)", labels: letters, options: options), 3)
        XCTAssertEqual(AnswerParser.parse("C. Vitamin B12", labels: letters, options: options), 2)
        XCTAssertEqual(AnswerParser.parse("Answer: A", labels: letters, options: options), 0)
        XCTAssertEqual(AnswerParser.parse("The correct option is D, none of them.", labels: letters, options: options), 3)
        XCTAssertEqual(AnswerParser.parse("It is ibuprofen, an NSAID.", labels: letters, options: options), 1)
        XCTAssertEqual(AnswerParser.parse("I would pick (C) here.", labels: letters, options: options), 2)
        // "A" as an article, a letter that is no option, and no answer at all.
        XCTAssertNil(AnswerParser.parse("A patient with fever should rest.", labels: letters, options: options))
        XCTAssertNil(AnswerParser.parse("The answer is (E)", labels: letters, options: options))
        XCTAssertNil(AnswerParser.parse("I am not sure.", labels: letters, options: options))
    }

    func testSurfaceFormsArePrefixFree() throws {
        XCTAssertEqual(SurfaceForms.texts(label: "yes", option: nil), ["yes", " yes", "Yes", " Yes", "YES", " YES"])
        XCTAssertEqual(SurfaceForms.texts(label: "B", option: "ibuprofen"), ["B", " B", "(B)", " (B)", "ibuprofen", " ibuprofen", "Ibuprofen", " Ibuprofen"])
        let tokenizer = try SmolLM2.load().tokenizer
        let encode = { (s: String) in tokenizer.encode(s, addBOS: false, parseSpecial: false) }
        for (labels, opts) in [(yesNoMaybe, [String]()), (letters, options)] {
            let forms = SurfaceForms.tokens(labels: labels, options: opts, encode: encode)
            XCTAssertEqual(forms.count, labels.count)
            let all = forms.flatMap { $0 }
            for (i, a) in all.enumerated() {
                for (j, b) in all.enumerated() where i != j {
                    XCTAssertFalse(b.starts(with: a), "\(a) is a prefix of \(b)")
                }
            }
            // Each label keeps its exact text (chat prompts score "yes" with no leading space).
            for (l, label) in labels.enumerated() { XCTAssertTrue(forms[l].contains(encode(label)), label) }
            print("surface forms \(labels): \(forms.map(\.count)) token sequences per label")
        }
    }

    /// Every convention of a real SmolLM2 run on 8 PubMedQA and 8 MedMCQA items, recomputed here
    /// from separate scorer calls, the content-free prompt and single-sequence greedy generation.
    func testEachConventionOnSmolLM2() throws {
        let (model, tokenizer, template) = try SmolLM2.load()
        let evaluator = Evaluator(model: model, tokenizer: tokenizer, template: template, settings: EvalSettings(shots: 0, seed: 0))
        let prompts = evaluator.prompts
        let generator = TextGenerator(model: model, tokenizer: tokenizer)
        for (task, file) in [(EvalTask.pubmedqa, "pubmedqa/pqal_dev.json"), (.mcq, "medmcqa/medmcqa_dev.json")] {
            let data = try EvalDataLoader.load(task: task, path: Paths.eval(file)).sample(limit: 8, seed: 3)
            guard case let .labels(items) = data.items else { return XCTFail() }
            let run = try evaluator.run(data, demos: nil)
            XCTAssertEqual(run.scored.map(\.scoring), Scoring.allCases)
            let instruction = PromptBuilder.instruction(for: task)
            let free = try prompts.encode(instruction: instruction, demonstrations: [], input: "N/A")
            let prior = try OptionScorer(model: model).score([ScoringRequest(prompt: free, options: items[0].labels.map(prompts.answerTokens))])[0]
            var sameAnswers = 0
            for (n, item) in items.enumerated() {
                let p = run.predictions[n], by = try XCTUnwrap(p.byScoring), exact = try XCTUnwrap(p.scores)
                XCTAssertEqual(by["labels"], item.labels[Evaluator.argmax(exact)])
                XCTAssertEqual(by["calibrated"], item.labels[Evaluator.argmax(zip(exact, prior).map { $0 - $1 })])
                // Surface: every form scored on its own, summed per label.
                let prompt = try prompts.encode(instruction: instruction, demonstrations: [], input: item.input)
                let forms = SurfaceForms.tokens(labels: item.labels, options: item.options) {
                    tokenizer.encode($0, addBOS: false, parseSpecial: false)
                }
                let formScores = try OptionScorer(model: model).score([ScoringRequest(prompt: prompt, options: forms.flatMap { $0 })])[0]
                var k = 0
                let summed = forms.map { f -> Double in
                    defer { k += f.count }
                    return Evaluator.logSumExp(Array(formScores[k..<(k + f.count)]))
                }
                XCTAssertEqual(by["surface"], item.labels[Evaluator.argmax(summed)])
                // Generate: the scorer's greedy answer against the generator's, and the parse.
                let answer = try XCTUnwrap(p.answer)
                let generated = try generator.generate(GenerationRequest(prompt: prompt, maxTokens: 16, sampling: SamplingParameters(temperature: 0),
                                                                          stopStrings: prompts.stopStrings))
                if Evaluator.cut(generated.text, at: prompts.stopStrings) == answer { sameAnswers += 1 }
                XCTAssertEqual(by["generate"], AnswerParser.parse(answer, labels: item.labels, options: item.options).map { item.labels[$0] } ?? "")
                XCTAssertEqual(p.predicted, by[task.primaryScoring.rawValue])
            }
            // The scorer decodes in a batch from an f16 prompt cache; a near tie may rarely flip a token.
            XCTAssertGreaterThanOrEqual(sameAnswers, items.count - 1)
            for scored in run.scored {
                XCTAssertEqual(scored.labelCounts?.values.reduce(0, +), items.count)
                guard case let .labels(_, predicted, _) = scored.outcomes else { return XCTFail() }
                XCTAssertEqual(scored.parseFailures, scored.scoring == .generate ? predicted.filter { $0 < 0 }.count : nil)
            }
            print("\(task.rawValue) 8 items: " + run.scored.map { "\($0.scoring.rawValue) \($0.labelCounts ?? [:])" }.joined(separator: "; ")
                  + "; greedy answers equal to the generator's: \(sameAnswers)/8; first answer: \(run.predictions[0].answer ?? "")")
        }
    }

    /// Baselines, histograms and the robust flag from hand-made outcomes.
    func testReportBaselinesAndRobustGain() {
        let items = (0..<40).map { LabelItem(id: "\($0)", input: "x", labels: ["yes", "no"], gold: $0 < 30 ? 0 : 1) }
        let data = TaskDataset(task: .gad, file: "dev.jsonl", items: .labels(items))
        let gold = items.map(\.gold)
        func run(_ predicted: [Scoring: [Int]]) -> TaskRun {
            TaskRun(task: .gad, scored: Scoring.allCases.map { s in
                ScoredRun(scoring: s, outcomes: .labels(gold: gold, predicted: predicted[s]!, labelCount: 2), labelCounts: nil)
            }, predictions: [], seconds: 1)
        }
        let wrong = gold.map { 1 - $0 }
        // The adapter is right everywhere under labels and surface, unchanged under the others.
        let base = run([.labels: wrong, .surface: wrong, .calibrated: wrong, .generate: wrong])
        let adapter = run([.labels: gold, .surface: gold, .calibrated: wrong, .generate: wrong])
        let one = run([.labels: gold, .surface: wrong, .calibrated: wrong, .generate: wrong])
        // Gains under labels and surface, but a significant loss under calibrated: not robust.
        let baseMixed = run([.labels: wrong, .surface: wrong, .calibrated: gold, .generate: wrong])
        let infos = ["base", "both", "one"].map { EvalReport.ModelInfo(name: $0, model: "m.gguf", adapter: nil, promptFormat: "chatml") }
        let report = EvalReport.build(models: infos, datasets: [data], runs: [[base], [adapter], [one]], settings: EvalSettings(),
                                      limit: nil, resamples: 200)
        let task = report.tasks[0]
        XCTAssertEqual(task.baselines.map(\.label), ["yes", "no"])
        XCTAssertEqual(task.baselines[0].majority, true)
        XCTAssertEqual(task.baselines[0].metrics["accuracy"] ?? 0, 0.75, accuracy: 1e-12)
        XCTAssertEqual(task.baselines[1].metrics["f1_positive"], 0)
        XCTAssertEqual(task.results.count, 12)
        let accuracy = task.comparisons.filter { $0.metric == "accuracy" }
        XCTAssertEqual(accuracy.filter { $0.model == "both" }.map(\.scoring), Scoring.allCases.map(\.rawValue))
        XCTAssertTrue(accuracy.filter { $0.model == "both" }.allSatisfy(\.robust))
        XCTAssertTrue(accuracy.filter { $0.model == "one" }.allSatisfy { !$0.robust })
        XCTAssertLessThan(accuracy.first { $0.model == "one" && $0.scoring == "labels" }!.pValue, 0.05)
        XCTAssertTrue(report.markdown().contains("robust"), report.markdown())
        XCTAssertFalse(report.markdown().split(separator: "\n").contains { $0.contains("| calibrated") && $0.contains("robust") },
                       "the flag is shown on the gaining rows only")
        // The same gains with a significant loss under another convention are not robust.
        let mixed = EvalReport.build(models: Array(infos.prefix(2)), datasets: [data], runs: [[baseMixed], [adapter]], settings: EvalSettings(),
                                     limit: nil, resamples: 200)
        let mixedAccuracy = mixed.tasks[0].comparisons.filter { $0.metric == "accuracy" }
        XCTAssertLessThan(mixedAccuracy.first { $0.scoring == "calibrated" }!.delta, 0)
        XCTAssertEqual(mixedAccuracy.filter(\.isSignificantGain).count, 2)
        XCTAssertTrue(mixedAccuracy.allSatisfy { !$0.robust }, "a significant loss under calibrated")
        XCTAssertTrue(report.markdown().contains("baselines: majority (yes) accuracy 0.750"), report.markdown())
    }
}
