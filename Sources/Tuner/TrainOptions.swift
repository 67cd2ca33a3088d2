import Foundation

/// Everything that determines a training run (saved as the run folder's `config.json`; a resumed
/// run uses the saved copy, so it continues exactly).
public struct TrainOptions: Codable, Sendable, Equatable {
    /// The base model (GGUF) and the JSONL dataset.
    public var modelPath: String
    public var dataPath: String
    /// LoRA rank, alpha, dropout and targets.
    public var lora = LoRAConfig()
    /// Optimizer steps to take.
    public var steps = 100
    /// Sequences per micro-batch, and micro-batches per optimizer step (gradient accumulation).
    public var batchSize = 4, gradAccumulation = 1
    /// Sequences are cut to this many tokens (see ``DatasetLoader/maxLength``).
    public var maxLength = 256
    /// Peak learning rate, reached after `warmupSteps` of linear warm-up, then cosine decay to
    /// `minLearningRate` at the last step.
    public var learningRate: Float = 2e-4, minLearningRate: Float = 2e-5
    public var warmupSteps = 10
    /// AdamW hyper-parameters.
    public var adam = AdamW.Hyper(weightDecay: 0.01)
    /// The global gradient norm is clipped to this (0: no clipping).
    public var clipNorm: Float = 1
    /// Seed of the held-out split, the batch order and the adapter initialisation.
    public var seed: UInt64 = 42
    /// Fraction of examples held out for the validation loss, evaluated every `evalEvery` steps.
    public var validationFraction = 0.05
    public var evalEvery = 50
    /// A checkpoint every `checkpointEvery` steps (and at the end and on interruption).
    public var checkpointEvery = 50
    /// The run stops as diverged when a step's loss exceeds this multiple of the first step's loss
    /// and the loss of a uniform guess (ln V), or is not finite.
    public var explodeFactor: Float = 4
    /// `"random"` (PEFT's default: Kaiming-uniform A, zero B) or `"closed-form"` (the golden's).
    public var initialization = "random"
    /// How the frozen base is held (`nil` in run folders written before the option: float32).
    public var basePrecision: BasePrecision?

    public init(modelPath: String, dataPath: String) {
        self.modelPath = modelPath
        self.dataPath = dataPath
    }

    /// Checks ranges.
    /// - Throws: `TunerError.invalidOption` naming the option.
    public func validate() throws {
        func check(_ ok: Bool, _ name: String, _ value: Any, _ expected: String) throws {
            if !ok { throw TunerError.invalidOption(name: name, value: "\(value)", expected: expected) }
        }
        try check(lora.rank > 0 && lora.rank <= 256, "rank", lora.rank, "1...256")
        try check(lora.alpha > 0, "alpha", lora.alpha, "> 0")
        try check(lora.dropout >= 0 && lora.dropout < 1, "lora-dropout", lora.dropout, "0 ≤ p < 1")
        try check(!lora.targets.isEmpty, "targets", lora.targets, "at least one of q,k,v,o,gate,up,down")
        try check(steps > 0, "steps", steps, "> 0")
        try check(batchSize > 0, "batch-size", batchSize, "> 0")
        try check(gradAccumulation > 0, "grad-accumulation", gradAccumulation, "> 0")
        try check(maxLength >= 2, "max-length", maxLength, ">= 2")
        try check(learningRate > 0 && learningRate.isFinite, "lr", learningRate, "> 0")
        try check(minLearningRate >= 0 && minLearningRate <= learningRate, "min-lr", minLearningRate, "0...lr")
        try check(warmupSteps >= 0, "warmup", warmupSteps, ">= 0")
        try check(clipNorm >= 0, "clip", clipNorm, ">= 0")
        try check(validationFraction >= 0 && validationFraction < 1, "val-fraction", validationFraction, "0 ..< 1")
        try check(evalEvery > 0, "eval-every", evalEvery, "> 0")
        try check(checkpointEvery > 0, "checkpoint-every", checkpointEvery, "> 0")
        try check(explodeFactor > 1, "explode-factor", explodeFactor, "> 1")
        try check(["random", "closed-form"].contains(initialization), "init", initialization, "random or closed-form")
    }

    /// The learning rate of optimizer step `step` (1-based): linear warm-up, then cosine decay.
    public func learningRate(at step: Int) -> Float {
        if warmupSteps > 0 && step <= warmupSteps { return learningRate * Float(step) / Float(warmupSteps) }
        let span = max(1, steps - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        return minLearningRate + (learningRate - minLearningRate) * Float(0.5 * (1 + cos(Double.pi * progress)))
    }
}
