import Foundation
import XCTest
import TestSupport
@testable import VectorIndex

/// The golden file and model folder, inside the repository (see `RepositoryFiles`).
enum MiniLMFixtures {
    static let repoRoot = RepositoryFiles.root
    static let modelDirectory = RepositoryFiles.models.appendingPathComponent("all-MiniLM-L6-v2")
    static let goldenFile = RepositoryFiles.golden.appendingPathComponent("minilm_embeddings.json")

    struct Golden: Decodable {
        struct Item: Decodable {
            let text: String
            let input_ids: [Int32]
            let embedding: [Float]
        }
        let max_seq_length: Int
        let items: [Item]
    }

    static func golden() throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(contentsOf: goldenFile))
    }

    /// The model folder; fails (rather than skips) when `scripts/setup` has not run, so a
    /// missing model cannot pass silently.
    static func modelPath(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let config = modelDirectory.appendingPathComponent("model.safetensors").path
        guard FileManager.default.fileExists(atPath: config) else {
            XCTFail("missing \(config): run scripts/setup", file: file, line: line)
            throw XCTSkip("model missing")
        }
        return modelDirectory.path
    }

    static func tokenizer() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabFile: modelPath() + "/vocab.txt")
    }
}

final class WordPieceTests: XCTestCase {
    /// Identical ids to Hugging Face for every golden sentence.
    func testGoldenIDs() throws {
        let tokenizer = try MiniLMFixtures.tokenizer()
        let golden = try MiniLMFixtures.golden()
        XCTAssertEqual(golden.max_seq_length, 256)
        var mismatches = 0
        for item in golden.items {
            let ids = tokenizer.encode(item.text, maxLength: golden.max_seq_length)
            if ids != item.input_ids {
                mismatches += 1
                let first = zip(ids, item.input_ids).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                    ?? min(ids.count, item.input_ids.count)
                print("""
                    MISMATCH \(item.text.debugDescription)
                      ours   (\(ids.count)): \(ids)
                      golden (\(item.input_ids.count)): \(item.input_ids)
                      first difference at \(first): ours \(ids.dropFirst(first).prefix(3).map { tokenizer.vocabulary[Int($0)] }) \
                    golden \(item.input_ids.dropFirst(first).prefix(3).map { tokenizer.vocabulary[Int($0)] })
                    """)
            }
        }
        print("WordPiece: \(golden.items.count - mismatches)/\(golden.items.count) golden id sequences identical")
        XCTAssertEqual(mismatches, 0)
    }

    func testPiecesAndNormalization() throws {
        let t = try MiniLMFixtures.tokenizer()
        XCTAssertEqual(t.tokenize("Café-au-lait"), t.tokenize("cafe - au - lait"))            // accents, punctuation
        XCTAssertEqual(t.tokenize("Café")[0], "cafe")
        XCTAssertEqual(t.tokenize("ÉCOLE naïve"), ["ecole", "naive"])
        XCTAssertEqual(t.tokenize("a\u{0}b\u{200B}c\t\nd\u{00A0}e"), ["abc", "d", "e"])       // control/format dropped, whitespace split
        XCTAssertEqual(t.tokenize("日本"), ["日", "本"])                                         // CJK split per character
        XCTAssertEqual(t.tokenize("$5+3=8"), ["$", "5", "+", "3", "=", "8"])                   // ASCII symbols are punctuation
        XCTAssertEqual(t.tokenize("ΣΟΦΊΑ"), ["σοφια"].flatMap { t.tokenize($0) })              // per-scalar lower-casing, no final sigma
        XCTAssertEqual(t.tokenize("unaffable"), ["una", "##ffa", "##ble"])   // greedy longest match first
        XCTAssertEqual(t.tokenize("  "), [])
    }

    func testUnknownWords() throws {
        let t = try MiniLMFixtures.tokenizer()
        XCTAssertEqual(t.tokenize(String(repeating: "a", count: 101)), ["[UNK]"])              // longer than 100 scalars
        XCTAssertNotEqual(t.tokenize(String(repeating: "a", count: 100)), ["[UNK]"])
        XCTAssertEqual(t.tokenize("x\u{1F9EC}y ok"), ["[UNK]", "ok"])                          // unmatchable part → whole word
    }

    func testSpecialTokensInTextAndTruncation() throws {
        let t = try MiniLMFixtures.tokenizer()
        XCTAssertEqual(t.encode("a [SEP] b[MASK]", maxLength: 16), [101, 1037, 102, 1038, 103, 102])
        XCTAssertEqual(t.encode("[sep]", maxLength: 16), [101, 1031, 19802, 1033, 102])         // case matters
        XCTAssertEqual(t.encode("", maxLength: 256), [101, 102])
        let long = Array(repeating: "word", count: 300).joined(separator: " ")
        let ids = t.encode(long, maxLength: 256)
        XCTAssertEqual(ids.count, 256)
        XCTAssertEqual(ids.first, 101)
        XCTAssertEqual(ids.last, 102)
        XCTAssertEqual(t.encode(long, maxLength: 2), [101, 102])
    }

    func testMissingVocabularyFileAndSpecialToken() {
        XCTAssertThrowsError(try WordPieceTokenizer(vocabFile: "/nonexistent/vocab.txt")) {
            XCTAssertEqual($0 as? EmbedderError, .missingFile(file: "/nonexistent/vocab.txt"))
        }
        XCTAssertThrowsError(try WordPieceTokenizer(vocabulary: ["[PAD]", "[CLS]", "[SEP]"], source: "v.txt")) {
            XCTAssertEqual($0 as? EmbedderError, .missingSpecialToken(file: "v.txt", token: "[UNK]"))
        }
    }
}
