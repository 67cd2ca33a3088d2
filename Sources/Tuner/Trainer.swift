import Foundation
import Tensor

// The training loop: batches, gradient accumulation, clipping, AdamW with warm-up + cosine LR,
// validation, a JSONL log, a loss-curve SVG and checkpoints that resume exactly.

/// One optimizer step, as logged in `log.jsonl`.
public struct StepRecord: Codable, Sendable, Equatable {
    public var step: Int
    public var loss: Float
    public var validationLoss: Float?
    public var learningRate: Float
    public var gradNorm: Float
    /// Non-padding tokens processed this step and the rate (wall clock; not part of exact resume).
    public var tokens: Int
    public var tokensPerSecond: Double
}

/// What the trainer reports to its caller (the CLI prints; the library does not).
public enum TrainEvent: Sendable {
    case step(StepRecord, totalSteps: Int)
    case checkpoint(path: String, step: Int)
}

/// The caller's answer to an event: go on, or save a checkpoint and stop (Ctrl-C).
public enum TrainAction: Sendable { case more, stop }

/// Position of the run, saved in each checkpoint's `state.json`.
struct TrainState: Codable, Equatable {
    var step = 0
    var epoch = 0
    var batchInEpoch = 0
    var firstLoss: Float?
    var rng: SplitMix64
    var adamStep = 0
}

/// How a run ended.
public struct TrainSummary: Sendable {
    public var stepsDone: Int
    public var interrupted: Bool
    public var lastCheckpoint: String?
    public var finalLoss: Float?
    public var finalValidationLoss: Float?
}

/// Trains the adapters of a ``TrainingModel`` on examples, writing a run folder.
public final class Trainer {
    public let model: TrainingModel
    public let options: TrainOptions
    public let runDirectory: URL
    private let train: [TrainingExample], validation: [TrainingExample]
    private let plan: BatchPlan
    private let pad: Int32
    private var adam: AdamW
    private var state: TrainState
    private var records: [StepRecord] = []
    private(set) public var lastCheckpoint: String?

    /// - Parameters: model: the model with adapters (initialised by the caller); train, validation:
    ///   the split; options: the run's settings; runDirectory: the run folder; pad: the padding id.
    public init(model: TrainingModel, train: [TrainingExample], validation: [TrainingExample],
                options: TrainOptions, runDirectory: URL, pad: Int32) {
        self.model = model
        self.train = train
        self.validation = validation
        self.options = options
        self.runDirectory = runDirectory
        self.pad = pad
        plan = BatchPlan(examples: train, batchSize: options.batchSize, seed: options.seed)
        adam = AdamW(count: model.lora.count, hyper: options.adam)
        state = TrainState(rng: SplitMix64(seed: options.seed))
    }

    private var checkpointsDirectory: URL { runDirectory.appendingPathComponent("checkpoints") }
    private var logURL: URL { runDirectory.appendingPathComponent("log.jsonl") }

    // MARK: Run

    /// Trains until `options.steps`, the caller says stop, or the loss diverges.
    /// - Parameter onEvent: called after every step and checkpoint; return `.stop` to save and stop.
    /// - Throws: `TunerError.divergedLoss` (the last good checkpoint is kept), write errors.
    public func run(onEvent: (TrainEvent) -> TrainAction) throws -> TrainSummary {
        try FileManager.default.createDirectory(at: checkpointsDirectory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: logURL.path) { try writeAtomically(Data(), to: logURL) }
        var interrupted = false
        while state.step < options.steps && !interrupted {
            let record = try trainStep()
            records.append(record)
            try appendLog(record)
            if onEvent(.step(record, totalSteps: options.steps)) == .stop { interrupted = true }
            if state.step % options.checkpointEvery == 0 || state.step == options.steps || interrupted {
                let path = try saveCheckpoint()
                if onEvent(.checkpoint(path: path, step: state.step)) == .stop { interrupted = true }
            }
        }
        try writeAtomically(Data(lossCurveSVG(records).utf8), to: runDirectory.appendingPathComponent("loss.svg"))
        return TrainSummary(stepsDone: state.step, interrupted: interrupted, lastCheckpoint: lastCheckpoint,
                            finalLoss: records.last?.loss, finalValidationLoss: records.last(where: { $0.validationLoss != nil })?.validationLoss)
    }

    /// The next `gradAccumulation` batches of the epoch-shuffled plan, advancing the position.
    private func nextBatches() -> [[Int]] {
        (0..<options.gradAccumulation).map { _ in
            let order = plan.order(epoch: state.epoch)
            let batch = plan.batches[order[state.batchInEpoch]]
            state.batchInEpoch += 1
            if state.batchInEpoch == order.count { state.batchInEpoch = 0; state.epoch += 1 }
            return batch
        }
    }

    private func trainStep() throws -> StepRecord {
        let start = Date()
        let lora = model.lora
        let batches = nextBatches().map { BatchPlan.assemble($0, from: train, pad: pad) }
        let counted = batches.reduce(0) { $0 + $1.targets.filter { $0 != Ops.ignoreIndex }.count }
        var lossSum = 0.0, tokens = 0
        lora.zeroGrads()
        for (micro, b) in batches.enumerated() {
            // Dropout masks come from (seed, step, micro-batch): a resumed run draws the same ones.
            var mix = SplitMix64(seed: options.seed ^ (UInt64(state.step + 1) << 16 | UInt64(micro)) &* 0x9E37_79B9_7F4A_7C15)
            model.dropoutKey = mix.next()
            let (sum, _) = model.forward(tokens: b.ids, targets: b.targets, batch: b.batch, time: b.time)
            lossSum += sum
            model.backward(lossScale: 1 / Float(max(counted, 1)))
            tokens += b.ids.filter { $0 != pad }.count
        }
        let loss = Float(lossSum / Double(max(counted, 1)))
        let step = state.step + 1
        var norm2 = 0.0
        for g in lora.grads { norm2 += Double(g) * Double(g) }
        let gradNorm = Float(norm2.squareRoot())
        // Diverged: not finite, or both far above the first step's loss and above a uniform guess
        // over the vocabulary (ln V). The ln V floor keeps a hard batch of a small, uneven dataset
        // (first step 1.0, a later batch 4.2) from stopping a healthy run.
        let first = state.firstLoss ?? loss
        let uniform = Float(log(Double(model.base.config.vocab)))
        guard loss.isFinite, gradNorm.isFinite, loss <= max(options.explodeFactor * first, uniform) else {
            throw TunerError.divergedLoss(step: step, loss: loss, lastCheckpoint: lastCheckpoint)
        }
        if options.clipNorm > 0 && gradNorm > options.clipNorm {
            let s = options.clipNorm / gradNorm
            for i in lora.grads.indices { lora.grads[i] *= s }
        }
        let lr = options.learningRate(at: step)
        adam.update(params: lora.values, grads: UnsafeBufferPointer(lora.grads), lr: lr)
        state.step = step
        state.firstLoss = first
        state.adamStep = adam.step
        var record = StepRecord(step: step, loss: loss, validationLoss: nil, learningRate: lr, gradNorm: gradNorm,
                                tokens: tokens, tokensPerSecond: Double(tokens) / max(Date().timeIntervalSince(start), 1e-9))
        if !validation.isEmpty && (step % options.evalEvery == 0 || step == options.steps) {
            record.validationLoss = validationLoss()
        }
        return record
    }

    /// Mean loss over the held-out examples (length-sorted batches, no gradient).
    public func validationLoss() -> Float {
        model.dropoutKey = nil
        let sorted = validation.indices.sorted { validation[$0].ids.count < validation[$1].ids.count }
        var sum = 0.0, count = 0
        for start in stride(from: 0, to: sorted.count, by: model.maxBatch) {
            let b = BatchPlan.assemble(Array(sorted[start..<min(start + model.maxBatch, sorted.count)]), from: validation, pad: pad)
            let r = model.forward(tokens: b.ids, targets: b.targets, batch: b.batch, time: b.time)
            sum += r.sum
            count += r.count
        }
        return Float(sum / Double(max(count, 1)))
    }

    private func appendLog(_ record: StepRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(record)
        line.append(0x0A)
        do {
            let handle = try FileHandle(forWritingTo: logURL)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
        } catch { throw TunerError.writeFailed(path: logURL.path, detail: error.localizedDescription) }
    }

    // MARK: Checkpoints

    /// Writes `checkpoints/step-NNNNNN/` (adapter, optimizer moments, state) via a temporary
    /// directory renamed into place, then points `checkpoints/latest` at it.
    @discardableResult
    public func saveCheckpoint() throws -> String {
        let name = String(format: "step-%06d", state.step)
        let final = checkpointsDirectory.appendingPathComponent(name)
        let temp = checkpointsDirectory.appendingPathComponent(".\(name).partial")
        let fm = FileManager.default
        try? fm.removeItem(at: temp)
        try fm.createDirectory(at: temp, withIntermediateDirectories: true)
        try writeAtomically(try safetensorsData(AdapterFiles.adapterTensors(model.lora), metadata: ["orientation": "gguf"]),
                            to: temp.appendingPathComponent("adapter.safetensors"))
        try writeAtomically(try safetensorsData([NamedTensor(name: "m", shape: [adam.m.count], values: adam.m),
                                                 NamedTensor(name: "v", shape: [adam.v.count], values: adam.v)]),
                            to: temp.appendingPathComponent("optimizer.safetensors"))
        try writeAtomically(try JSONEncoder().encode(state), to: temp.appendingPathComponent("state.json"))
        try? fm.removeItem(at: final)
        do { try fm.moveItem(at: temp, to: final) } catch {
            throw TunerError.writeFailed(path: final.path, detail: error.localizedDescription)
        }
        try writeAtomically(Data(name.utf8), to: checkpointsDirectory.appendingPathComponent("latest"))
        try writeAtomically(Data(lossCurveSVG(records).utf8), to: runDirectory.appendingPathComponent("loss.svg"))
        lastCheckpoint = final.path
        return final.path
    }

    /// Restores the latest checkpoint of the run folder: adapter, optimizer, position; the log is cut
    /// back to the checkpoint's step so the resumed curve continues it exactly.
    /// A run stopped before its first checkpoint restarts from step 0 (same seed: the same run).
    /// - Returns: the step resumed from.
    /// - Throws: `TunerError.badCheckpoint` when the checkpoint is unreadable or does not match the model.
    @discardableResult
    public func resume() throws -> Int {
        let latestURL = checkpointsDirectory.appendingPathComponent("latest")
        guard let name = try? String(contentsOf: latestURL, encoding: .utf8) else {
            try writeAtomically(Data(), to: logURL)
            return 0
        }
        let dir = checkpointsDirectory.appendingPathComponent(name.trimmingCharacters(in: .whitespacesAndNewlines))
        let statePath = dir.appendingPathComponent("state.json").path
        guard let data = FileManager.default.contents(atPath: statePath),
              let saved = try? JSONDecoder().decode(TrainState.self, from: data) else {
            throw TunerError.badCheckpoint(path: statePath, detail: "missing or unreadable state")
        }
        try AdapterFiles.loadAdapter(path: dir.appendingPathComponent("adapter.safetensors").path, into: model.lora)
        let optPath = dir.appendingPathComponent("optimizer.safetensors").path
        do {
            let file = try SafetensorsFile(path: optPath)
            adam = AdamW(hyper: options.adam, step: saved.adamStep,
                         m: try file.floats("m", shape: [model.lora.count]), v: try file.floats("v", shape: [model.lora.count]))
        } catch { throw TunerError.badCheckpoint(path: optPath, detail: error.localizedDescription) }
        state = saved
        lastCheckpoint = dir.path
        // Keep the log lines up to the checkpoint.
        let decoder = JSONDecoder()
        let lines = (try? String(contentsOf: logURL, encoding: .utf8))?.split(separator: "\n") ?? []
        records = lines.compactMap { try? decoder.decode(StepRecord.self, from: Data($0.utf8)) }.filter { $0.step <= saved.step }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var text = Data()
        for r in records { text.append(try encoder.encode(r)); text.append(0x0A) }
        try writeAtomically(text, to: logURL)
        return saved.step
    }
}

// MARK: - Loss curve

/// An SVG line chart of the training loss (blue) and validation loss (orange dots) per step.
public func lossCurveSVG(_ records: [StepRecord], width: Int = 640, height: Int = 360) -> String {
    let w = Double(width), h = Double(height), pad = 44.0
    let values = records.map(\.loss) + records.compactMap(\.validationLoss)
    let lo = Double(values.min() ?? 0), hi = Double(values.max() ?? 1)
    let span = max(hi - lo, 1e-6), maxStep = Double(max(records.last?.step ?? 1, 1))
    func x(_ s: Int) -> Double { pad + (w - 2 * pad) * Double(s) / maxStep }
    func y(_ v: Float) -> Double { h - pad - (h - 2 * pad) * (Double(v) - lo) / span }
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
    svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    svg += "<line x1=\"\(pad)\" y1=\"\(h - pad)\" x2=\"\(w - pad)\" y2=\"\(h - pad)\" stroke=\"black\"/>"
    svg += "<line x1=\"\(pad)\" y1=\"\(pad)\" x2=\"\(pad)\" y2=\"\(h - pad)\" stroke=\"black\"/>\n"
    svg += String(format: "<text x=\"4\" y=\"%.0f\">%.3f</text><text x=\"4\" y=\"%.0f\">%.3f</text>\n", pad, hi, h - pad, lo)
    svg += "<text x=\"\(w / 2 - 20)\" y=\"\(h - 10)\">step (last \(Int(maxStep)))</text>\n"
    let points = records.map { String(format: "%.1f,%.1f", x($0.step), y($0.loss)) }.joined(separator: " ")
    svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(points)\"/>\n"
    for r in records { if let v = r.validationLoss { svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#ff7f0e\"/>\n", x(r.step), y(v)) } }
    svg += "<text x=\"\(w - 200)\" y=\"20\" fill=\"#1f77b4\">training loss</text><text x=\"\(w - 100)\" y=\"20\" fill=\"#ff7f0e\">validation</text>\n"
    return svg + "</svg>\n"
}
