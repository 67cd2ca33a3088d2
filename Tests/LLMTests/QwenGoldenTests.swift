import Foundation
import XCTest
import TestSupport
@testable import LLM

/// Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, `qwen2`) against
/// `Tests/Fixtures/golden/qwen25_coder_1p5b_{tokenizer,logits}.json` (transformers float32 on the
/// same GGUF): identical token ids (the `qwen2` pre-tokenizer), the chat prompt rendered as
/// `apply_chat_template` renders it (default system message included), top-20 logits at the last
/// position within 2e-2, mean NLL within 1e-3 and the 24 greedy tokens identical, on the float32
/// reference path and on the fast path (fused quantized decode kernels, f16 cache).
final class QwenGoldenTests: XCTestCase {
    /// The model (≈ 7 GB with its float32 weight copies) is freed when this class is done.
    override class func tearDown() { SharedQwen.release(); super.tearDown() }

    func testConfig() throws {
        let model = try SharedQwen.model()
        let c = model.config
        XCTAssertEqual(c.architecture, "qwen2")
        XCTAssertEqual([c.embeddingLength, c.layerCount, c.feedForwardLength, c.headCount, c.kvHeadCount, c.headSize,
                        c.vocabularySize], [1536, 28, 8960, 12, 2, 128, 151_936])
        XCTAssertEqual(c.ropeBase[0], 1_000_000)
        XCTAssertEqual(c.ropeStyle, .halves)
        XCTAssertFalse(model.weights.tiedEmbeddings)
        XCTAssertNotNil(model.weights.layers[0].query.bias)
        XCTAssertEqual(model.weights.layers[0].query.type, .q4_K)
        XCTAssertEqual(model.weights.outputHead.type, .q6_K)
    }

    func testTokenizerMatchesGolden() throws {
        let tok = try SharedQwen.bpe()
        XCTAssertEqual(tok.preTokenizer, .qwen2)
        XCTAssertFalse(tok.specialTokens.addBOSByDefault)
        let golden = try RepositoryFiles.goldenJSON("qwen25_coder_1p5b_tokenizer.json")
        XCTAssertEqual(golden["add_bos_token"] as? Bool, false)
        let items = try XCTUnwrap(golden["items"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(items.count, 9)
        var same = 0
        for item in items {
            let text = try XCTUnwrap(item["text"] as? String)
            let expected = try XCTUnwrap(item["ids"] as? [Int])
            let ids = tok.encode(text, addBOS: false, parseSpecial: true)
            if ids == expected { same += 1 } else { print("qwen tokenizer mismatch for \(text.debugDescription):\n  ours \(ids)\n  gold \(expected)") }
            XCTAssertEqual(ids, expected, text)
            XCTAssertEqual(tok.decode(ids), text, "round trip")
        }
        // The logits file's prompts too (one is a full chat prompt with special tokens).
        for g in try Self.cases() {
            let ids = tok.encode(g.prompt, addBOS: false, parseSpecial: true)
            if ids == g.ids { same += 1 }
            XCTAssertEqual(ids, g.ids, g.prompt)
        }
        print("qwen tokenizer golden: \(same)/\(items.count + 3) texts identical")
    }

    /// The chat prompt of the golden file is what the model's template renders for one user
    /// message: the default system message, then the generation prompt.
    func testChatTemplateMatchesGolden() throws {
        let file = try SharedQwen.open()
        let template = try ChatTemplate(metadata: file.metadata)
        XCTAssertEqual(template.family, .chatML)
        XCTAssertEqual(template.defaultSystemPrompt, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        let rendered = try template.render([.user("What is the mechanism of action of aspirin?")], addGenerationPrompt: true)
        XCTAssertEqual(rendered, try Self.cases()[0].prompt)
        let withSystem = try template.render([.system("Be brief."), .user("Hi")], addGenerationPrompt: true)
        XCTAssertEqual(withSystem, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    func testReferenceMatchesGolden() throws {
        try checkGolden(kernels: .reference, precision: .f32)
    }

    func testFastPathMatchesGolden() throws {
        try checkGolden(kernels: .fast, precision: .f16)
    }

    static func cases() throws -> [GoldenLogits.Case] {
        let cases = try GoldenLogits.cases("qwen25_coder_1p5b_logits.json")
        XCTAssertEqual(cases.count, 3)
        return cases
    }

    private func checkGolden(kernels: LlamaModel.Options.Kernels, precision: KVCache.Precision) throws {
        try GoldenLogits.check(try SharedQwen.model(), try Self.cases(), kernels: kernels, precision: precision, label: "qwen golden")
    }
}

/// The Qwen2.5 1.5B file, tokenizer and model, loaded once (the model until ``release()``); a
/// missing model fails.
enum SharedQwen {
    static let name = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    private static let file = Result { try GGUFFile(path: RepositoryFiles.models.appendingPathComponent(name).path) }
    private static let tokenizer = Result { try BPETokenizer(metadata: try file.get().metadata) }
    nonisolated(unsafe) private static var loaded: LlamaModel?

    static func open(file: StaticString = #filePath, line: UInt = #line) throws -> GGUFFile {
        _ = try RepositoryFiles.model(name, file: file, line: line)
        return try self.file.get()
    }
    static func bpe() throws -> BPETokenizer { _ = try open(); return try tokenizer.get() }
    static func model() throws -> LlamaModel {
        if let model = loaded { return model }
        let model = try LlamaModel(file: try open())
        loaded = model
        return model
    }
    static func release() { loaded = nil }
}
