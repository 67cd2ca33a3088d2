import Foundation
import XCTest
import TestSupport

/// `selfspec generate` and `selfspec chat` end to end: the real binary and the real SmolLM2 GGUF,
/// a few greedy tokens per case.
final class GenerateCLITests: XCTestCase {
    static let model = CLITests.repo.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path

    /// Runs the binary with `input` on stdin.
    func run(_ args: [String], input: String = "") throws -> CLITests.Result {
        try runToEnd(CLITests.binary, args, input: input)
    }

    func temp(_ name: String, _ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gen-cli-\(getpid())-\(UUID().uuidString.prefix(8))-\(name)").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        removeAfterTest(path)
        return path
    }

    func json(_ line: Substring) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
    }

    /// `--model NAME` resolves a set-up model by name (from the repository root, where the tests
    /// run); an unknown model or adapter name is refused with the names that exist.
    func testModelAndAdapterNames() throws {
        let byName = try run(["generate", "--model", "smollm2", "--prompt", "Aspirin is used to treat", "--max-tokens", "4", "--temperature", "0"])
        let byPath = try run(["generate", "--model", Self.model, "--prompt", "Aspirin is used to treat", "--max-tokens", "4", "--temperature", "0"])
        XCTAssertEqual(byName.status, 0, byName.stderr)
        XCTAssertEqual(byName.stdout, byPath.stdout)
        let model = try run(["generate", "--model", "nosuch-model", "--prompt", "x", "--max-tokens", "1"])
        XCTAssertNotEqual(model.status, 0)
        XCTAssertTrue(model.stderr.contains("'nosuch-model'") && model.stderr.contains("smollm2, gemma3, qwen2.5"), model.stderr)
        let adapter = try run(["generate", "--model", "smollm2", "--adapter", "nosuch-adapter", "--prompt", "x", "--max-tokens", "1"])
        XCTAssertNotEqual(adapter.status, 0)
        XCTAssertTrue(adapter.stderr.contains("no adapter 'nosuch-adapter'"), adapter.stderr)
    }

    /// `--prompts FILE`: one JSON line out per prompt (its id kept), a prompt that cannot fit
    /// the context gives an `error` line while the others complete; bad lines are refused by number.
    func testPromptsFileWritesOneLinePerPromptWithIdsAndErrors() throws {
        let long = String(repeating: "asthma ", count: 9000)
        let file = try temp("prompts.jsonl", """
            {"id": "a", "prompt": "Aspirin is used to treat"}
            {"id": 7, "messages": [{"role": "user", "content": "Name one statin."}]}
            {"id": "long", "prompt": "\(long)"}

            """)
        let r = try run(["generate", "--model", Self.model, "--prompts", file, "--max-tokens", "6", "--temperature", "0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(json)
        XCTAssertEqual(lines.count, 3, r.stdout)
        let byID = Dictionary(uniqueKeysWithValues: lines.map { ("\($0["id"] ?? "nil")", $0) })
        XCTAssertEqual(Set(byID.keys), ["a", "7", "long"])
        for id in ["a", "7"] {
            XCTAssertEqual(byID[id]?["tokens"] as? Int, 6, "\(byID[id] ?? [:])")
            XCTAssertFalse((byID[id]?["text"] as? String ?? "").isEmpty)
        }
        XCTAssertGreaterThan(byID["7"]?["prompt_tokens"] as? Int ?? 0, byID["a"]?["prompt_tokens"] as? Int ?? 0,
                             "messages are rendered with the chat template (SmolLM2's system turn)")
        XCTAssertTrue((byID["long"]?["error"] as? String ?? "").contains("do not fit the context"), "\(byID["long"] ?? [:])")
        XCTAssertTrue(r.stderr.contains("1 of 3 prompts failed"), r.stderr)
        // The same first prompt alone gives the same greedy text.
        let alone = try run(["generate", "--model", Self.model, "--prompt", "Aspirin is used to treat", "--max-tokens", "6",
                             "--temperature", "0", "--json"])
        XCTAssertEqual(json(Substring(alone.stdout))["text"] as? String, byID["a"]?["text"] as? String)

        for (text, message) in [("{\"id\": 1, \"prompt\": \"\"}\n", ":1: the prompt is empty"),
                                ("{\"prompt\": \"ok\"}\nnot json\n", ":2: not a JSON object"),
                                ("{\"id\": 3}\n", ":1: needs \"prompt\" (string) or \"messages\"")] {
            let bad = try temp("bad.jsonl", text)
            let e = try run(["generate", "--model", Self.model, "--prompts", bad, "--max-tokens", "2"])
            XCTAssertNotEqual(e.status, 0)
            XCTAssertTrue(e.stderr.contains(bad + message), e.stderr)
            XCTAssertEqual(e.stdout, "", "nothing generated before the whole file is checked")
        }
    }

    /// Invalid sampling values exit 64 with the value and the range; an empty prompt and one
    /// that cannot fit the context are errors.
    func testInvalidValuesAndOverflowOptions() throws {
        let base = ["generate", "--model", Self.model, "--prompt", "Hello", "--max-tokens", "2"]
        let topP = try run(base + ["--top-p", "2"])
        XCTAssertEqual(topP.status, 64, topP.stderr)
        XCTAssertTrue(topP.stderr.contains("invalid top-p 2.0: expected in (0, 1]"), topP.stderr)
        let temperature = try run(base + ["--temperature", "-1"])
        XCTAssertEqual(temperature.status, 64, temperature.stderr)
        XCTAssertTrue(temperature.stderr.contains("temperature"), temperature.stderr)
        let empty = try run(["generate", "--model", Self.model, "--prompt", ""])
        XCTAssertNotEqual(empty.status, 0)
        XCTAssertTrue(empty.stderr.contains("the prompt is empty"), empty.stderr)

        // Prompt + max-tokens over the 8,192-token context: refused before any work.
        let overflow = try run(["generate", "--model", Self.model, "--prompt", "Hello", "--max-tokens", "9000", "--json"])
        XCTAssertNotEqual(overflow.status, 0)
        XCTAssertTrue(overflow.stderr.contains("do not fit the context of 8192 tokens"), overflow.stderr)
        // (`--truncate` is checked in GenerationTests: a CLI run would prefill 8,000 tokens.)
    }

    /// `--template` picks a family instead of the file's (here a plain completion prompt instead of
    /// SmolLM2's ChatML with its system turn); `--parse-special` reads `<|im_start|>` as one token.
    func testTemplateAndSpecialTokenOptions() throws {
        func promptTokens(_ extra: [String], prompt: String = "Name one statin.") throws -> Int {
            let r = try run(["generate", "--model", Self.model, "--prompt", prompt, "--max-tokens", "1", "--json"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            return json(Substring(r.stdout))["prompt_tokens"] as? Int ?? -1
        }
        let plain = try promptTokens([]), chat = try promptTokens(["--chat"]), completion = try promptTokens(["--template", "completion"])
        XCTAssertEqual(completion, plain)
        XCTAssertGreaterThan(chat, plain + 10, "ChatML adds SmolLM2's system turn")
        let marked = "<|im_start|>user"
        let special = try promptTokens(["--parse-special"], prompt: marked)
        XCTAssertEqual(special, try promptTokens([], prompt: "user") + 1, "<|im_start|> read as one special token")
        XCTAssertGreaterThan(try promptTokens([], prompt: marked), special, "without the flag it is plain text")
        let unknown = try run(["generate", "--model", Self.model, "--prompt", "x", "--template", "alpaca"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("unknown chat template 'alpaca' (known: chatml, llama3, gemma, mistral, completion)"), unknown.stderr)
    }

    /// `chat` over stdin: two turns answered, `/reset`, and a turn that cannot fit the context
    /// reported without ending the session.
    func testChatTurnsResetAndOverflowKeepTheSession() throws {
        let r = try run(["chat", "--model", Self.model, "--max-tokens", "5", "--temperature", "0"],
                        input: "What is aspirin? Answer in one sentence.\nAnd ibuprofen?\n/reset\nWhat is aspirin? Answer in one sentence.\n/exit\n")
        XCTAssertEqual(r.status, 0, r.stderr)
        let answers = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        guard answers.count == 3 else { return XCTFail("expected 3 answer lines: \(r.stdout.debugDescription)") }
        XCTAssertEqual(answers[2], answers[0], "after /reset the same question gets the same greedy answer")
        XCTAssertEqual(r.stderr.components(separatedBy: "> ").count - 1, 5, "a prompt before each line read: \(r.stderr)")

        let long = String(repeating: "asthma ", count: 9000)
        let o = try run(["chat", "--model", Self.model, "--max-tokens", "5", "--temperature", "0"],
                        input: "\(long)\nWhat is aspirin? Answer in one sentence.\n")
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertTrue(o.stderr.contains("do not fit the context") && o.stderr.contains("this message was not added"), o.stderr)
        XCTAssertEqual(o.stdout.split(separator: "\n").first.map(String.init), answers.first.map(String.init),
                       "the failed turn left the conversation as it was")
    }
}
