import Foundation
import XCTest
import TestSupport
@testable import LLM
import Tensor
@testable import Tuner

/// Gemma 3 270M in the tuner, on the real model: the training forward against the runtime's
/// `Gemma3Model` (which matches the golden logits), the LoRA gradient against central differences,
/// and a tiny real run on our seeds rendered as plain completion, with its exports.
final class GemmaTrainingTests: XCTestCase {
    static let gemma = TestPaths.repoRoot.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf")
    private static let shared = Result { try BaseModel(path: gemma.path) }

    /// The float32 Gemma base, loaded once; fails (not skips) when the model is missing.
    private func base() throws -> BaseModel {
        _ = try RepositoryFiles.model(Self.gemma.lastPathComponent)
        return try Self.shared.get()
    }

    /// BOS + the seeds' abstracts (real biomedical text), cut to `count` ids.
    private func realIDs(_ count: Int) throws -> [Int32] {
        let file = try GGUFFile(path: Self.gemma.path)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let seeds = try String(contentsOf: TestPaths.repoRoot.appendingPathComponent("corpora/seeds/biomedical.jsonl"), encoding: .utf8)
        let text = seeds.split(separator: "\n").compactMap { line -> String? in
            let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return o?["input"] as? String
        }.joined(separator: "\n\n")
        let ids = tokenizer.encode(text, addBOS: true, parseSpecial: false)
        XCTAssertGreaterThanOrEqual(ids.count, count)
        return ids.prefix(count).map(Int32.init)
    }

    /// Per-position `−log softmax(logits)[target]` `(T)` in double precision.
    private func nll(_ logits: [Float], targets: [Int32], vocab: Int) -> [Double] {
        targets.enumerated().map { t, target in
            let row = logits[(t * vocab)..<((t + 1) * vocab)]
            let m = row.max()!
            return Double(m) + log(row.reduce(0.0) { $0 + exp(Double($1 - m)) }) - Double(row[t * vocab + Int(target)])
        }
    }

    func testConfigMirrorsTheRuntime() throws {
        let c = try base().config, file = try GGUFFile(path: Self.gemma.path)
        let runtime = try Gemma3Model(file: file).config
        XCTAssertEqual(c.architecture, "gemma3")
        XCTAssertEqual([c.width, c.layers, c.heads, c.kvHeads, c.headSize, c.ffn, c.vocab],
                       [runtime.embeddingLength, runtime.layerCount, runtime.headCount, runtime.kvHeadCount,
                        runtime.headSize, runtime.feedForwardLength, runtime.vocabularySize])
        XCTAssertEqual(c.queryWidth, 1024)
        XCTAssertEqual(c.ropeBases, runtime.ropeBase)
        XCTAssertEqual(c.slidingWindows, runtime.slidingWindow)
        XCTAssertEqual(c.slidingWindows.enumerated().filter { $0.element == nil }.map(\.offset), [5, 11, 17])
        XCTAssertEqual(c.embeddingScale, runtime.embeddingScale)
        XCTAssertEqual(c.attentionScale, runtime.attentionScale)
        XCTAssertEqual(c.normEpsilon, runtime.normEpsilon)
        XCTAssertEqual(c.ropeStyle, .halves)
        XCTAssertEqual(c.activation, .geluTanh)
        XCTAssertTrue(c.queryKeyNorm && c.postNorms)
    }

    /// 520 tokens, so the local layers' 512-token sliding window is in play for the last rows.
    func testForwardMatchesRuntimeGemma3ModelAndGolden() throws {
        let base = try base(), v = base.config.vocab
        let runtime = try Gemma3Model(file: try GGUFFile(path: Self.gemma.path))
        let ids = try realIDs(520), t = ids.count
        let lora = LoRAParameters(config: LoRAConfig(), model: base.config)   // B = 0: the base model
        let net = TrainingModel(base: base, lora: lora, maxBatch: 1, maxTime: t)
        let ours = net.logits(tokens: ids, batch: 1, time: t)
        let theirs = try runtime.forward(ids.map(Int.init), allRows: true)
        XCTAssertEqual(ours.count, theirs.count)
        var maxDiff: Float = 0, maxWindowed: Float = 0
        for i in 0..<ours.count {
            let d = abs(ours[i] - theirs[i])
            maxDiff = max(maxDiff, d)
            if i / v >= 512 { maxWindowed = max(maxWindowed, d) }
        }
        let targets = Array(ids.dropFirst()) + [Tuner.Ops.ignoreIndex]
        let (sum, count) = net.forward(tokens: ids, targets: targets, batch: 1, time: t)
        let runtimeNLL = nll(Array(theirs.prefix((t - 1) * v)), targets: Array(targets.prefix(t - 1)), vocab: v)
        let runtimeLoss = runtimeNLL.reduce(0, +) / Double(t - 1), loss = sum / Double(count)
        let worstPosition = zip(net.lastLosses().prefix(t - 1), runtimeNLL).map { abs(Double($0) - $1) }.max()!
        print("gemma training forward vs Gemma3Model, T=\(t): max logit difference \(maxDiff) (rows past the window \(maxWindowed)); "
              + "loss \(loss) vs \(runtimeLoss) (difference \(abs(loss - runtimeLoss)), worst position \(worstPosition))")
        XCTAssertEqual(count, t - 1)
        XCTAssertLessThan(maxDiff, 2e-3)
        XCTAssertLessThan(abs(loss - runtimeLoss), 1e-3)
        XCTAssertLessThan(worstPosition, 1e-2)

        // The golden case (transformers, float32): mean NLL within 1e-3.
        let golden = try TestPaths.json("gemma3_270m_logits.json")
        for case let c as [String: Any] in try XCTUnwrap(golden["cases"] as? [Any]) {
            let gids = try XCTUnwrap(c["ids"] as? [Int]).map(Int32.init), expected = try XCTUnwrap(c["mean_nll"] as? Double)
            let (s, n) = net.forward(tokens: gids, targets: Array(gids.dropFirst()) + [Tuner.Ops.ignoreIndex], batch: 1, time: gids.count)
            print("golden '\(c["prompt"] as? String ?? "")': mean NLL \(s / Double(n)) vs \(expected)")
            XCTAssertEqual(s / Double(n), expected, accuracy: 1e-3)
        }

        // The quantized base (projections dequantized on use) gives the same losses.
        let quantized = try BaseModel(path: Self.gemma.path, precision: .quantized)
        let q = TrainingModel(base: quantized, lora: LoRAParameters(config: LoRAConfig(), model: quantized.config), maxBatch: 1, maxTime: 64)
        let short = Array(ids.prefix(64)), shortTargets = Array(targets.prefix(63)) + [Tuner.Ops.ignoreIndex]
        let (qs, _) = q.forward(tokens: short, targets: shortTargets, batch: 1, time: 64)
        let (fs, _) = net.forward(tokens: short, targets: shortTargets, batch: 1, time: 64)
        print("quantized base: loss \(qs / 63) vs float32 \(fs / 63); weights \(quantized.byteCount >> 20) vs \(base.byteCount >> 20) MiB")
        XCTAssertEqual(qs, fs, accuracy: 1e-4 * abs(fs))
        XCTAssertLessThan(quantized.byteCount, base.byteCount)
    }

    /// d/dε L(θ + ε·u) at 0 against the analytic `g·u`, along the whole gradient and along its q/k
    /// part and its o/down part alone (the paths through the q/k norms and the post-norms), with
    /// LoRA dropout on, seeded non-zero A and B on every target, and T = 40 real tokens.
    func testLoRAGradientMatchesFiniteDifference() throws {
        let base = try base()
        let lora = LoRAParameters(config: LoRAConfig(rank: 4, alpha: 8, dropout: 0.1), model: base.config)
        var rng = SplitMix64(seed: 5)
        for s in lora.slots {
            let (a, b, _, _) = lora.views(s)
            let bound = 1 / Float(s.inF).squareRoot()
            for i in 0..<(4 * s.inF) { a[i] = (rng.nextUnitFloat() * 2 - 1) * bound }
            for i in 0..<(s.outF * 4) { b[i] = (rng.nextUnitFloat() * 2 - 1) * 0.02 }
        }
        let ids = try realIDs(40), t = ids.count
        let targets = Array(ids.dropFirst()) + [Tuner.Ops.ignoreIndex]
        let model = TrainingModel(base: base, lora: lora, maxBatch: 1, maxTime: t)
        model.dropoutKey = 99
        func loss() -> Double {
            let (sum, count) = model.forward(tokens: ids, targets: targets, batch: 1, time: t)
            return sum / Double(count)
        }
        lora.zeroGrads()
        let (_, count) = model.forward(tokens: ids, targets: targets, batch: 1, time: t)
        model.backward(lossScale: 1 / Float(count))
        let g = Array(lora.grads), theta = Array(lora.values)
        for (name, targets) in [("all targets", LoRATarget.allCases), ("q, k", [.q, .k]), ("o, down", [.o, .down])] as [(String, [LoRATarget])] {
            // u = the gradient restricted to these targets, normalised; g·u = |g restricted|.
            var u = [Float](repeating: 0, count: g.count)
            for s in lora.slots where targets.contains(s.target) {
                let range = s.offsetA..<(s.offsetB + s.outF * 4)
                for i in range { u[i] = g[i] }
            }
            let norm = u.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            XCTAssertGreaterThan(norm, 0, name)
            let eps = 1e-3
            func shifted(_ e: Double) -> Double {
                for i in theta.indices { lora.values[i] = theta[i] + Float(e * Double(u[i]) / norm) }
                return loss()
            }
            let numeric = (shifted(eps) - shifted(-eps)) / (2 * eps)
            for i in theta.indices { lora.values[i] = theta[i] }
            let relative = abs(numeric - norm) / norm
            print("gemma directional derivative (\(name)): analytic \(norm), numeric \(numeric), relative error \(relative)")
            XCTAssertLessThan(relative, 2e-2, name)
        }
    }

    /// Three steps on our seeds (no chat template: a completion prompt), the loss finite and the
    /// adapter exported as PEFT and GGUF LoRA.
    func testTinyRunOnSeedsAsCompletionPromptsAndExport() throws {
        let base = try base(), tmp = try TemporaryDirectory(self)
        var o = TrainOptions(modelPath: Self.gemma.path,
                             dataPath: TestPaths.repoRoot.appendingPathComponent("corpora/seeds/biomedical.jsonl").path)
        o.steps = 3; o.batchSize = 2; o.maxLength = 96; o.warmupSteps = 1; o.learningRate = 1e-3
        o.validationFraction = 0.05; o.evalEvery = 3; o.checkpointEvery = 3; o.lora.dropout = 0.05
        let run = tmp.file("run")
        let (trainer, info) = try TuneRun.prepare(options: o, runDirectory: run, resume: false, base: base)
        XCTAssertEqual(info.format, .completion)
        XCTAssertGreaterThan(info.trainExamples, 40)

        // The rendering: <bos> and the prompt (as served), then the trained blank line, response and <eos>.
        let file = try GGUFFile(path: Self.gemma.path)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let template = try ChatTemplate(metadata: file.metadata)
        XCTAssertEqual(template.bosText, "<bos>")
        XCTAssertEqual(template.eosText, "<eos>")
        let loader = DatasetLoader(tokenizer: tokenizer, template: template, maxLength: 4096)
        let ex = try XCTUnwrap(loader.example([.user("Name the vitamin made in skin.\n\nSunlight helps."), .assistant("Vitamin D.")], line: 1))
        XCTAssertEqual(Int(ex.ids.first!), tokenizer.specialTokens.bos)
        XCTAssertEqual(Int(ex.ids.last!), tokenizer.specialTokens.eos)
        let trained = ex.targets.filter { $0 != Tuner.Ops.ignoreIndex }.map(Int.init)
        XCTAssertEqual(tokenizer.decode(trained), "\n\nVitamin D.<eos>")
        XCTAssertEqual(tokenizer.decode(ex.ids.map(Int.init)), "<bos>Name the vitamin made in skin.\n\nSunlight helps.\n\nVitamin D.<eos>")

        let summary = try trainer.run { _ in .more }
        XCTAssertEqual(summary.stepsDone, 3)
        let log = try String(contentsOf: run.appendingPathComponent("log.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(StepRecord.self, from: Data($0.utf8)) }
        print("gemma tiny run: losses \(log.map(\.loss)), validation \(log.compactMap(\.validationLoss)), "
              + "\(info.trainExamples) train / \(info.validationExamples) held out")
        XCTAssertEqual(log.count, 3)
        XCTAssertTrue(log.allSatisfy { $0.loss.isFinite && $0.loss > 0 })
        XCTAssertNotNil(log.last?.validationLoss)

        try AdapterFiles.exportPEFT(trainer.model.lora, to: run.appendingPathComponent("peft"), baseModel: o.modelPath)
        try AdapterFiles.exportGGUF(trainer.model.lora, to: run.appendingPathComponent("adapter.gguf"), baseName: "gemma-3-270m-q4_k_m.gguf")
        // PEFT shapes follow Gemma's widths: q is (1024, r) out of 640 inputs, o takes 1024 inputs.
        let peft = try SafetensorsFile(path: run.appendingPathComponent("peft/adapter_model.safetensors").path)
        let qB = try peft.floats("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", shape: [1024, 8])
        let oA = try peft.floats("base_model.model.model.layers.17.self_attn.o_proj.lora_A.weight", shape: [8, 1024])
        XCTAssertTrue(qB.contains { $0 != 0 } && oA.contains { $0 != 0 }, "trained values are exported")
        let adapter = try GGUFFile(path: run.appendingPathComponent("adapter.gguf").path)
        XCTAssertEqual(try adapter.tensor(named: "blk.0.attn_output.weight.lora_a").info.dims, [1024, 8])
    }

    /// A seeded adapter on all seven targets, exported as PEFT and GGUF LoRA, loads in the runtime's
    /// `Gemma3Model` and gives the tuner's per-position losses; PEFT's B rows are ours unpermuted.
    func testExportedAdapterLoadsInGemma3ModelWithTheTrainingLosses() throws {
        let base = try base(), tmp = try TemporaryDirectory(self)
        let lora = LoRAParameters(config: LoRAConfig(rank: 8, alpha: 16), model: base.config)
        var rng = SplitMix64(seed: 31)
        for s in lora.slots {
            let (a, b, _, _) = lora.views(s)
            let bound = 1 / Float(s.inF).squareRoot()
            for i in 0..<(8 * s.inF) { a[i] = (rng.nextUnitFloat() * 2 - 1) * bound }
            for i in 0..<(s.outF * 8) { b[i] = (rng.nextUnitFloat() * 2 - 1) * 0.05 }
        }
        try AdapterFiles.exportPEFT(lora, to: tmp.file("peft"), baseModel: Self.gemma.path)
        try AdapterFiles.exportGGUF(lora, to: tmp.file("adapter.gguf"), baseName: "gemma-3-270m-q4_k_m.gguf")
        let peft = try SafetensorsFile(path: tmp.file("peft/adapter_model.safetensors").path)
        let (_, qB, _, _) = lora.views(try XCTUnwrap(lora.slot(layer: 3, target: .q)))
        XCTAssertTrue(try peft.floats("base_model.model.model.layers.3.self_attn.q_proj.lora_B.weight", shape: [1024, 8])
            == Array(UnsafeBufferPointer(start: qB, count: 1024 * 8)), "Gemma's q rows are not permuted: PEFT B is ours")

        let ids = try realIDs(24), inputs = Array(ids.dropLast()), targets = Array(ids.dropFirst())
        let net = TrainingModel(base: base, lora: lora, maxBatch: 1, maxTime: inputs.count)
        net.forward(tokens: inputs, targets: targets, batch: 1, time: inputs.count)
        let training = net.lastLosses().map(Double.init)
        let file = try GGUFFile(path: Self.gemma.path), v = base.config.vocab
        var logitsByForm: [String: [Float]] = [:]
        for (form, path) in [("gguf", tmp.file("adapter.gguf").path), ("peft", tmp.file("peft").path)] {
            let adapter = try LoRAAdapter(path: path)
            XCTAssertEqual(adapter.base?.architecture, "gemma3", form)
            logitsByForm[form] = try Gemma3Model(file: file, adapter: adapter).forward(inputs.map(Int.init), allRows: true)
        }
        let runtime = nll(logitsByForm["gguf"]!, targets: targets, vocab: v)
        let plain = nll(try Gemma3Model(file: file).forward(inputs.map(Int.init), allRows: true), targets: targets, vocab: v)
        let diff = zip(runtime, training).map { abs($0 - $1) }.max()!
        let effect = zip(plain, training).map { abs($0 - $1) }.max()!
        let forms = zip(logitsByForm["peft"]!, logitsByForm["gguf"]!).map { abs($0 - $1) }.max()!
        print("gemma runtime LoRA vs tuner training forward: per-position loss max |diff| \(diff) (the adapter moves it by up to \(effect)); PEFT vs GGUF logits \(forms)")
        XCTAssertGreaterThan(effect, 0.05, "the adapter must change the loss")
        XCTAssertLessThan(diff, 1e-3)
        XCTAssertLessThanOrEqual(forms, 1e-5)
    }
}
