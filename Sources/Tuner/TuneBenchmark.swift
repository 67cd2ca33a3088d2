import Foundation
import Tensor

/// Measures training speed: full LoRA training steps (forward, backward, AdamW) on a fixed batch,
/// the machine's two-core `sgemm` peak, and the fraction of it the step reaches.
public enum TuneBenchmark {
    public struct Result: Codable, Sendable {
        public var engine = "selfspec tuner"
        public var batch: Int, time: Int, steps: Int
        public var secondsPerStep: Double
        public var tokensPerSecond: Double
        /// Floating-point operations of one step (matrix products, counted as 2·M·N·K).
        public var gflopPerStep: Double
        public var achievedGflops: Double
        public var sgemmPeakGflops: Double
        public var fractionOfPeak: Double
        public var losses: [Float]
    }

    /// GFLOP/s of a large square `sgemm` split over all cores (best of `repeats`).
    public static func sgemmPeak(size: Int = 1536, repeats: Int = 3) -> Double {
        let a = [Float](repeating: 0.5, count: size * size), b = a
        var c = [Float](repeating: 0, count: size * size)
        var best = Double.infinity
        for _ in 0..<repeats {
            let start = Date()
            BLAS.gemm(a: a, b: b, c: &c, m: size, n: size, k: size, parallel: true)
            best = min(best, Date().timeIntervalSince(start))
        }
        return 2 * Double(size * size * size) / best / 1e9
    }

    /// Operations of one training step: forward matrix products, the backward's input gradients
    /// (the same again, the base is frozen), attention's two products forward and four backward
    /// (over the causal blocks it computes),
    /// and the LoRA branches (3 forward-sized products each way, about).
    public static func flopsPerStep(config c: TrainModelConfig, lora: LoRAConfig, batch: Int, time: Int) -> Double {
        let n = Double(batch * time), C = Double(c.width), KV = Double(c.kvWidth), F = Double(c.ffn)
        let r = Double(lora.rank), QW = Double(c.queryWidth)
        let dense = 2 * n * (2 * C * QW + 2 * C * KV + 3 * C * F) * Double(c.layers)
        let head = 2 * n * C * Double(c.vocab)
        // Attention as computed: the query/key pairs of the causal blocks (`AttentionDims.blocks`).
        let pairs = (0..<c.layers).reduce(0) { sum, l in
            AttentionDims(b: 1, t: time, nh: 1, nkv: 1, hs: 1, window: c.slidingWindows[l]).blocks()
                .reduce(sum) { $0 + ($1.1 - $1.0) * ($1.1 - $1.2) }
        }
        let attention = 2 * Double(batch * c.heads) * Double(pairs) * Double(c.headSize) * 2
        let loraOps = lora.targets.reduce(0.0) { sum, t in
            let (i, o) = t.features(c)
            return sum + 2 * n * r * Double(i + o)
        } * Double(c.layers)
        return 2 * (dense + head) + 3 * attention + 3 * loraOps
    }

    /// Runs `warmup + steps` training steps on `ids` `(B, T+1)` (inputs and next-token targets, the
    /// loss on every token) and reports the mean over the measured steps.
    public static func run(base: BaseModel, lora config: LoRAConfig, ids: [Int32], batch: Int, time: Int,
                           steps: Int, warmup: Int = 1, lr: Float = 1e-4) -> Result {
        precondition(ids.count == batch * (time + 1), "benchmark needs B·(T+1) ids")
        let lora = LoRAParameters(config: config, model: base.config)
        var rng = SplitMix64(seed: 1)
        lora.initializeRandom(rng: &rng)
        let model = TrainingModel(base: base, lora: lora, maxBatch: batch, maxTime: time)
        var tokens = [Int32](), targets = [Int32]()
        for b in 0..<batch {
            let row = ids[(b * (time + 1))..<((b + 1) * (time + 1))]
            tokens += row.dropLast()
            targets += row.dropFirst()
        }
        var adam = AdamW(count: lora.count, hyper: .init())
        var losses: [Float] = [], measured = 0.0
        for i in 0..<(warmup + steps) {
            let start = Date()
            lora.zeroGrads()
            let (sum, count) = model.forward(tokens: tokens, targets: targets, batch: batch, time: time)
            model.backward(lossScale: 1 / Float(count))
            adam.update(params: lora.values, grads: UnsafeBufferPointer(lora.grads), lr: lr)
            losses.append(Float(sum / Double(count)))
            if i >= warmup { measured += Date().timeIntervalSince(start) }
        }
        let perStep = measured / Double(steps)
        let flops = flopsPerStep(config: base.config, lora: config, batch: batch, time: time)
        let peak = sgemmPeak()
        return Result(batch: batch, time: time, steps: steps, secondsPerStep: perStep,
                      tokensPerSecond: Double(batch * time) / perStep, gflopPerStep: flops / 1e9,
                      achievedGflops: flops / perStep / 1e9, sgemmPeakGflops: peak,
                      fractionOfPeak: flops / perStep / 1e9 / peak, losses: losses)
    }
}
