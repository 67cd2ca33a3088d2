import Evaluation
import Foundation
import LLM
import Tuner

// The tune stage (the LoRA trainer, resumed from its checkpoint after Ctrl-C) and the eval stage
// (base and every adapter on the same items with the Evaluation library; report `selfspec-eval/2`
// plus the paired delta intervals the experiment report tables show).

/// The paired delta `model − base` of one metric under one convention, with its 95% percentile
/// bootstrap interval (the same resampled items for both models) and the eval report's p-value.
public struct DeltaInterval: Codable, Sendable, Equatable {
    public var task: String
    public var model: String
    public var scoring: String
    public var metric: String
    public var delta: Double
    public var ciLow: Double
    public var ciHigh: Double
}

extension ExperimentRunner {
    // MARK: Tune

    func trainOptions(_ t: ExperimentConfig.Tune, data: String) -> TrainOptions {
        var o = TrainOptions(modelPath: config.model, dataPath: data)
        o.lora = LoRAConfig(rank: t.rank, alpha: t.alpha, dropout: 0, targets: t.targets.compactMap { LoRATarget(name: $0) })
        o.steps = t.steps; o.batchSize = t.batchSize; o.gradAccumulation = t.gradAccumulation; o.maxLength = t.maxLength
        o.learningRate = t.lr; o.minLearningRate = min(t.minLr, t.lr); o.warmupSteps = t.warmup
        o.seed = t.seed; o.validationFraction = t.valFraction; o.evalEvery = t.evalEvery; o.checkpointEvery = t.checkpointEvery
        return o
    }

    /// Trains `adapter` into tune/ADAPTER/ (config.json, log.jsonl, loss.svg, checkpoints/),
    /// then exports peft/ and adapter.gguf. Resumes from the latest checkpoint of an interrupted
    /// attempt with the same settings; otherwise starts the folder afresh.
    func train(adapter: String, settings: ExperimentConfig.Tune, resuming: Bool) throws {
        let stage = Self.stageName("tune", adapter: adapter)
        let dir = tuneDirectory(adapter)
        let fm = FileManager.default
        let canResume = resuming && fm.fileExists(atPath: dir.appendingPathComponent("checkpoints/latest").path)
        if !canResume && fm.fileExists(atPath: dir.path) { try fm.removeItem(at: dir) }
        let options = trainOptions(settings, data: curatedPath(adapter).path)
        let (trainer, info) = try TuneRun.prepare(options: options, runDirectory: dir, resume: canResume)
        try fileEncoder().encode(TrainingInfo(trainExamples: info.trainExamples, validationExamples: info.validationExamples,
                                                    truncated: info.truncated, skipped: info.skipped,
                                                    trainableParameters: info.trainableParameters))
            .write(to: dir.appendingPathComponent("info.json"), options: .atomic)
        let summary = try trainer.run { event in
            if case let .step(r, total) = event {
                onEvent(.progress(stage: stage, done: r.step, total: total, unit: "steps",
                                  detail: String(format: "loss %.4f · %.0f tok/s", r.loss, r.tokensPerSecond)))
            }
            return shouldStop() ? .stop : .more
        }
        if summary.interrupted { throw ExperimentError.interrupted(stage: stage) }
        try AdapterFiles.exportPEFT(trainer.model.lora, to: dir.appendingPathComponent("peft"), baseModel: config.model)
        try AdapterFiles.exportGGUF(trainer.model.lora, to: dir.appendingPathComponent("adapter.gguf"),
                                    baseName: URL(fileURLWithPath: config.model).lastPathComponent)
    }

    // MARK: Eval

    /// The base model, then each adapter, on every task; writes eval/report.json (`selfspec-eval/2`),
    /// eval/report.md and eval/deltas.json.
    func evaluate() throws {
        var datasets: [TaskDataset] = []
        for f in evalFiles {
            let task = try EvalTask(name: f.task)
            datasets.append(try EvalDataLoader.load(task: task, path: f.file).sample(limit: f.limit, seed: config.eval.seed))
        }
        let file = try GGUFFile(path: config.model)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let template = try ChatTemplate(metadata: file.metadata)
        let settings = EvalSettings(shots: config.eval.shots, seed: config.eval.seed, scoringBatch: config.eval.batch,
                                    generationBatch: config.eval.generationBatch, maxAnswerTokens: config.eval.maxTokens)
        let names = ["base"] + adapters.map(\.name)
        var runs: [[TaskRun]] = []
        for (m, name) in names.enumerated() {
            let adapter = m == 0 ? nil : try LoRAAdapter(path: tuneDirectory(name).appendingPathComponent("adapter.gguf").path)
            let lm = try loadLanguageModel(file: file, adapter: adapter)
            let evaluator = Evaluator(model: lm, tokenizer: tokenizer, template: template, settings: settings)
            var modelRuns: [TaskRun] = []
            for dataset in datasets {
                do {
                    modelRuns.append(try evaluator.run(dataset, demos: nil) { done, total in
                        onEvent(.progress(stage: "eval", done: done, total: total, unit: "items", detail: "\(name) \(dataset.task.rawValue)"))
                        return !shouldStop()
                    })
                } catch is CancellationError {
                    throw ExperimentError.interrupted(stage: "eval")
                }
            }
            runs.append(modelRuns)
        }
        let infos = names.enumerated().map { m, name in
            EvalReport.ModelInfo(name: name, model: config.model,
                                 adapter: m == 0 ? nil : tuneDirectory(name).appendingPathComponent("adapter.gguf").path,
                                 promptFormat: template.family.rawValue)
        }
        let report = EvalReport.build(models: infos, datasets: datasets, runs: runs, settings: settings, limit: nil,
                                      resamples: config.eval.resamples)
        try FileManager.default.createDirectory(at: evalDirectory, withIntermediateDirectories: true)
        try EvalReport.encoder().encode(report).write(to: evalDirectory.appendingPathComponent("report.json"), options: .atomic)
        try Data(report.markdown().utf8).write(to: evalDirectory.appendingPathComponent("report.md"), options: .atomic)
        let deltas = Self.deltaIntervals(datasets: datasets, runs: runs, names: names, resamples: config.eval.resamples,
                                         seed: config.eval.seed)
        try fileEncoder().encode(deltas).write(to: evalDirectory.appendingPathComponent("deltas.json"), options: .atomic)
    }

    /// For every adapter, task, convention and metric: the paired bootstrap interval of `adapter − base`.
    static func deltaIntervals(datasets: [TaskDataset], runs: [[TaskRun]], names: [String], resamples: Int, seed: UInt64) -> [DeltaInterval] {
        var out: [DeltaInterval] = []
        for (t, dataset) in datasets.enumerated() {
            let indices = Statistics.resampleIndices(count: dataset.count, resamples: resamples, seed: seed)
            for m in names.indices.dropFirst() {
                for scored in runs[m][t].scored {
                    guard let base = runs[0][t].outcomes(scored.scoring) else { continue }
                    for metric in dataset.task.metrics {
                        let deltas = indices.map { scored.outcomes.metric(metric, indices: $0) - base.metric(metric, indices: $0) }
                            .filter { !$0.isNaN }
                        out.append(DeltaInterval(task: dataset.task.rawValue, model: names[m], scoring: scored.scoring.rawValue,
                                                 metric: metric.rawValue,
                                                 delta: scored.outcomes.metric(metric) - base.metric(metric),
                                                 ciLow: deltas.isEmpty ? .nan : Statistics.percentile(deltas, 0.025),
                                                 ciHigh: deltas.isEmpty ? .nan : Statistics.percentile(deltas, 0.975)))
                    }
                }
            }
        }
        return out
    }
}

/// Facts about a training run's data (`tune/ADAPTER/info.json`).
public struct TrainingInfo: Codable, Sendable, Equatable {
    public var trainExamples: Int
    public var validationExamples: Int
    public var truncated: Int
    public var skipped: Int
    public var trainableParameters: Int
}
