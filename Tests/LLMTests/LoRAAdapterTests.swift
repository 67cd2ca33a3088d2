import Foundation
import XCTest
@testable import LLM
import Tensor

/// LoRA adapters at inference on the real models: the branch in every forward path (reference,
/// quantized decode, batched) against the same adapter merged into float32 weights or into a GGUF
/// written by `AdapterMerge`; bad adapters refused with the file, tensor and shapes named.
/// (The comparison with the tuner's training forward is in `TunerTests/AdapterInferenceTests`.)
final class LoRAAdapterTests: XCTestCase {
    /// A seeded adapter on every q/k/v/o/gate/up/down weight: A ~ U(±1/sqrt(IN)), B ~ U(±0.05),
    /// rank 8, alpha 16 (scale 2): big enough to move the logits by whole units.
    static func randomAdapter(_ linears: [LinearWeight], seed: UInt64, base: LoRAAdapter.BaseModel? = nil,
                              rank: Int = 8) -> LoRAAdapter {
        var rng = SplitMix64(seed: seed)
        var pairs: [String: LoRAAdapter.Pair] = [:]
        for w in linears.sorted(by: { $0.name < $1.name }) {
            let bound = 1 / Float(w.columns).squareRoot()
            let a = (0..<(rank * w.columns)).map { _ in (rng.nextUnitFloat() * 2 - 1) * bound }
            let b = (0..<(w.rows * rank)).map { _ in (rng.nextUnitFloat() * 2 - 1) * 0.05 }
            pairs[w.name] = .init(a: a, b: b, rank: rank, inputs: w.columns, outputs: w.rows, scale: 16 / Float(rank))
        }
        return LoRAAdapter(pairs: pairs, base: base)
    }

    private static let prompt = [1, 504, 3458, 282, 4098, 28, 1115, 314, 253, 5048, 30, 378, 3421, 6046, 2]

    private func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    // MARK: SmolLM2 (Llama)

    /// In the forward pass vs merged into float32 weights, on every path: prefill (`.all`,
    /// reference sgemm), token-by-token decode on the quantized kernels, a batched step.
    func testLlamaAdapterInForwardMatchesMerged() throws {
        let file = try SharedModel.open()
        let base = try LlamaModel(file: file, options: .init(denseWeights: false))
        let adapter = Self.randomAdapter(base.weights.blockLinears, seed: 7)
        let inForward = try LlamaModel(file: file, options: .init(denseWeights: false), adapter: adapter)
        let merged = try LlamaModel(file: file, options: .init(denseWeights: false, adapterMode: .merged), adapter: adapter)
        XCTAssertEqual(inForward.adapter?.mode, .inForward)
        XCTAssertEqual(merged.lora.count, 0)
        let ids = Self.prompt
        func prefill(_ m: LlamaModel) throws -> [Float] {
            try m.forward([.init(cache: m.makeCache(capacity: 32, precision: .f32), tokens: ids)], logits: .all, kernels: .reference)
        }
        let plain = try prefill(base), a = try prefill(inForward), b = try prefill(merged)
        let effect = maxDiff(plain, a), prefillDiff = maxDiff(a, b)
        print("SmolLM2 adapter: moves logits by up to \(effect); in-forward vs merged prefill max |diff| \(prefillDiff)")
        XCTAssertGreaterThan(effect, 0.5, "the adapter must change the logits")
        XCTAssertLessThan(prefillDiff, 2e-3)

        // Decode one token at a time on the fast (quantized) kernels vs the merged prefill.
        let V = base.config.vocabularySize
        let cache = inForward.makeCache(capacity: 32, precision: .f32)
        var decodeDiff: Float = 0
        for (t, id) in ids.enumerated() {
            let row = try inForward.forward([.init(cache: cache, tokens: [id])], logits: .last, kernels: .fast)
            decodeDiff = max(decodeDiff, maxDiff(row, Array(b[(t * V)..<((t + 1) * V)])))
        }
        print("SmolLM2 adapter: fast decode (in forward) vs merged prefill max |diff| \(decodeDiff)")
        XCTAssertLessThan(decodeDiff, 2e-2)

        // A batched step of two sequences (6 stacked rows) vs the second alone, merged: with the
        // reference kernels, and with the fast ones (6 rows: the int16-activation integer kernels,
        // ~1e-2 logit error by themselves).
        let alone = try merged.forward([.init(cache: merged.makeCache(capacity: 32, precision: .f32), tokens: Array(ids.suffix(3)))],
                                       logits: .last, kernels: .reference)
        for (kernels, tolerance) in [(LlamaModel.Options.Kernels.reference, Float(2e-3)), (.fast, 3e-2)] {
            let c1 = inForward.makeCache(capacity: 32, precision: .f32), c2 = inForward.makeCache(capacity: 32, precision: .f32)
            let both = try inForward.forward([.init(cache: c1, tokens: Array(ids.prefix(3))), .init(cache: c2, tokens: Array(ids.suffix(3)))],
                                             logits: .last, kernels: kernels)
            let batchDiff = maxDiff(Array(both[V...]), alone)
            print("SmolLM2 adapter: batched \(kernels) step (in forward) vs merged alone max |diff| \(batchDiff)")
            XCTAssertLessThan(batchDiff, tolerance, "\(kernels)")
        }
    }

    /// `AdapterMerge` to F16 and Q8_0 GGUF files, loaded back, against the adapter in the forward pass.
    func testMergedGGUFMatchesAdapterInForward() throws {
        let file = try SharedModel.open()
        let plain = try LlamaModel(file: file, options: .init(denseWeights: false))
        let adapter = Self.randomAdapter(plain.weights.blockLinears, seed: 11)
        let reference = try LlamaModel(file: file, options: .init(denseWeights: false), adapter: adapter)
        let ids = Self.prompt
        let expected = try reference.forward([.init(cache: reference.makeCache(capacity: 32, precision: .f32), tokens: ids)],
                                             logits: .all, kernels: .reference)
        let baseLogits = try plain.forward([.init(cache: plain.makeCache(capacity: 32, precision: .f32), tokens: ids)],
                                           logits: .all, kernels: .reference)
        func meanDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(Float(0)) { $0 + abs($1.0 - $1.1) } / Float(a.count) }
        let effect = meanDiff(expected, baseLogits)
        let tmp = try TemporaryDirectory(self)
        // F16 rounds each merged weight to 11 bits; Q8_0 re-quantizes it (max|w|/254 per block of
        // 32), so its logits are compared on average and on the greedy token, not only the maximum.
        let V = reference.config.vocabularySize
        func argmaxes(_ l: [Float]) -> [Int] {
            (0..<ids.count).map { t in (0..<V).max { l[t * V + $0] < l[t * V + $1] }! }
        }
        for (type, tolerance, meanTolerance) in [(AdapterMerge.OutputType.f16, Float(6e-2), Float(2e-2)), (.q8_0, 1.5, 0.3)] {
            let path = tmp.file("merged-\(type.rawValue).gguf").path
            let summary = try AdapterMerge.write(model: file, adapter: adapter, type: type, to: path)
            XCTAssertEqual(summary.merged, 30 * 7)
            let mergedFile = try GGUFFile(path: path)
            XCTAssertEqual(try mergedFile.tensorInfo(named: "blk.3.attn_q.weight").type, type == .f16 ? .f16 : .q8_0)
            XCTAssertEqual(try mergedFile.tensorInfo(named: "token_embd.weight").type, try file.tensorInfo(named: "token_embd.weight").type)
            XCTAssertEqual(try mergedFile.metadata.strings("tokenizer.ggml.tokens"), try file.metadata.strings("tokenizer.ggml.tokens"))
            XCTAssertEqual(mergedFile.metadata["tokenizer.chat_template"], file.metadata["tokenizer.chat_template"])
            let model = try LlamaModel(file: mergedFile, options: .init(denseWeights: false))
            let logits = try model.forward([.init(cache: model.makeCache(capacity: 32, precision: .f32), tokens: ids)],
                                           logits: .all, kernels: .reference)
            let diff = maxDiff(expected, logits)
            let mean = meanDiff(expected, logits)
            let same = zip(argmaxes(expected), argmaxes(logits)).filter { $0 == $1 }.count
            print("merged \(type.rawValue) GGUF (\(summary.bytes / 1_000_000) MB) vs adapter in forward: max |diff| \(diff)"
                + " (tolerance \(tolerance)), mean |diff| \(mean) (tolerance \(meanTolerance); the adapter itself moves them by"
                + " \(effect) on average), same argmax at \(same)/\(ids.count) positions")
            XCTAssertLessThan(mean, effect / 4, "\(type): the merged file must be far closer to the adapter than the base is")
            XCTAssertLessThan(diff, tolerance, "\(type)")
            XCTAssertLessThan(mean, meanTolerance, "\(type)")
            XCTAssertGreaterThanOrEqual(same, ids.count - 1, "\(type)")
        }
    }

    // MARK: Gemma 3

    /// A seeded adapter on Gemma 3: in the forward pass (reference forward, cached prefill,
    /// fast decode) vs merged into the float32 weights.
    func testGemmaAdapterInForwardMatchesMerged() throws {
        let file = try SharedGemma.open()
        let plain = try SharedGemma.model()
        let adapter = Self.randomAdapter(plain.layers.flatMap(\.linears), seed: 5)
        let inForward = try Gemma3Model(file: file, adapter: adapter)
        let merged = try Gemma3Model(file: file, options: .init(adapterMode: .merged), adapter: adapter)
        let ids = [2] + Array(Self.prompt.dropFirst().map { $0 + 100 })
        let V = plain.config.vocabularySize
        let base = try plain.forward(ids, allRows: true)
        let a = try inForward.forward(ids, allRows: true), b = try merged.forward(ids, allRows: true)
        let effect = maxDiff(base, a), diff = maxDiff(a, b)
        print("Gemma 3 adapter: moves logits by up to \(effect); in-forward vs merged max |diff| \(diff)")
        XCTAssertGreaterThan(effect, 0.5)
        XCTAssertLessThan(diff, 5e-3)

        let cache = inForward.makeCache(capacity: 32, precision: .f32)
        let cached = try inForward.forward([.init(cache: cache, tokens: Array(ids.prefix(8)))], logits: .all, kernels: .reference)
        var cachedDiff = maxDiff(cached, Array(b[..<(8 * V)]))
        for t in 8..<ids.count {
            let row = try inForward.forward([.init(cache: cache, tokens: [ids[t]])], logits: .last, kernels: .fast)
            cachedDiff = max(cachedDiff, maxDiff(row, Array(b[(t * V)..<((t + 1) * V)])))
        }
        print("Gemma 3 adapter: cached prefill + fast decode (in forward) vs merged max |diff| \(cachedDiff)")
        XCTAssertLessThan(cachedDiff, 5e-2)
    }

    // MARK: Bad adapters

    /// A SmolLM2 adapter on Gemma 3 is refused naming both models; without the recorded base,
    /// the first mis-shaped tensor is named with both shapes.
    func testAdapterOfAnotherModelIsRefused() throws {
        let smolFile = try SharedModel.open(), gemmaFile = try SharedGemma.open()
        let smol = try LlamaModel(file: smolFile, options: .init(denseWeights: false))
        let tmp = try TemporaryDirectory(self)
        let identity = LoRAAdapter.BaseModel(file: smolFile, config: smol.config)
        var adapter = Self.randomAdapter(Array(smol.weights.blockLinears.prefix(7)), seed: 1, base: identity)
        let path = tmp.file("smol.gguf").path
        try adapter.writeGGUF(to: path)
        let loaded = try LoRAAdapter(path: path)
        XCTAssertEqual(loaded.base, identity)
        XCTAssertThrowsError(try loadLanguageModel(file: gemmaFile, adapter: loaded)) { error in
            let text = error.localizedDescription
            print("wrong base: \(text)")
            guard case AdapterError.wrongBaseModel = error else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("smol.gguf") && text.contains("llama") && text.contains("gemma3")
                          && text.contains("C=576") && text.contains("C=640"), text)
        }
        adapter.base = nil
        XCTAssertThrowsError(try loadLanguageModel(file: gemmaFile, adapter: adapter)) { error in
            print("no recorded base: \(error.localizedDescription)")
            XCTAssertEqual(error as? AdapterError, .wrongShape(path: "<memory>", tensor: "blk.0.attn_k.weight (lora A)",
                                                               expected: [8, 640], actual: [8, 576]))
        }
    }

    /// Truncated, corrupt or missing adapter files give `AdapterError`s naming the file.
    func testCorruptAdapterFilesGiveClearErrors() throws {
        let smol = try LlamaModel(file: try SharedModel.open(), options: .init(denseWeights: false))
        let tmp = try TemporaryDirectory(self)
        let path = tmp.file("adapter.gguf").path
        try Self.randomAdapter(Array(smol.weights.blockLinears.prefix(2)), seed: 2).writeGGUF(to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 1000).write(to: tmp.file("truncated.gguf"))
        XCTAssertThrowsError(try LoRAAdapter(path: tmp.file("truncated.gguf").path)) { error in
            print("truncated: \(error.localizedDescription)")
            guard case let AdapterError.unreadable(p, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(p, tmp.file("truncated.gguf").path)
        }
        // A run folder (adapter.gguf inside) loads; a PEFT folder with a garbage safetensors does not.
        XCTAssertEqual(try LoRAAdapter(path: tmp.url.path).pairs.count, 2)
        let peft = tmp.file("peft")
        try FileManager.default.createDirectory(at: peft, withIntermediateDirectories: true)
        try Data(#"{"peft_type": "LORA", "r": 8, "lora_alpha": 16}"#.utf8).write(to: peft.appendingPathComponent("adapter_config.json"))
        try Data(repeating: 0xFF, count: 64).write(to: peft.appendingPathComponent("adapter_model.safetensors"))
        XCTAssertThrowsError(try LoRAAdapter(path: peft.path)) { error in
            print("corrupt PEFT: \(error.localizedDescription)")
            XCTAssertTrue(error.localizedDescription.contains("adapter_model.safetensors"))
        }
        try Data(#"{"peft_type": "LORA", "r": 8, "use_dora": true}"#.utf8).write(to: peft.appendingPathComponent("adapter_config.json"))
        XCTAssertThrowsError(try LoRAAdapter(path: peft.path)) { error in
            XCTAssertEqual(error as? AdapterError, .unsupported(path: peft.appendingPathComponent("adapter_config.json").path,
                                                                 feature: "use_dora (DoRA)"))
        }
        XCTAssertThrowsError(try LoRAAdapter(path: tmp.file("nothing-here").path)) { error in
            guard case AdapterError.notAnAdapter = error else { return XCTFail("\(error)") }
        }
        // A model file is not an adapter.
        XCTAssertThrowsError(try LoRAAdapter(path: TestPaths.smolLM2.path)) { error in
            print("model as adapter: \(error.localizedDescription)")
            guard case AdapterError.notAnAdapter = error else { return XCTFail("\(error)") }
        }
    }
}
