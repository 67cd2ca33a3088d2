import Foundation
import XCTest
import TestSupport
@testable import LLM
import Tensor
@testable import Tuner

/// Qwen2.5-Coder-1.5B-Instruct (`qwen2`: q/k/v biases, rotate-half RoPE on un-permuted q/k rows,
/// an untied Q6_K output head) in the tuner: the training forward/backward and AdamW against
/// `Tests/Fixtures/golden/qwen25_coder_1p5b_lora_golden.json` (PEFT on the same GGUF dequantized to
/// float32, same closed-form LoRA init), the quantized base against the float32 one, and a two-step
/// run whose PEFT/GGUF exports name the base and load in the runtime's `LlamaModel` with the
/// training losses.
final class QwenTrainingTests: XCTestCase {
    static let fileName = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    /// The float32 base, loaded by the first test that needs it and freed when this class is done
    /// (≈ 7 GB: the test process should not keep it while the other suites run).
    nonisolated(unsafe) private static var loaded: BaseModel?
    override class func tearDown() { loaded = nil; super.tearDown() }

    /// The model's path; fails (not skips) when the model is missing.
    private func path() throws -> String { try RepositoryFiles.model(Self.fileName) }

    /// The float32 Qwen base (≈ 7 GB), loaded once for this class.
    private func base() throws -> BaseModel {
        if let model = Self.loaded { return model }
        let model = try BaseModel(path: try path())
        Self.loaded = model
        return model
    }

    /// The golden's ids and Hugging Face-shifted targets: the logits at t predict label t+1.
    private func goldenBatch(_ golden: [String: Any]) throws -> (ids: [Int32], targets: [Int32]) {
        let ids = try XCTUnwrap(golden["ids"] as? [Int]).map(Int32.init)
        let labels = try XCTUnwrap(golden["labels"] as? [Int])
        let t = ids.count
        return (ids, (0..<t).map { $0 + 1 < t ? Int32(labels[$0 + 1]) : Tuner.Ops.ignoreIndex })
    }

    func testConfigMirrorsTheRuntime() throws {
        let file = try GGUFFile(path: try path())
        let c = try TrainModelConfig(file: file), runtime = try ModelConfig(file: file)
        XCTAssertEqual(c.architecture, "qwen2")
        XCTAssertEqual([c.width, c.layers, c.heads, c.kvHeads, c.headSize, c.ffn, c.vocab],
                       [runtime.embeddingLength, runtime.layerCount, runtime.headCount, runtime.kvHeadCount,
                        runtime.headSize, runtime.feedForwardLength, runtime.vocabularySize])
        XCTAssertEqual([c.width, c.layers, c.heads, c.kvHeads, c.headSize, c.ffn], [1536, 28, 12, 2, 128, 8960])
        XCTAssertEqual(c.ropeBases, runtime.ropeBase)
        XCTAssertEqual(c.ropeBases.first, 1_000_000)
        XCTAssertEqual(c.ropeStyle, .halves)
        XCTAssertEqual(runtime.ropeStyle, .halves)
        XCTAssertEqual(c.activation, .silu)
        XCTAssertEqual(c.normEpsilon, runtime.normEpsilon)
        XCTAssertEqual(c.attentionScale, runtime.attentionScale)
        XCTAssertEqual(c.embeddingScale, 1)
        XCTAssertTrue(c.attentionBias, "q/k/v biases")
        XCTAssertFalse(c.tiedEmbeddings, "output.weight is its own head")
        XCTAssertFalse(c.queryKeyNorm || c.postNorms)
        XCTAssertTrue(c.slidingWindows.allSatisfy { $0 == nil }, "global causal attention")
    }

    /// Loss, every LoRA gradient norm and five full-batch AdamW steps against PEFT.
    func testLossGradientNormsAndAdamWTrajectory() throws {
        let golden = try TestPaths.json("qwen25_coder_1p5b_lora_golden.json")
        XCTAssertEqual(golden["gguf"] as? String, Self.fileName)
        let start = Date()
        let base = try base()
        print("qwen float32 base: \(base.byteCount >> 20) MiB, ready after \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        XCTAssertTrue(base.blocks.allSatisfy { $0.bq != nil && $0.bk != nil && $0.bv != nil })
        XCTAssertNotEqual(base.head, base.wte, "untied head")
        try checkLoRAGolden(base, golden, label: "qwen")
    }

    /// `--base-precision quantized`: the projections dequantized on use, the biases and head still
    /// float32, give the float32 base's per-position losses. (The backward through a quantized
    /// projection is architecture-independent; `BasePrecisionTests` checks its gradients.)
    func testQuantizedBaseMatchesFloat32Base() throws {
        let dense = try base()
        let quantized = try BaseModel(path: try path(), precision: .quantized)
        print("qwen base weights: float32 \(dense.byteCount >> 20) MiB, quantized \(quantized.byteCount >> 20) MiB "
              + "+ scratch \((quantized.scratchCount * 4) >> 20) MiB")
        XCTAssertLessThan(quantized.byteCount, dense.byteCount / 3)
        XCTAssertTrue(quantized.blocks.allSatisfy { $0.bq != nil && $0.wq.isQuantized })
        let (allIDs, _) = try goldenBatch(try TestPaths.json("qwen25_coder_1p5b_lora_golden.json"))
        let ids = Array(allIDs.suffix(24)), t = ids.count
        let targets = Array(ids.dropFirst()) + [Tuner.Ops.ignoreIndex]
        func losses(_ base: BaseModel) -> [Float] {
            let lora = LoRAParameters(config: LoRAConfig(), model: base.config)
            lora.initializeClosedForm()
            let model = TrainingModel(base: base, lora: lora, maxBatch: 1, maxTime: t)
            model.forward(tokens: ids, targets: targets, batch: 1, time: t)
            return model.lastLosses()
        }
        let a = losses(dense), b = losses(quantized)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        print("qwen per-position losses, float32 vs quantized base: max |diff| \(worst) (mean \(a.reduce(0, +) / Float(t - 1)))")
        XCTAssertLessThanOrEqual(worst, 1e-5)
    }

    /// Two steps on a tiny chat dataset (rendered with Qwen's default system prompt, as the golden
    /// and the runtime's chat template have it), then the PEFT and GGUF exports: they name the
    /// base and keep B rows unpermuted; the PEFT folder (Hugging Face orientation, where a wrong
    /// q/k row order would show) runs in `LlamaModel` with the tuner's per-position losses.
    func testTwoStepRunExportsAnAdapterForTheQwenBase() throws {
        let base = try base(), path = try path(), tmp = try TemporaryDirectory(self)
        let file = try GGUFFile(path: path)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let template = try ChatTemplate(metadata: file.metadata)
        XCTAssertEqual(template.defaultSystemPrompt, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")

        // The golden's conversation renders to its ids and labels.
        let golden = try TestPaths.json("qwen25_coder_1p5b_lora_golden.json")
        let (goldenIDs, goldenTargets) = try goldenBatch(golden)
        let loader = DatasetLoader(tokenizer: tokenizer, template: template, maxLength: 4096)
        let ex = try XCTUnwrap(loader.example([.user("Which enzyme does aspirin inhibit?"),
                                               .assistant("Aspirin irreversibly acetylates cyclooxygenase (COX-1 and COX-2), blocking prostaglandin synthesis.")],
                                              line: 1))
        XCTAssertEqual(ex.ids, goldenIDs)
        XCTAssertEqual(ex.targets, goldenTargets)

        let data = tmp.file("chat.jsonl")
        try Data("""
            {"messages": [{"role": "user", "content": "Which enzyme does aspirin inhibit?"}, {"role": "assistant", "content": "Cyclooxygenase."}]}
            {"instruction": "Name the vitamin made in skin.", "input": "Sunlight helps.", "output": "Vitamin D."}
            {"instruction": "What does insulin lower?", "output": "Blood glucose."}
            {"instruction": "Which organ makes bile?", "output": "The liver."}

            """.utf8).write(to: data)
        var o = TrainOptions(modelPath: path, dataPath: data.path)
        o.steps = 2; o.batchSize = 2; o.maxLength = 64; o.warmupSteps = 0; o.learningRate = 1e-3
        o.validationFraction = 0; o.evalEvery = 2; o.checkpointEvery = 2
        let run = tmp.file("run")
        let start = Date()
        let (trainer, info) = try TuneRun.prepare(options: o, runDirectory: run, resume: false, base: base)
        XCTAssertEqual(info.format, .chatML)
        XCTAssertEqual(info.trainExamples, 4)
        let summary = try trainer.run { _ in .more }
        XCTAssertEqual(summary.stepsDone, 2)
        XCTAssertTrue(summary.finalLoss.map { $0.isFinite && $0 > 0 } ?? false)
        print("qwen two-step run: final loss \(summary.finalLoss ?? .nan), \(String(format: "%.1f", Date().timeIntervalSince(start))) s")

        let lora = trainer.model.lora
        let (_, vB, _, _) = lora.views(try XCTUnwrap(lora.slot(layer: 5, target: .v)))
        XCTAssertTrue(Array(UnsafeBufferPointer(start: vB, count: 256 * 8)).contains { $0 != 0 }, "B starts at 0: trained")
        // Two steps move q/k's B only a little; larger seeded values make a wrong row order show.
        var rng = SplitMix64(seed: 17)
        for s in lora.slots where s.target == .q || s.target == .k {
            let b = lora.views(s).b
            for i in 0..<(s.outF * 8) { b[i] = (rng.nextUnitFloat() * 2 - 1) * 0.05 }
        }
        try AdapterFiles.exportPEFT(lora, to: run.appendingPathComponent("peft"), baseModel: path)
        try AdapterFiles.exportGGUF(lora, to: run.appendingPathComponent("adapter.gguf"), baseName: Self.fileName)
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("peft/adapter_config.json")))
            as? [String: Any])
        XCTAssertEqual(config["base_model_name_or_path"] as? String, path)
        XCTAssertEqual(config["peft_type"] as? String, "LORA")
        XCTAssertEqual(config["bias"] as? String, "none")
        XCTAssertEqual(Set(try XCTUnwrap(config["target_modules"] as? [String])),
                       ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        let peft = try SafetensorsFile(path: run.appendingPathComponent("peft/adapter_model.safetensors").path)
        XCTAssertEqual(peft.names.count, 28 * 7 * 2)
        let (_, kB, _, _) = lora.views(try XCTUnwrap(lora.slot(layer: 5, target: .k)))
        XCTAssertEqual(try peft.floats("base_model.model.model.layers.5.self_attn.k_proj.lora_B.weight", shape: [256, 8]),
                       Array(UnsafeBufferPointer(start: kB, count: 256 * 8)), "Qwen2's k rows are not permuted: PEFT B is ours")
        XCTAssertEqual(try peft.floats("base_model.model.model.layers.5.self_attn.v_proj.lora_B.weight", shape: [256, 8]),
                       Array(UnsafeBufferPointer(start: vB, count: 256 * 8)), "the trained values are exported")

        // Both forms record the base and all 196 pairs; the PEFT one gives the training forward's losses.
        var adapters: [String: LoRAAdapter] = [:]
        for (form, adapterPath) in [("gguf", run.appendingPathComponent("adapter.gguf").path), ("peft", run.appendingPathComponent("peft").path)] {
            let adapter = try LoRAAdapter(path: adapterPath)
            XCTAssertEqual(adapter.base?.architecture, "qwen2", form)
            XCTAssertEqual(adapter.base?.name, Self.fileName, form)
            XCTAssertEqual(adapter.base?.embeddingLength, 1536, form)
            XCTAssertEqual(adapter.base?.blockCount, 28, form)
            XCTAssertEqual(adapter.base?.vocabularySize, 151_936, form)
            XCTAssertEqual(adapter.pairs.count, 28 * 7, form)
            adapters[form] = adapter
        }
        let ids = Array(goldenIDs.suffix(20)), inputs = Array(ids.dropLast()), targets = Array(ids.dropFirst())
        let net = TrainingModel(base: base, lora: lora, maxBatch: 1, maxTime: inputs.count)
        net.forward(tokens: inputs, targets: targets, batch: 1, time: inputs.count)
        let training = net.lastLosses().map(Double.init)
        let model = try LlamaModel(file: file, options: .init(denseWeights: false), adapter: try XCTUnwrap(adapters["peft"]))
        let logits = try model.forward([.init(cache: model.makeCache(capacity: 32, precision: .f32), tokens: inputs.map(Int.init))],
                                       logits: .all, kernels: .reference)
        let v = base.config.vocab
        let runtime = targets.enumerated().map { t, target -> Double in
            let row = logits[(t * v)..<((t + 1) * v)]
            let m = row.max()!
            return Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) }) - Double(row[t * v + Int(target)])
        }
        let diff = zip(runtime, training).map { abs($0 - $1) }.max()!
        print("qwen runtime LoRA (PEFT folder) vs tuner training forward: per-position loss max |diff| \(diff)")
        XCTAssertLessThan(diff, 1e-3)
    }
}
