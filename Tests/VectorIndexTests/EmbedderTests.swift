import Foundation
import XCTest
@testable import VectorIndex

/// The MiniLM embedder against sentence-transformers' golden embeddings.
final class EmbedderTests: XCTestCase {
    /// Loaded once for the whole class (≈ 90 MB of weights).
    nonisolated(unsafe) static var shared: Result<MiniLMEmbedder, Error>?

    func embedder() throws -> MiniLMEmbedder {
        let path = try MiniLMFixtures.modelPath()
        if Self.shared == nil { Self.shared = Result { try MiniLMEmbedder(modelDirectory: path) } }
        return try Self.shared!.get()
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for (x, y) in zip(a, b) { dot += x * y; na += x * x; nb += y * y }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    // MARK: Golden

    /// Cosine ≥ 0.9999 to every golden vector (the empty sentence included), ids identical.
    func testGoldenEmbeddings() throws {
        let embedder = try embedder()
        let golden = try MiniLMFixtures.golden()
        XCTAssertEqual(embedder.maxSequenceLength, golden.max_seq_length)
        XCTAssertEqual(embedder.dimension, 384)
        let vectors = try embedder.embed(golden.items.map(\.text))
        var worst: (cosine: Float, text: String) = (1, "")
        var maxAbs: Float = 0
        for (item, v) in zip(golden.items, vectors) {
            XCTAssertEqual(embedder.tokenIDs(item.text), item.input_ids, "ids of \(item.text.debugDescription)")
            XCTAssertEqual(v.count, 384)
            let cos = Self.cosine(v, item.embedding)
            maxAbs = max(maxAbs, zip(v, item.embedding).map { abs($0 - $1) }.max()!)
            if cos < worst.cosine { worst = (cos, item.text) }
            XCTAssertGreaterThanOrEqual(cos, 0.9999, "cosine for \(item.text.debugDescription)")
            XCTAssertEqual(v.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-5)
        }
        print("MiniLM golden: worst cosine \(worst.cosine) for \(worst.text.debugDescription); max |Δ| \(maxAbs)")
    }

    /// One batch gives the same vectors as one call per text.
    func testBatchEqualsOneByOne() throws {
        let embedder = try embedder()
        let texts = try MiniLMFixtures.golden().items.map(\.text) + [
            Array(repeating: "Long passages are truncated at the model's maximum sequence length.", count: 40).joined(separator: " "),
            "Short.",
        ]
        let batched = try embedder.embed(texts)
        var maxDiff: Float = 0
        for (text, b) in zip(texts, batched) {
            let single = try embedder.embed(text)
            maxDiff = max(maxDiff, zip(single, b).map { abs($0 - $1) }.max()!)
        }
        print("MiniLM batch vs one-by-one: max |Δ| \(maxDiff)")
        XCTAssertLessThanOrEqual(maxDiff, 1e-5)
        // A small token budget forces several forward passes; the result must not change.
        let small = try MiniLMEmbedder(modelDirectory: MiniLMFixtures.modelPath(), options: .init(maxBatchTokens: 64))
        let split = try small.embed(texts)
        let splitDiff = zip(split, batched).map { zip($0, $1).map { abs($0 - $1) }.max()! }.max()!
        print("MiniLM 64-token passes vs one pass: max |Δ| \(splitDiff)")
        XCTAssertLessThanOrEqual(splitDiff, 1e-5)
        XCTAssertEqual(try embedder.embed([]), [])
    }

    // MARK: Throughput

    /// Prints passages/s for ~150-word passages in a batch of 64 (meaningful in release builds).
    func testThroughput() throws {
        let embedder = try embedder()
        let words = """
            Background aspirin irreversibly inhibits cyclooxygenase enzymes reducing thromboxane synthesis in platelets \
            and prostaglandin production in the vascular endothelium patients with acute coronary syndromes received \
            low dose therapy while bleeding risk was monitored across randomized cohorts in multiple centers
            """.split(separator: " ")
        let passages = (0..<64).map { i in
            (0..<150).map { j in String(words[(i * 7 + j * 3) % words.count]) }.joined(separator: " ")
        }
        let tokens = passages.map { embedder.tokenIDs($0).count }
        _ = try embedder.embed(Array(passages.prefix(4)))  // warm up
        let start = Date()
        let vectors = try embedder.embed(passages)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(vectors.count, 64)
        print(String(format: "MiniLM throughput: %.1f passages/s (64 passages of 150 words, %.0f tokens avg, %.2f s)",
                     64 / seconds, Double(tokens.reduce(0, +)) / 64, seconds))
    }

    // MARK: Errors

    func testMissingModelFolder() {
        XCTAssertThrowsError(try MiniLMEmbedder(modelDirectory: "/nonexistent/model")) {
            XCTAssertEqual($0 as? EmbedderError, .missingFile(file: "/nonexistent/model/config.json"))
        }
    }

    /// A config that disagrees with the checkpoint names the first tensor whose shape differs.
    func testWrongShapeNamesTensor() throws {
        let source = try MiniLMFixtures.modelPath()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minilm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["vocab.txt", "model.safetensors"] {
            try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent(name).path,
                                                       withDestinationPath: source + "/" + name)
        }
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source + "/config.json"))) as! [String: Any]
        config["intermediate_size"] = 1024
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        let weights = dir.appendingPathComponent("model.safetensors").path
        XCTAssertThrowsError(try MiniLMEmbedder(modelDirectory: dir.path)) {
            XCTAssertEqual($0 as? EmbedderError, .wrongShape(file: weights, tensor: "encoder.layer.0.intermediate.dense.weight",
                                                             expected: [1024, 384], actual: [1536, 384]))
            print("ok:", ($0 as? LocalizedError)?.errorDescription ?? "")
        }
        config["hidden_act"] = "relu"
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try MiniLMEmbedder(modelDirectory: dir.path)) {
            XCTAssertEqual($0 as? EmbedderError, .unsupportedConfig(file: dir.appendingPathComponent("config.json").path,
                                                                    key: "hidden_act", expected: "gelu", actual: "relu"))
        }
    }
}
