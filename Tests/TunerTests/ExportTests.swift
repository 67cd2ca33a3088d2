import XCTest
@testable import LLM
@testable import Tensor
@testable import Tuner

/// PEFT and GGUF adapter export: names, shapes and orientation as PEFT and llama.cpp expect.
final class ExportTests: XCTestCase {
    /// llama.cpp's converter: `w.reshape(n_head, 2, rows/n_head/2, in).swapaxes(1, 2)` maps HF row
    /// `(h, half, i)` to GGUF row `(h, i, half)`. Our inverse must undo exactly that.
    func testQKRowPermutationMatchesConverter() {
        let hs = 64, heads = 9
        var hfOfGGUF = [Int](repeating: -1, count: heads * hs)
        for h in 0..<heads { for half in 0..<2 { for i in 0..<(hs / 2) {
            let hfRow = h * hs + half * (hs / 2) + i, ggufRow = h * hs + i * 2 + half
            hfOfGGUF[ggufRow] = hfRow
        } } }
        XCTAssertEqual((0..<(heads * hs)).map { AdapterFiles.hfRow(ofGGUFRow: $0, headSize: hs) }, hfOfGGUF)
    }

    /// `--dtype bf16`: half the bytes, every value within bfloat16 rounding (relative 2^-8) of the
    /// float32 one, read back by the runtime's adapter loader like the float32 export.
    func testBFloat16PEFTExportIsHalfTheSizeAndLoads() throws {
        XCTAssertEqual(bfloat16Bits(1), 0x3F80)
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80, "a tie rounds to even")
        XCTAssertEqual(bfloat16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82, "a tie rounds to even")
        XCTAssertEqual(bfloat16Bits(-2.5), 0xC020)
        let base = try SharedModel.load()
        let lora = LoRAParameters(config: LoRAConfig(), model: base.config)
        var rng = SplitMix64(seed: 5)
        for i in lora.values.indices { lora.values[i] = rng.nextUnitFloat() - 0.5 }
        let f32 = try TemporaryDirectory(self), bf16 = try TemporaryDirectory(self)
        try AdapterFiles.exportPEFT(lora, to: f32.url, baseModel: "SmolLM2-135M-Instruct")
        try AdapterFiles.exportPEFT(lora, to: bf16.url, baseModel: "SmolLM2-135M-Instruct", dtype: .bf16)
        func size(_ d: TemporaryDirectory) throws -> Int {
            try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: d.file("adapter_model.safetensors").path)[.size] as? Int)
        }
        let (big, small) = (try size(f32), try size(bf16))
        print("PEFT adapter: float32 \(big) bytes, bfloat16 \(small) bytes")
        XCTAssertLessThan(small, big / 2 + 32_768, "the tensors take half the bytes; the JSON header is the same")
        let exact = try LoRAAdapter(path: f32.url.path), rounded = try LoRAAdapter(path: bf16.url.path)
        XCTAssertEqual(Set(exact.pairs.keys), Set(rounded.pairs.keys))
        var worst: Float = 0
        for (name, p) in exact.pairs {
            let q = try XCTUnwrap(rounded.pairs[name])
            for (x, y) in zip(p.a + p.b, q.a + q.b) { worst = max(worst, abs(x - y) / max(abs(x), 1e-6)) }
        }
        print("bfloat16 PEFT export: max relative |diff| \(worst)")
        XCTAssertLessThanOrEqual(worst, 1.0 / 256)
        XCTAssertGreaterThan(worst, 0, "the values really were rounded")
    }

    func testPEFTAndGGUFExportRoundTrip() throws {
        let base = try SharedModel.load()
        let lora = LoRAParameters(config: LoRAConfig(), model: base.config)
        var rng = SplitMix64(seed: 3)
        for i in lora.values.indices { lora.values[i] = rng.nextUnitFloat() - 0.5 }
        let tmp = try TemporaryDirectory(self)
        try AdapterFiles.exportPEFT(lora, to: tmp.url, baseModel: "SmolLM2-135M-Instruct")
        let file = try SafetensorsFile(path: tmp.file("adapter_model.safetensors").path)
        let golden = try XCTUnwrap(try TestPaths.json("smollm2_lora_golden.json")["grad_norms"] as? [String: Double])
        XCTAssertEqual(Set(file.names), Set(golden.keys.map { "base_model.model.model." + $0 }), "PEFT tensor names")
        var worst: Float = 0
        for s in lora.slots {
            let (a, b, _, _) = lora.views(s)
            let stem = "base_model.model.model." + LoRAParameters.peftName(layer: s.layer, target: s.target, isB: false).dropLast(14)
            let fa = try file.floats(stem + ".lora_A.weight", shape: [8, s.inF])
            let fb = try file.floats(stem + ".lora_B.weight", shape: [s.outF, 8])
            XCTAssertEqual(fa, Array(UnsafeBufferPointer(start: a, count: 8 * s.inF)))
            let back = AdapterFiles.ggufOrderB(fb, slot: s, rank: 8, headSize: base.config.headSize)
            for i in 0..<back.count { worst = max(worst, abs(back[i] - b[i])) }
            if s.target == .q || s.target == .k {
                XCTAssertNotEqual(fb, Array(UnsafeBufferPointer(start: b, count: s.outF * 8)), "q/k rows must be un-permuted")
            } else {
                XCTAssertEqual(fb, Array(UnsafeBufferPointer(start: b, count: s.outF * 8)))
            }
        }
        print("PEFT round trip max |diff| \(worst)")
        XCTAssertEqual(worst, 0)
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: tmp.file("adapter_config.json"))) as? [String: Any])
        XCTAssertEqual(config["peft_type"] as? String, "LORA")
        XCTAssertEqual(config["r"] as? Int, 8)
        XCTAssertEqual(config["lora_alpha"] as? Double, 16)
        XCTAssertEqual(Set(try XCTUnwrap(config["target_modules"] as? [String])),
                       ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])

        // GGUF adapter, read back with our GGUF reader.
        try AdapterFiles.exportGGUF(lora, to: tmp.file("adapter.gguf"), baseName: "SmolLM2")
        let gguf = try GGUFFile(path: tmp.file("adapter.gguf").path)
        XCTAssertEqual(gguf.metadata["general.type"]?.stringValue, "adapter")
        XCTAssertEqual(gguf.metadata["adapter.type"]?.stringValue, "lora")
        XCTAssertEqual(gguf.metadata["adapter.lora.alpha"]?.floatValue, 16)
        XCTAssertEqual(gguf.tensors.count, lora.slots.count * 2)
        let s = try XCTUnwrap(lora.slot(layer: 29, target: .down))
        let tb = try gguf.tensor(named: "blk.29.ffn_down.weight.lora_b")
        XCTAssertEqual(tb.info.dims, [8, 576])
        XCTAssertEqual(try gguf.tensorInfo(named: "blk.29.ffn_down.weight.lora_a").dims, [1536, 8])
        XCTAssertEqual(try tb.dequantized(), Array(UnsafeBufferPointer(start: lora.views(s).b, count: 576 * 8)))
    }
}
