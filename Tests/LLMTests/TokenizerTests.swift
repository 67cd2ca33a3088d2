import Foundation
import XCTest
import TestSupport
@testable import LLM

/// The SmolLM2 byte-level BPE tokenizer against `Tests/Fixtures/golden/smollm2_tokenizer.json` (made with
/// transformers' GGUF loader; `tok.encode(text, add_special_tokens=False)`, which recognises
/// special tokens written in the text — hence `parseSpecial: true` here).
///
/// Checked once offline beyond the golden file: Hugging Face `tokenizers` 0.23.3 built from this
/// GGUF's tokens and merges with SmolLM2's pre-tokenizer `Sequence[Digits(individual_digits=true),
/// ByteLevel(add_prefix_space=false)]` and the 17 control tokens as added special tokens gave
/// ids identical to ours on 22,465 texts (PubMed XML, MedMCQA, PubMedQA and GAD in 2,000-char
/// chunks, plus 20,000 random mixes of spaces, digits, contractions, emoji, CJK, Arabic,
/// combining marks, U+00A0/U+3000/U+2028/U+0085 and special tokens): 1,986,935 tokens, 0
/// mismatches. ByteLevel alone (no digit split) differs on 6,728 of them (runs of spaces before
/// a digit), which is why `tokenizer.ggml.pre = "smollm"` maps to `.isolatedDigits`.
final class TokenizerTests: XCTestCase {
    func testMetadata() throws {
        let tok = try SharedModel.bpe()
        XCTAssertEqual(tok.vocabularySize, 49152)
        XCTAssertEqual(tok.preTokenizer, .isolatedDigits)  // tokenizer.ggml.pre = "smollm"
        XCTAssertEqual(tok.specialTokens, SpecialTokens(bos: 1, eos: 2, unknown: 0, padding: 2, addBOSByDefault: false))
        XCTAssertTrue(tok.isControl(1))
        XCTAssertFalse(tok.isControl(1000))
        XCTAssertEqual(tok.tokens[216], "Ġ")
        XCTAssertEqual(tok.bytes(of: 216), [0x20])
        XCTAssertEqual(tok.bytes(of: 198), [0x0A])
        let viaFactory = try TokenizerFactory.make(metadata: try SharedModel.open().metadata)
        XCTAssertEqual(viaFactory.encode("Hello world"), [19556, 905])
    }

    /// Bytes with no token of their own (SmolLM2: 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D) are dropped,
    /// as llama.cpp does; they used to become the unknown id 0, the control token <|endoftext|>
    /// (found by `scripts/fuzz tokenizer-bpe`: Tests/Fixtures/fuzz/crashers/tokenizer-bpe).
    func testBytesWithoutATokenAreDropped() throws {
        let tok = try SharedModel.bpe()
        for text in ["\n\u{13}\n", "a\u{4}b", "\u{6}", "x\u{14}\u{16}\u{1D}y"] {
            let ids = tok.encode(text)
            XCTAssertFalse(ids.contains(where: tok.isControl), "\(text.debugDescription): \(ids)")
            XCTAssertEqual(tok.decode(ids), text.filter { !["\u{4}", "\u{6}", "\u{13}", "\u{14}", "\u{16}", "\u{1D}"].contains($0) })
        }
        XCTAssertEqual(tok.encode("\u{13}"), [])
    }

    func testGoldenIDs() throws {
        let tok = try SharedModel.bpe()
        let golden = try TestPaths.json("smollm2_tokenizer.json")
        let items = try XCTUnwrap(golden["items"] as? [[String: Any]])
        XCTAssertEqual(items.count, 20)
        var mismatches = 0
        for item in items {
            let text = try XCTUnwrap(item["text"] as? String)
            let expected = try XCTUnwrap(item["ids"] as? [Int])
            let ids = tok.encode(text, addBOS: false, parseSpecial: true)
            if ids != expected {
                mismatches += 1
                print("tokenizer mismatch for \(text.debugDescription):\n  ours \(ids)\n  gold \(expected)")
            }
            XCTAssertEqual(ids, expected, text)
        }
        print("tokenizer golden: \(items.count - mismatches)/\(items.count) cases identical")
    }

    func testSpecialTokensOnlyWhenAsked() throws {
        let tok = try SharedModel.bpe()
        let text = "<|im_start|>user\nHi<|im_end|>\n"
        XCTAssertEqual(tok.encode(text, addBOS: false, parseSpecial: true), [1, 4093, 198, 26843, 2, 198])
        let plain = tok.encode(text, addBOS: false, parseSpecial: false)
        XCTAssertFalse(plain.contains(1) || plain.contains(2), "\(plain)")
        XCTAssertEqual(tok.decode(plain), text)
        XCTAssertEqual(tok.encode("Hi", addBOS: true, parseSpecial: false), [1, 26843])
        // A prefix of a special token is ordinary text.
        XCTAssertFalse(tok.encode("<|im_sta", addBOS: false, parseSpecial: true).contains(1))
        XCTAssertEqual(tok.decode([1, 4093, 198, 26843, 2], skipSpecial: true), "user\nHi")
    }

    /// Split rules of the hand-written pre-tokenizer on the cases where the GPT-2 regex is subtle.
    func testPreTokenizerSplits() {
        func words(_ s: String, _ p: PreTokenizer) -> [String] {
            var text = ScalarText()
            let bytes = Array(s.utf8)
            var out = [String]()
            bytes.withUnsafeBufferPointer { text.reset($0) }
            p.split(text, 0..<text.count) { r in
                out.append(String(decoding: bytes[text.byteOffsets[r.lowerBound]..<text.byteOffsets[r.upperBound]], as: UTF8.self))
            }
            return out
        }
        XCTAssertEqual(words("Hello  world", .gpt2), ["Hello", " ", " world"])
        XCTAssertEqual(words("a   \n\nb  ", .gpt2), ["a", "   \n", "\n", "b", "  "])
        XCTAssertEqual(words("don't 'S 're'll", .gpt2), ["don", "'t", " '", "S", " '", "re", "'ll"])
        XCTAssertEqual(words("x 123 4.5", .gpt2), ["x", " 123", " 4", ".", "5"])
        XCTAssertEqual(words("x 123 4.5", .isolatedDigits), ["x", " ", "1", "2", "3", " ", "4", ".", "5"])
        XCTAssertEqual(words("a  1", .isolatedDigits), ["a", "  ", "1"])
        XCTAssertEqual(words("a  1", .gpt2), ["a", " ", " 1"])
        XCTAssertEqual(words("é中文 ½ ?!x", .gpt2), ["é中文", " ½", " ?!", "x"])
        XCTAssertEqual(words("\u{3000}a\u{A0}b", .gpt2), ["\u{3000}", "a", "\u{A0}", "b"])
        XCTAssertEqual(words("", .gpt2), [])
        // qwen2: one leading non-letter joins the letters, single digits, punctuation keeps the
        // line breaks after it, a whitespace run ends at its last line break.
        XCTAssertEqual(words("Hello  world", .qwen2), ["Hello", " ", " world"])
        XCTAssertEqual(words("a   \n\nb  ", .qwen2), ["a", "   \n\n", "b", "  "])
        XCTAssertEqual(words("a \n b", .qwen2), ["a", " \n", " b"])
        XCTAssertEqual(words("don't I'M 're'll", .qwen2), ["don", "'t", " I", "'M", " '", "re", "'ll"])
        XCTAssertEqual(words("x 123 4.5", .qwen2), ["x", " ", "1", "2", "3", " ", "4", ".", "5"])
        XCTAssertEqual(words("a  1", .qwen2), ["a", " ", " ", "1"])
        XCTAssertEqual(words("(NSAID) \u{3B2}-x\tand", .qwen2), ["(NSAID", ")", " \u{3B2}", "-x", "\tand"])
        XCTAssertEqual(words("end.\n\nNext", .qwen2), ["end", ".\n\n", "Next"])
        XCTAssertEqual(words("\u{3000}a\u{A0}b", .qwen2), ["\u{3000}a", "\u{A0}b"])
        XCTAssertEqual(words("", .qwen2), [])
    }

    func testDecodeRoundTripTrickyUnicode() throws {
        let tok = try SharedModel.bpe()
        let cases = [
            "e\u{301}t\u{E9} na\u{EF}ve caf\u{E9}", "👩‍👩‍👧 family, 🇯🇵 flag, 👍🏽 tone", "مرحبا بالعالم", "שָׁלוֹם",
            "日本語のテキスト、中文，한국어", "\u{0}\u{1}\u{7F}", "\u{3000}\u{A0}\u{85}\u{2028}", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
            "  leading and trailing  ", "\t\t\n\r\n", "''' '' 'll 'S", String(repeating: "a", count: 5000),
            String(repeating: "🧬", count: 300), "<|im_start|> not special here",
        ]
        for text in cases {
            let ids = tok.encode(text)
            XCTAssertEqual(tok.decode(ids), text, text.debugDescription)
        }
    }

    func testStreamingDecodeHoldsBackSplitCharacters() throws {
        let tok = try SharedModel.bpe()
        let text = "emoji 🧬 DNA 日本"
        let ids = tok.encode(text)
        var decoder = StreamingDecoder(tokenizer: tok)
        var pieces = [String]()
        var heldBack = 0
        for id in ids {
            let piece = decoder.append(id)
            XCTAssertFalse(piece.contains("\u{FFFD}"), "no replacement character mid-stream: \(ids)")
            if decoder.hasPendingBytes { heldBack += 1 }
            pieces.append(piece)
        }
        pieces.append(decoder.finish())
        XCTAssertEqual(pieces.joined(), text)
        XCTAssertGreaterThan(heldBack, 0, "🧬 spans several tokens \(ids), so bytes were held back")
        // The golden ids split " 🧬" (20 F0 9F A7 AC) as 15107 "ĠðŁ" (20 F0 9F), 117 "§" (A7),
        // 122 "¬" (AC): the space comes out at once, the character only with its last byte.
        var d2 = StreamingDecoder(tokenizer: tok)
        XCTAssertEqual(d2.append(391), "em")
        XCTAssertEqual(d2.append(33777), "oji")
        XCTAssertEqual(d2.append(15107), " ")
        XCTAssertEqual(d2.append(117), "")
        XCTAssertEqual(d2.append(122), "🧬")
        XCTAssertEqual(d2.append(4384), " DNA")
        // An unfinished character is flushed as U+FFFD.
        var d3 = StreamingDecoder(tokenizer: tok)
        XCTAssertEqual(d3.append(15107), " ")
        XCTAssertEqual(d3.append(117), "")
        XCTAssertEqual(d3.finish(), "\u{FFFD}")
    }

    func testByteLevelAlphabet() {
        for b in 0...255 {
            let s = ByteLevel.encode([UInt8(b)])
            XCTAssertEqual(s.unicodeScalars.count, 1)
            XCTAssertEqual(ByteLevel.decode(s), [UInt8(b)])
        }
        XCTAssertEqual(ByteLevel.encode(Array(" \n\t".utf8)), "ĠĊĉ")
        XCTAssertEqual(ByteLevel.encode(Array("é".utf8)), "Ã©")
        XCTAssertNil(ByteLevel.decode("中"), "outside the alphabet")
    }

    func testCompletePrefixLength() {
        typealias D = StreamingDecoder
        XCTAssertEqual(D.completePrefixLength([]), 0)
        XCTAssertEqual(D.completePrefixLength([0x41]), 1)
        XCTAssertEqual(D.completePrefixLength([0x41, 0xF0, 0x9F]), 1)
        XCTAssertEqual(D.completePrefixLength([0xF0, 0x9F, 0xA7, 0xAC]), 4)
        XCTAssertEqual(D.completePrefixLength([0xE6, 0x97]), 0)
        XCTAssertEqual(D.completePrefixLength([0x80, 0x80]), 2, "stray continuation bytes are not held")
        XCTAssertEqual(D.completePrefixLength([0xFF]), 1)
    }

    /// Throughput on a few MB of real text (PubMed XML, MedMCQA, PubMedQA, all tracked in the repository).
    func testThroughput() throws {
        let tok = try SharedModel.bpe()
        var text = ""
        for name in ["pubmed_xml/xizhou_pubMR_pubmed_result.xml", "medmcqa/medmcqa_dev.json", "pubmedqa/pqal_dev.json"] {
            text += try String(contentsOfFile: name.hasPrefix("pubmed_xml/") ? RepositoryFiles.pubmedSample(String(name.dropFirst(11)))
                                                                              : RepositoryFiles.eval(name), encoding: .utf8)
        }
        XCTAssertGreaterThan(text.utf8.count, 1_000_000)
        let start = Date()
        let ids = tok.encode(text)
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "tokenizer throughput: %.1f MB -> %d tokens in %.2f s = %.2f M tokens/s, %.1f MB/s",
                     Double(text.utf8.count) / 1e6, ids.count, seconds, Double(ids.count) / seconds / 1e6,
                     Double(text.utf8.count) / seconds / 1e6))
        let decodeStart = Date()
        let back = tok.decode(ids)
        print(String(format: "tokenizer decode: %.1f M tokens/s", Double(ids.count) / Date().timeIntervalSince(decodeStart) / 1e6))
        XCTAssertEqual(back, text)
    }
}
