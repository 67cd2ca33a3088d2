import Foundation
import XCTest
@testable import LLM

/// Model-loading paths the two real files do not take, on edited copies of the real SmolLM2 GGUF
/// (same metadata and tensor bytes, one change each): another architecture, a missing tensor, a
/// wrong shape, a type with no kernel, a separate output head, q/k/v biases.
final class DerivedModelTests: XCTestCase {
    typealias Tensor = (name: String, dims: [Int], type: GGMLType, data: Data)

    /// Writes SmolLM2 with `edit` applied to its metadata and tensors; returns the opened copy.
    func derive(_ dir: TemporaryDirectory, _ name: String, metadata editMetadata: (inout [(String, GGUFValue)]) -> Void = { _ in },
                tensors editTensors: (inout [Tensor]) -> Void = { _ in }) throws -> GGUFFile {
        let file = try SharedModel.open()
        var metadata = file.metadata.keys.map { ($0, file.metadata[$0]!) }
        editMetadata(&metadata)
        var tensors: [Tensor] = file.tensors.map { ($0.name, $0.dims, $0.type, Data(file.bytes(of: $0))) }
        editTensors(&tensors)
        let path = dir.file(name + ".gguf").path
        try GGUFWriter.write(to: path, metadata: metadata, infos: tensors.map { ($0.name, $0.dims, $0.type) },
                             alignment: file.alignment) { tensors[$0].data }
        return try GGUFFile(path: path)
    }

    func lastLogits(_ model: any CausalLanguageModel, _ tokens: [Int]) throws -> [Float] {
        try model.forward([.init(cache: KVCache(config: model.config, capacity: 64), tokens: tokens)])
    }

    func assertLoadError(_ file: GGUFFile, _ expected: String, line: UInt = #line) {
        XCTAssertThrowsError(try loadLanguageModel(file: file, options: .init(denseWeights: false)), line: line) {
            XCTAssertEqual(($0 as? LocalizedError)?.errorDescription, "\(file.path): \(expected)", line: line)
        }
    }

    func testLoadErrorsNameTheArchitectureTensorShapeAndType() throws {
        let dir = try TemporaryDirectory(self)
        let mamba = try derive(dir, "mamba", metadata: { m in
            m = m.map { $0.0 == "general.architecture" ? ($0.0, .string("mamba")) : $0 }
        })
        assertLoadError(mamba, "architecture 'mamba' is not supported (supported: llama, qwen2, gemma3)")

        let missing = try derive(dir, "missing", tensors: { $0.removeAll { $0.name == "blk.3.ffn_up.weight" } })
        assertLoadError(missing, "tensor 'blk.3.ffn_up.weight' is missing")

        // attn_q with 512 instead of 576 output rows (Q4_1: 18 blocks of 20 bytes per row).
        let shape = try derive(dir, "shape", tensors: { t in
            let i = t.firstIndex { $0.name == "blk.0.attn_q.weight" }!
            t[i].dims = [576, 512]
            t[i].data = t[i].data.prefix(512 * 18 * 20)
        })
        assertLoadError(shape, "tensor 'blk.0.attn_q.weight' has dims [576, 512], expected [576, 576]")

        // Q2_K: a type the reader knows the size of but we have no kernel for.
        let noKernel = try derive(dir, "q2k", tensors: { t in
            let i = t.firstIndex { $0.name == "blk.0.ffn_down.weight" }!
            t[i].dims = [1536, 576]
            t[i].type = .q2_K
            t[i].data = Data(count: 576 * 1536 / 256 * 84)
        })
        assertLoadError(noKernel, "tensor 'blk.0.ffn_down.weight' has type Q2_K, which has no kernel"
                        + " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)")
    }

    /// `output.weight` present: the head is that tensor, not the embeddings (same bytes give the
    /// same logits; zero blocks give zero logits).
    func testSeparateOutputHeadIsUsed() throws {
        let dir = try TemporaryDirectory(self)
        let tied = try loadLanguageModel(file: try SharedModel.open())
        let tokens = try SharedModel.bpe().encode("Aspirin is used to treat")
        let expected = try lastLogits(tied, tokens)
        let file = try SharedModel.open()
        let embedding = file.tensors.first { $0.name == "token_embd.weight" }!
        let copy = try derive(dir, "head-copy", tensors: { $0.append(("output.weight", embedding.dims, embedding.type, Data(file.bytes(of: embedding)))) })
        let same = try lastLogits(try loadLanguageModel(file: copy), tokens)
        XCTAssertEqual(same, expected, "a separate head with the embeddings' bytes gives the tied model's logits")
        let zero = try derive(dir, "head-zero", tensors: { $0.append(("output.weight", embedding.dims, embedding.type, Data(count: file.bytes(of: embedding).count))) })
        let zeros = try lastLogits(try loadLanguageModel(file: zero), tokens)
        XCTAssertEqual(zeros.count, expected.count)
        XCTAssertEqual(zeros.map(abs).max(), 0, "zero head blocks: the separate head is the one used")
    }

    /// Qwen2-style biases on q, k and v: zero biases change no logit; real ones move them, the
    /// same in the fast and the reference (float32 `sgemm`) kernels.
    func testQKVBiasesAreAdded() throws {
        let dir = try TemporaryDirectory(self)
        let file = try SharedModel.open()
        let tokens = try SharedModel.bpe().encode("Aspirin is used to treat")
        let base = try lastLogits(try loadLanguageModel(file: file), tokens)
        func biased(_ name: String, _ value: (Int) -> Float) throws -> GGUFFile {
            try derive(dir, name, tensors: { t in
                for l in 0..<30 {
                    for (kind, width) in [("q", 576), ("k", 192), ("v", 192)] {
                        let values = (0..<width).map(value)
                        t.append(("blk.\(l).attn_\(kind).bias", [width], .f32, values.withUnsafeBytes { Data($0) }))
                    }
                }
            })
        }
        let zero = try lastLogits(try loadLanguageModel(file: try biased("zero-bias", { _ in 0 })), tokens)
        XCTAssertEqual(zero, base, "zero biases")
        let real = try biased("bias", { Float(($0 * 37) % 11 - 5) * 0.02 })
        let fast = try lastLogits(try loadLanguageModel(file: real), tokens)
        let reference = try lastLogits(try loadLanguageModel(file: real, options: .init(kernels: .reference)), tokens)
        let moved = zip(fast, base).map { abs($0 - $1) }.max()!
        let diff = zip(fast, reference).map { abs($0 - $1) }.max()!
        print("q/k/v biases: logits moved by up to \(moved); fast vs reference max |diff| \(diff)")
        XCTAssertGreaterThan(moved, 0.05, "the biases must change the logits")
        XCTAssertLessThan(diff, 2e-2, "fast and reference kernels agree with biases (golden logit tolerance)")
    }
}
