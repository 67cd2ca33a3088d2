import ArgumentParser
import Foundation
import LLM
import Tuner

// MARK: - tune

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a LoRA adapter on a JSONL dataset (CPU, hand-written backward pass); export it; benchmark it.",
        subcommands: [TuneTrain.self, TuneExport.self, TuneBench.self],
        defaultSubcommand: TuneTrain.self)
}

struct TuneTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a LoRA adapter (the default of `selfspec tune`).",
        discussion: """
        Data: JSONL, one example a line, {"instruction", "input"?, "output"} or {"messages": [{"role", "content"}…]}, \
        rendered with the model's ChatML template, or for a model without one (Gemma 3 270M) as plain completion: \
        <bos>prompt, a blank line, then the response and <eos>; the loss is on assistant tokens only. The run folder gets \
        config.json, log.jsonl, loss.svg, checkpoints/step-N/ and, at the end, peft/ (PEFT adapter) and adapter.gguf \
        (llama.cpp --lora). Ctrl-C saves a checkpoint; --resume continues exactly.
        """)

    @Option(help: "The base model (GGUF, llama, qwen2 or gemma3 architecture).") var model: String = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    @Option(help: "The training data (JSONL).") var data: String?
    @Option(help: "The run folder.") var out: String
    @Flag(help: "Continue the run in --out from its latest checkpoint (its saved settings are used).") var resume = false
    @Option(help: "Optimizer steps.") var steps = 100
    @Option(help: "Sequences per micro-batch.") var batchSize = 4
    @Option(help: "Micro-batches per optimizer step.") var gradAccumulation = 1
    @Option(help: "Tokens per sequence; longer examples keep their first tokens.") var maxLength = 256
    @Option(help: "Peak learning rate.") var lr: Float = 2e-4
    @Option(help: "Final learning rate of the cosine decay.") var minLr: Float = 2e-5
    @Option(help: "Linear warm-up steps.") var warmup = 10
    @Option(help: "AdamW weight decay.") var weightDecay: Float = 0.01
    @Option(help: "Clip the global gradient norm to this (0 = off).") var clip: Float = 1
    @Option(help: "LoRA rank.") var rank = 8
    @Option(help: "LoRA alpha (the branch is scaled by alpha/rank).") var alpha: Float = 16
    @Option(name: .customLong("lora-dropout"), help: "Dropout probability on each LoRA branch's input (training only; PEFT's lora_dropout).")
    var loraDropout: Float = 0
    @Option(help: "Comma-separated targets among q,k,v,o,gate,up,down.") var targets = "q,k,v,o,gate,up,down"
    @Option(help: "Seed of the split, batch order and initialisation.") var seed: UInt64 = 42
    @Option(help: "Fraction of examples held out for validation.") var valFraction = 0.05
    @Option(help: "Evaluate the validation loss every N steps.") var evalEvery = 50
    @Option(help: "Write a checkpoint every N steps.") var checkpointEvery = 50
    @Option(help: "Adapter initialisation: random (PEFT default) or closed-form (the golden test's).") var initialization = "random"
    @Option(help: "The frozen base: float32 (dequantized once, fastest) or quantized (kept as in the GGUF, dequantized one matrix at a time: less memory).")
    var basePrecision: BasePrecision = .float32
    @Flag(help: "No progress line.") var quiet = false

    func validate() throws {
        if !resume && data == nil { throw ValidationError("--data is required (unless --resume)") }
        for t in targets.split(separator: ",") where LoRATarget(name: String(t)) == nil {
            throw ValidationError("unknown target '\(t)' (expected q,k,v,o,gate,up,down)")
        }
    }

    func options() -> TrainOptions {
        var o = TrainOptions(modelPath: model, dataPath: data ?? "")
        o.lora = LoRAConfig(rank: rank, alpha: alpha, dropout: loraDropout, targets: targets.split(separator: ",").compactMap { LoRATarget(name: String($0)) })
        o.steps = steps; o.batchSize = batchSize; o.gradAccumulation = gradAccumulation; o.maxLength = maxLength
        o.learningRate = lr; o.minLearningRate = min(minLr, lr); o.warmupSteps = warmup
        o.adam.weightDecay = weightDecay; o.clipNorm = clip; o.seed = seed
        o.validationFraction = valFraction; o.evalEvery = evalEvery; o.checkpointEvery = checkpointEvery
        o.initialization = initialization
        o.basePrecision = basePrecision
        return o
    }

    func run() throws {
        Terminal.trapInterrupts()
        let runDir = URL(fileURLWithPath: out)
        let (trainer, info) = try TuneRun.prepare(options: options(), runDirectory: runDir, resume: resume)
        let o = trainer.options
        Terminal.note("tune: \(info.trainExamples) training / \(info.validationExamples) held-out examples (\(info.format == .completion ? "plain completion" : "chat template \(info.format.rawValue)"))"
            + (info.truncated > 0 ? ", \(info.truncated) truncated to \(o.maxLength) tokens" : "")
            + (info.skipped > 0 ? ", \(info.skipped) skipped (no response token left)" : "")
            + "; \(info.trainableParameters) LoRA parameters; weights \(info.weightBytes >> 20) MB, activations \(info.activationBytes >> 20) MB"
            + (info.resumedFromStep.map { "; resumed at step \($0)" } ?? ""))
        let line = ProgressLine(enabled: !quiet)
        var lastLoss: Float = .nan, lastVal: Float?
        let summary = try trainer.run { event in
            switch event {
            case let .step(r, total):
                lastLoss = r.loss
                if let v = r.validationLoss { lastVal = v }
                line.update(label: String(format: "tune: loss %.4f%@ · lr %.2e · %.0f tok/s · step", r.loss,
                                          lastVal.map { String(format: " (val %.4f)", $0) } ?? "", r.learningRate, r.tokensPerSecond),
                            fraction: Double(r.step) / Double(total), count: r.step, unit: "steps")
            case .checkpoint:
                break
            }
            return interruptRequested.load(ordering: .relaxed) ? .stop : .more
        }
        line.finish()
        if summary.interrupted {
            Terminal.error("interrupted at step \(summary.stepsDone); checkpoint \(summary.lastCheckpoint ?? "-") — continue with --resume --out \(out)")
            throw ExitCode(130)
        }
        try AdapterFiles.exportPEFT(trainer.model.lora, to: runDir.appendingPathComponent("peft"), baseModel: o.modelPath)
        try AdapterFiles.exportGGUF(trainer.model.lora, to: runDir.appendingPathComponent("adapter.gguf"),
                                    baseName: URL(fileURLWithPath: o.modelPath).lastPathComponent)
        print(String(format: "trained %d steps: loss %.4f", summary.stepsDone, lastLoss)
            + (summary.finalValidationLoss.map { String(format: ", validation loss %.4f", $0) } ?? "")
            + "; adapter in \(out)/peft (PEFT) and \(out)/adapter.gguf (llama.cpp --lora)")
    }
}

// MARK: - tune export

struct TuneExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a run's latest (or a given) checkpoint as a PEFT adapter and/or a GGUF LoRA adapter.")

    @Option(name: .customLong("run"), help: "The run folder.") var runFolder: String
    @Option(help: "A checkpoint folder (default: the run's latest).") var checkpoint: String?
    @Option(help: "peft, gguf or both.") var format = "both"
    @Option(help: "Output folder.") var out: String
    @Option(help: ArgumentHelp("The PEFT tensors' type: f32, or bf16 (half the size; the format of shipped adapters).", valueName: "f32|bf16"))
    var dtype = "f32"

    func validate() throws {
        if !["peft", "gguf", "both"].contains(format) { throw ValidationError("--format must be peft, gguf or both") }
        if TensorDType(rawValue: dtype.uppercased()) == nil { throw ValidationError("--dtype must be f32 or bf16") }
    }

    func run() throws {
        let runDir = URL(fileURLWithPath: runFolder)
        let options = try TuneRun.savedOptions(runDirectory: runDir)
        let file = try GGUFFile(path: options.modelPath)
        let lora = LoRAParameters(config: options.lora, model: try TrainModelConfig(file: file))
        let ckpt: URL
        if let checkpoint { ckpt = URL(fileURLWithPath: checkpoint) } else {
            let latest = runDir.appendingPathComponent("checkpoints/latest")
            guard let name = try? String(contentsOf: latest, encoding: .utf8) else {
                throw TunerError.badCheckpoint(path: latest.path, detail: "no checkpoint in this run")
            }
            ckpt = runDir.appendingPathComponent("checkpoints").appendingPathComponent(name.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        try AdapterFiles.loadAdapter(path: ckpt.appendingPathComponent("adapter.safetensors").path, into: lora)
        let outDir = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: outDir, withIntermediateDirectories: true)
        if format != "gguf" {
            try AdapterFiles.exportPEFT(lora, to: outDir, baseModel: options.modelPath, dtype: TensorDType(rawValue: dtype.uppercased()) ?? .f32)
        }
        if format != "peft" {
            try AdapterFiles.exportGGUF(lora, to: outDir.appendingPathComponent("adapter.gguf"),
                                        baseName: URL(fileURLWithPath: options.modelPath).lastPathComponent)
        }
        print("exported \(ckpt.lastPathComponent) to \(out) (\(format)\(format == "gguf" ? "" : ", PEFT \(dtype.lowercased())"))")
    }
}

// MARK: - tune bench

struct TuneBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time LoRA training steps (forward + backward + AdamW) on real text; report tokens/s, peak RSS, fraction of sgemm peak.")

    @Option(help: "The base model (GGUF).") var model: String = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    @Option(help: "A UTF-8 text file; its first B·(T+1) tokens form the batch.") var text: String
    @Option(help: "Sequences per batch.") var batch = 4
    @Option(help: "Tokens per sequence.") var time = 256
    @Option(help: "Measured steps (after one warm-up step).") var steps = 3
    @Option(help: "The frozen base: float32 or quantized.") var basePrecision: BasePrecision = .float32
    @Flag(help: "Print JSON.") var json = false

    struct Report: Encodable {
        var result: TuneBenchmark.Result
        var peakRSSMB: Double
    }

    func run() throws {
        let file = try GGUFFile(path: model)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let content = try String(contentsOfFile: text, encoding: .utf8)
        let ids = tokenizer.encode(content).map(Int32.init)
        let need = batch * (time + 1)
        guard ids.count >= need else {
            Terminal.error("\(text): \(ids.count) tokens, need \(need)")
            throw ExitCode.failure
        }
        let base = try BaseModel(file: file, precision: basePrecision)
        let result = TuneBenchmark.run(base: base, lora: LoRAConfig(), ids: Array(ids.prefix(need)),
                                       batch: batch, time: time, steps: steps)
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let report = Report(result: result, peakRSSMB: (Double(usage.ru_maxrss) / 1024).rounded())
        if json { try Terminal.printJSON(report) } else {
            print(String(format: "selfspec tuner (\(basePrecision.rawValue) base): %d×%d, %.2f s/step, %.0f tokens/s, %.1f GFLOP/step = %.1f GFLOP/s (%.0f%% of sgemm peak %.1f), peak RSS %.0f MB, losses %@",
                         batch, time, result.secondsPerStep, result.tokensPerSecond, result.gflopPerStep, result.achievedGflops,
                         result.fractionOfPeak * 100, result.sgemmPeakGflops, report.peakRSSMB, result.losses.description))
        }
    }
}

extension BasePrecision: ExpressibleByArgument {}
