import Foundation
import LLM
import Tensor

/// Sets up a training run from options: model, tokenizer, dataset, split, adapters, trainer.
public enum TuneRun {
    /// Facts about a prepared run, for the caller to report.
    public struct Info: Sendable {
        public var trainExamples: Int, validationExamples: Int, truncated: Int, skipped: Int
        public var trainableParameters: Int
        /// How the data was rendered: the model's chat template family (`completion` without one).
        public var format: ChatTemplate.Family
        public var resumedFromStep: Int?
        /// Bytes of float32 weights and of activations.
        public var weightBytes: Int, activationBytes: Int
    }

    /// The run folder's saved options.
    public static func savedOptions(runDirectory: URL) throws -> TrainOptions {
        let url = runDirectory.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TunerError.badCheckpoint(path: url.path, detail: "no config.json: not a run folder")
        }
        do { return try JSONDecoder().decode(TrainOptions.self, from: data) } catch {
            throw TunerError.badCheckpoint(path: url.path, detail: "unreadable config: \(error)")
        }
    }

    /// Prepares a run in `runDirectory`.
    ///
    /// - Parameters:
    ///   - options: the settings of a new run (ignored when resuming: the folder's `config.json` is used).
    ///   - runDirectory: the run folder; a new run refuses a folder that already holds a run.
    ///   - resume: continue from the folder's latest checkpoint.
    ///   - base: an already loaded base model to reuse (tests), else loaded from `options.modelPath`.
    /// - Throws: `TunerError` for bad options, data, model or checkpoints.
    public static func prepare(options: TrainOptions, runDirectory: URL, resume: Bool,
                               base: BaseModel? = nil) throws -> (trainer: Trainer, info: Info) {
        let fm = FileManager.default
        let configURL = runDirectory.appendingPathComponent("config.json")
        let options = resume ? try savedOptions(runDirectory: runDirectory) : options
        try options.validate()
        if !resume && fm.fileExists(atPath: configURL.path) {
            throw TunerError.writeFailed(path: runDirectory.path, detail: "already holds a run (config.json); pass --resume or another --out")
        }
        let file = try GGUFFile(path: options.modelPath)
        let model = try base ?? BaseModel(file: file, precision: options.basePrecision ?? .float32)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let template: ChatTemplate
        do { template = try ChatTemplate(metadata: file.metadata) } catch {
            throw TunerError.invalidModel(path: file.path, detail: error.localizedDescription)
        }
        let loaded = try DatasetLoader(tokenizer: tokenizer, template: template, maxLength: options.maxLength).load(path: options.dataPath)
        let (train, validation) = splitHeldOut(loaded.examples, fraction: options.validationFraction, seed: options.seed)
        let lora = LoRAParameters(config: options.lora, model: model.config)
        if options.initialization == "closed-form" {
            lora.initializeClosedForm()
        } else {
            var rng = SplitMix64(seed: options.seed &+ 1)
            lora.initializeRandom(rng: &rng)
        }
        let longest = (train + validation).map(\.ids.count).max() ?? 2
        let net = TrainingModel(base: model, lora: lora, maxBatch: options.batchSize, maxTime: longest)
        let pad = Int32(tokenizer.specialTokens.padding ?? tokenizer.specialTokens.eos ?? 0)
        if !resume {
            try fm.createDirectory(at: runDirectory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try writeAtomically(try encoder.encode(options), to: configURL)
        }
        let trainer = Trainer(model: net, train: train, validation: validation, options: options,
                              runDirectory: runDirectory, pad: pad)
        let resumed = resume ? try trainer.resume() : nil
        return (trainer, Info(trainExamples: train.count, validationExamples: validation.count, truncated: loaded.truncated,
                              skipped: loaded.skipped, trainableParameters: lora.count, format: template.family, resumedFromStep: resumed,
                              weightBytes: model.byteCount, activationBytes: net.activationBytes))
    }
}
