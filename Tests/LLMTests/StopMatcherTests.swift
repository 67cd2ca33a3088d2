import Foundation
import XCTest
@testable import LLM
import Tensor

final class StopMatcherTests: XCTestCase {
    /// Everything shown, and the stop string if one was found.
    struct Outcome: Equatable {
        var shown: String
        var stop: String?
        init(_ shown: String, _ stop: String?) {
            self.shown = shown
            self.stop = stop
        }
    }

    private func run(_ stops: [String], _ pieces: [String]) -> Outcome {
        var matcher = StopMatcher(stops)
        var shown = ""
        for piece in pieces {
            switch matcher.append(piece) {
            case let .text(t):
                shown += t
            case let .stop(t, s):
                return Outcome(shown + t, s)
            }
        }
        return Outcome(shown + matcher.finish(), nil)
    }

    func testStopSpanningManyPieces() {
        var m = StopMatcher(["<|im_end|>"])
        XCTAssertEqual(m.append("The answer"), .text("The answer"))
        XCTAssertEqual(m.append(" is 4.<|"), .text(" is 4."))
        XCTAssertEqual(m.heldBackCount, 2)
        XCTAssertEqual(m.append("im"), .text(""))
        XCTAssertEqual(m.append("_"), .text(""))
        XCTAssertEqual(m.append("end|>\nmore"), .stop(text: "", stopString: "<|im_end|>"))
        XCTAssertTrue(m.isStopped)
        XCTAssertEqual(m.append("ignored"), .text(""))
        XCTAssertEqual(m.finish(), "")
        // One character per piece.
        let text = "Hello<|im_end|>world"
        XCTAssertEqual(run(["<|im_end|>"], text.map(String.init)).shown, "Hello")
    }

    func testHeldTextIsReleasedWhenItIsNotAStop() {
        var m = StopMatcher(["<|im_end|>"])
        XCTAssertEqual(m.append("a <|im"), .text("a "))
        XCTAssertEqual(m.append("_start|>"), .text("<|im_start|>"))
        XCTAssertEqual(m.append("x <"), .text("x "))
        XCTAssertEqual(m.finish(), "<", "flushed at the end")
        XCTAssertEqual(run(["STOP"], ["ST", "OR", "Y"]).shown, "STORY")
    }

    func testOverlappingPrefixes() {
        // "aab" inside "aaab": the held text must restart within itself.
        XCTAssertEqual(run(["aab"], ["a", "a", "a", "b", "c"]).shown, "a")
        // Two stop strings sharing a prefix: the first one completed wins.
        XCTAssertEqual(run(["</s>", "</stop>"], ["x</s", "top>"]), Outcome("x", "</stop>"))
        var m = StopMatcher(["</s>", "</stop>"])
        XCTAssertEqual(m.append("x</s"), .text("x"))
        XCTAssertEqual(m.append("t"), .text(""))
        XCTAssertEqual(m.append("op> y"), .stop(text: "", stopString: "</stop>"), "x was shown already")
        // Ending at the same place: the longer one (earlier start).
        XCTAssertEqual(run(["b", "ab"], ["xab"]).stop, "ab")
        // A stop string inside another, ending first: it wins, even if the longer one would complete later.
        XCTAssertEqual(run(["abcd", "bc"], ["a", "b", "c", "d"]), Outcome("a", "bc"))
        XCTAssertEqual(run(["abcd", "bc"], ["abcd"]), Outcome("a", "bc"))
    }

    func testUnicode() {
        XCTAssertEqual(run(["日本"], ["テキスト日", "本語"]), Outcome("テキスト", "日本"))
        XCTAssertEqual(run(["🧬 end"], ["DNA 🧬", " en", "d!"]), Outcome("DNA ", "🧬 end"))
        // A stop string's first scalar shared with other text is held, then released intact.
        XCTAssertEqual(run(["🧬🧬"], ["a🧬", "b"]), Outcome("a🧬b", nil))
        // Exact scalars: a decomposed é does not match a precomposed stop string.
        XCTAssertEqual(run(["\u{E9}"], ["cafe\u{301}"]), Outcome("cafe\u{301}", nil))
        var m = StopMatcher(["\u{E9}!"])
        guard case let .text(t) = m.append("caf\u{E9}") else { return XCTFail() }
        XCTAssertEqual(t, "caf", "é held back as a possible start of the stop string")
    }

    func testNoStopsAndEmptyStops() {
        XCTAssertEqual(run([], ["a", "b"]), Outcome("ab", nil))
        XCTAssertEqual(run([""], ["a", "b"]), Outcome("ab", nil))
        XCTAssertEqual(StopMatcher(["", "x"]).stopStrings, ["x"])
        XCTAssertEqual(run(["x"], ["", "", "axb"]), Outcome("a", "x"))
    }

    /// Any cut of the text into pieces gives the same result as searching the whole text for
    /// the earliest-ending stop string (checked here directly on scalars, 2,000 seeded cases).
    func testChunkingDoesNotChangeTheResult() {
        var rng = FuzzRNG(seed: 42)
        let alphabet: [Character] = ["a", "b", "<", "|", ">", "日", "🧬", " "]
        let stopSets: [[String]] = [["<|>"], ["ab", "aab"], ["a<", "<|", "|>"], ["🧬 ", "日日"], ["ba", "abab", "b"]]
        for _ in 0..<2000 {
            let stops = stopSets[Int(rng.next() % UInt64(stopSets.count))]
            let length = Int(rng.next() % 30)
            let text = String((0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            // Random cuts at character boundaries.
            var pieces = [String]()
            var rest = Substring(text)
            while !rest.isEmpty {
                let n = 1 + Int(rng.next() % 5)
                pieces.append(String(rest.prefix(n)))
                rest = rest.dropFirst(n)
            }
            XCTAssertEqual(run(stops, pieces), Self.reference(text, stops), "\(text.debugDescription) \(pieces) \(stops)")
        }
    }

    /// The earliest-ending stop string in the whole text (longest on ties), on scalars.
    private static func reference(_ text: String, _ stops: [String]) -> Outcome {
        let scalars = Array(text.unicodeScalars)
        for end in 0...scalars.count {
            let found = stops.map { Array($0.unicodeScalars) }.enumerated()
                .filter { $0.element.count <= end && Array(scalars[(end - $0.element.count)..<end]) == $0.element }
                .max { $0.element.count < $1.element.count }
            if let found {
                var prefix = String.UnicodeScalarView()
                prefix.append(contentsOf: scalars[..<(end - found.element.count)])
                return Outcome(String(prefix), stops[found.offset])
            }
        }
        return Outcome(text, nil)
    }
}

/// A small seeded generator (SplitMix64) so that randomized tests are reproducible.
struct FuzzRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
