import Foundation
import XCTest
@testable import LLM
import Tensor
@testable import Tuner

/// The runtime's LoRA (LLM `LoRAAdapter` in `LlamaModel`) against the tuner's float32 training
/// forward with the same adapter, and the three files the tuner writes (GGUF LoRA, PEFT folder,
/// checkpoint) loading to identical logits.
final class AdapterInferenceTests: XCTestCase {
    /// Seeded LoRA values with non-zero B on all seven targets of every layer.
    private func randomLoRA(_ base: BaseModel) -> LoRAParameters {
        let lora = LoRAParameters(config: LoRAConfig(rank: 8, alpha: 16), model: base.config)
        var rng = SplitMix64(seed: 21)
        for s in lora.slots {
            let (a, b, _, _) = lora.views(s)
            let bound = 1 / Float(s.inF).squareRoot()
            for i in 0..<(8 * s.inF) { a[i] = (rng.nextUnitFloat() * 2 - 1) * bound }
            for i in 0..<(s.outF * 8) { b[i] = (rng.nextUnitFloat() * 2 - 1) * 0.05 }
        }
        return lora
    }

    /// Per-position cross-entropy of `targets` under logits `(T, V)`.
    private func losses(_ logits: [Float], targets: [Int], vocab: Int) -> [Double] {
        targets.enumerated().map { t, target in
            let row = logits[(t * vocab)..<((t + 1) * vocab)]
            let m = row.max()!
            let lse = Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) })
            return lse - Double(row[t * vocab + target])
        }
    }

    func testRuntimeAdapterMatchesTrainingForwardAndAllFormsLoadAlike() throws {
        let base = try SharedModel.load()
        let lora = randomLoRA(base)
        let tmp = try TemporaryDirectory(self)
        // The three forms the tuner writes.
        try AdapterFiles.exportGGUF(lora, to: tmp.file("adapter.gguf"), baseName: "SmolLM2-135M-Instruct.Q4_1.gguf")
        try AdapterFiles.exportPEFT(lora, to: tmp.file("peft"), baseModel: TestPaths.smolLM2.path)
        let step = tmp.file("run/checkpoints/step-000003")
        try FileManager.default.createDirectory(at: step, withIntermediateDirectories: true)
        try safetensorsData(AdapterFiles.adapterTensors(lora), metadata: ["orientation": "gguf"])
            .write(to: step.appendingPathComponent("adapter.safetensors"))
        try Data("step-000003\n".utf8).write(to: tmp.file("run/checkpoints/latest"))
        try Data(#"{"lora": {"rank": 8, "alpha": 16}}"#.utf8).write(to: tmp.file("run/config.json"))

        let ids = [1, 504, 3458, 282, 4098, 28, 1115, 314, 253, 5048, 30, 378, 3421, 6046, 2, 198, 504]
        let inputs = Array(ids.dropLast()), targets = Array(ids.dropFirst())
        let net = TrainingModel(base: base, lora: lora, maxBatch: 1, maxTime: inputs.count)
        net.forward(tokens: inputs.map(Int32.init), targets: targets.map(Int32.init), batch: 1, time: inputs.count)
        let trainingLosses = net.lastLosses().map(Double.init)

        let file = try GGUFFile(path: TestPaths.smolLM2.path)
        var logitsByForm: [String: [Float]] = [:]
        for (form, path) in [("gguf", tmp.file("adapter.gguf").path), ("peft", tmp.file("peft").path),
                             ("checkpoint", tmp.file("run").path)] {
            let adapter = try LoRAAdapter(path: path)
            XCTAssertEqual(adapter.pairs.count, 30 * 7, form)
            if form != "checkpoint" {
                XCTAssertEqual(adapter.base?.embeddingLength, 576, form)
                XCTAssertEqual(adapter.base?.architecture, "llama", form)
            }
            let model = try LlamaModel(file: file, options: .init(denseWeights: false), adapter: adapter)
            logitsByForm[form] = try model.forward([.init(cache: model.makeCache(capacity: 32, precision: .f32), tokens: inputs)],
                                                   logits: .all, kernels: .reference)
        }
        let vocab = base.config.vocab
        let runtime = losses(logitsByForm["gguf"]!, targets: targets, vocab: vocab)
        let lossDiff = zip(runtime, trainingLosses).map { abs($0 - $1) }.max()!
        let plain = try LlamaModel(file: file, options: .init(denseWeights: false))
        let baseLogits = try plain.forward([.init(cache: plain.makeCache(capacity: 32, precision: .f32), tokens: inputs)],
                                           logits: .all, kernels: .reference)
        let effect = zip(losses(baseLogits, targets: targets, vocab: vocab), trainingLosses).map { abs($0 - $1) }.max()!
        print("runtime LoRA vs tuner training forward: per-position loss max |diff| \(lossDiff) "
            + "(the adapter moves the loss by up to \(effect))")
        XCTAssertGreaterThan(effect, 0.05, "the adapter must change the loss")
        XCTAssertLessThan(lossDiff, 1e-3)

        for form in ["peft", "checkpoint"] {
            let diff = zip(logitsByForm[form]!, logitsByForm["gguf"]!).map { abs($0 - $1) }.max()!
            print("\(form) vs GGUF LoRA logits: max |diff| \(diff)")
            XCTAssertLessThanOrEqual(diff, 1e-6, form)
        }
    }
}
