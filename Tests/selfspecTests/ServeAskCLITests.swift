import Foundation
import LLM
import Tensor
import XCTest
import TestSupport

/// `selfspec serve` and `selfspec ask` as a user runs them: the real binary, SmolLM2, a corpus
/// ingested from real PubMed XML; signals and exit codes.
final class ServeAskCLITests: XCTestCase {
    static let repo = CLITests.repo
    static let model = repo.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path

    func runCLI(_ args: [String]) throws -> CLITests.Result {
        try runToEnd(CLITests.binary, args)
    }

    /// A fresh database path, removed (with its side files) after the test.
    func tempDB() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ask-\(getpid())-\(UUID().uuidString.prefix(8)).sqlite").path
        removeAfterTest(path)
        return path
    }

    func testAskWithRAGStreamsAnAnswerAndListsItsSources() throws {
        let db = tempDB()
        defer { try? FileManager.default.removeItem(atPath: db) }
        let xml = URL(fileURLWithPath: CLITests.samples).appendingPathComponent("qi29_main_finding_pubmed_result.xml").path
        XCTAssertEqual(try runCLI(["ingest", xml, "--db", db, "--quiet"]).status, 0)
        let r = try runCLI(["ask", "What was the main finding about depression?", "--rag", "--db", db, "--k", "2",
                            "--mode", "bm25", "--model", Self.model, "--max-tokens", "24"])
        XCTAssertEqual(r.status, 0, r.stderr)
        print(r.stdout)
        let parts = r.stdout.components(separatedBy: "\nSources:")
        XCTAssertEqual(parts.count, 2, "an answer, then the sources: \(r.stdout)")
        XCTAssertFalse(parts[0].trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "an answer")
        // Only the passages the answer cites are sources, "[n] PMID …"; or it says none was cited.
        let lines = parts[1].split(separator: "\n")
        let sources = lines.filter { $0.hasPrefix("- ") }
        if sources.isEmpty {
            XCTAssertTrue(parts[1].hasPrefix(" none cited"), parts[1])
        } else {
            XCTAssertTrue(parts[1].hasPrefix("\n- "), parts[1])
            for s in sources { XCTAssertTrue(s.hasPrefix("- [") && s.contains("] PMID "), String(s)) }
        }

        let j = try runCLI(["ask", "What was the main finding about depression?", "--rag", "--db", db, "--k", "2",
                            "--mode", "bm25", "--model", Self.model, "--max-tokens", "24", "--json"])
        XCTAssertEqual(j.status, 0, j.stderr)
        let o = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((o["sources"] as! [[String: Any]]).count, sources.count)
        XCTAssertEqual((o["passages"] as! [[String: Any]]).map { $0["number"] as! Int }.first, 1)
        XCTAssertNotNil(o["invalid_citations"] as? Int)
        XCTAssertNotNil(o["unsupported"] as? [String])
        XCTAssertEqual(o["mode"] as? String, "bm25")
        XCTAssertEqual(o["answer"] as? String, parts[0].trimmingCharacters(in: .newlines), "greedy: the same answer")
        print("ask --json: finish \(o["finish_reason"] ?? "-"), citations \(o["citations"] ?? "-"), invalid \(o["invalid_citations"] ?? "-"), "
              + "unsupported \(o["unsupported"] ?? "-")")

        // --instructions replaces the built-in instructions of the system turn (a shorter prompt).
        let short = try runCLI(["ask", "What was the main finding about depression?", "--rag", "--db", db, "--k", "2",
                                "--mode", "bm25", "--model", Self.model, "--max-tokens", "4", "--json", "--instructions", "Answer briefly."])
        XCTAssertEqual(short.status, 0, short.stderr)
        let so = try JSONSerialization.jsonObject(with: Data(short.stdout.utf8)) as! [String: Any]
        XCTAssertGreaterThan(o["prompt_tokens"] as! Int - (so["prompt_tokens"] as! Int), 20)

        // --context document shows the whole abstracts of the passages found: more passages, the same documents first.
        let whole = try runCLI(["ask", "What was the main finding about depression?", "--rag", "--db", db, "--k", "2",
                                "--mode", "bm25", "--model", Self.model, "--max-tokens", "4", "--json", "--context", "document",
                                "--passage-budget", "2000"])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        let wo = try JSONSerialization.jsonObject(with: Data(whole.stdout.utf8)) as! [String: Any]
        let passagesOf = { (o: [String: Any]) in (o["passages"] as! [[String: Any]]).map { $0["document_key"] as! String } }
        XCTAssertGreaterThan(passagesOf(wo).count, passagesOf(o).count, "\(passagesOf(wo)) vs \(passagesOf(o))")
        XCTAssertEqual(passagesOf(wo).first, passagesOf(o).first)
        // --verdict: a yes/no question's answer starts with Yes, No or Maybe; another question is answered freely.
        let yesNo = try runCLI(["ask", "Is depression associated with the main finding?", "--rag", "--db", db, "--k", "2",
                                "--mode", "bm25", "--model", Self.model, "--max-tokens", "6", "--json", "--verdict", "model"])
        XCTAssertEqual(yesNo.status, 0, yesNo.stderr)
        let yo = try JSONSerialization.jsonObject(with: Data(yesNo.stdout.utf8)) as! [String: Any]
        let verdictAnswer = yo["answer"] as! String
        XCTAssertTrue(["Yes", "No", "Maybe"].contains { verdictAnswer.hasPrefix($0) }, verdictAnswer)
        let wh = try runCLI(["ask", "What was the main finding about depression?", "--rag", "--db", db, "--k", "2",
                             "--mode", "bm25", "--model", Self.model, "--max-tokens", "24", "--json", "--verdict", "model"])
        XCTAssertEqual(wh.status, 0, wh.stderr)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(wh.stdout.utf8)) as! [String: Any])["answer"] as? String,
                       o["answer"] as? String, "not a yes/no question: the same answer as without --verdict")
        let noRAG = try runCLI(["ask", "Why?", "--context", "document", "--model", Self.model])
        XCTAssertNotEqual(noRAG.status, 0)
        XCTAssertTrue(noRAG.stderr.contains("--context is used with --rag only"), noRAG.stderr)

        let bad = try runCLI(["ask", "Why?", "--rag", "--model", Self.model])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--rag needs --db"), bad.stderr)
    }

    func testServeAnswersThenStopsCleanlyOnSIGTERMAndReportsAPortInUse() throws {
        let (p, out, err) = try startServe(["--port", "0", "--no-embedder", "--json"])
        defer { if p.isRunning { p.terminate() } }
        // The first line says where it listens.
        let listening = try listeningLine(out)
        let port = listening["port"] as! Int
        XCTAssertEqual(listening["models"] as? [String], ["SmolLM2-135M-Instruct.Q4_1"])
        XCTAssertTrue((listening["url"] as! String).hasPrefix("http://127.0.0.1:"))

        let o = try post("http://127.0.0.1:\(port)/v1/completions", #"{"prompt": "The heart", "max_tokens": 8, "temperature": 0}"#)
        XCTAssertEqual((o["usage"] as? [String: Int])?["completion_tokens"], 8)

        // A second server on the same port: a clear error, exit 1.
        let second = try runCLI(["serve", "--model", Self.model, "--port", "\(port)", "--no-embedder"])
        XCTAssertEqual(second.status, 1)
        XCTAssertTrue(second.stderr.contains("127.0.0.1:\(port): the port is in use"), second.stderr)

        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, stderr)
        XCTAssertTrue(stderr.contains("server stopped"), stderr)
    }

    /// Starts `selfspec serve --model SmolLM2 <args>` in the background; its process and pipes.
    func startServe(_ args: [String]) throws -> (Process, stdout: Pipe, stderr: Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = ["serve", "--model", Self.model] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, out, err)
    }

    /// Reads the first line `selfspec serve --json` prints (where it listens) as JSON.
    func listeningLine(_ out: Pipe) throws -> [String: Any] {
        var line = Data()
        while true {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        return try JSONSerialization.jsonObject(with: line) as! [String: Any]
    }

    /// POSTs `body` to `url` with curl; the decoded JSON object.
    func post(_ url: String, _ body: String) throws -> [String: Any] {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sS", url, "-H", "Content-Type: application/json", "-d", body]
        let out = Pipe()
        curl.standardOutput = out
        try curl.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CocoaError(.coderReadCorrupt, userInfo: [NSDebugDescriptionErrorKey: String(decoding: data, as: UTF8.self)])
        }
        return o
    }

    func testServeWithAdapterServesItAsItsOwnModelWithTheSameTextAsGenerate() throws {
        // A real GGUF LoRA for SmolLM2 (random down-projection pairs), in a run folder.
        let file = try GGUFFile(path: Self.model)
        let config = try LlamaModel(file: file, options: .init(denseWeights: false))
        var rng = SplitMix64(seed: 21)
        var pairs: [String: LoRAAdapter.Pair] = [:]
        for w in config.weights.blockLinears where w.name.hasSuffix("ffn_down.weight") {
            let a = (0..<(8 * w.columns)).map { _ in (rng.nextUnitFloat() * 2 - 1) / Float(w.columns).squareRoot() }
            let b = (0..<(w.rows * 8)).map { _ in (rng.nextUnitFloat() * 2 - 1) * 0.5 }
            pairs[w.name] = .init(a: a, b: b, rank: 8, inputs: w.columns, outputs: w.rows, scale: 2)
        }
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("serve-adapter-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: run) }
        try LoRAAdapter(pairs: pairs, base: .init(file: file, config: config.config)).writeGGUF(to: run.appendingPathComponent("adapter.gguf").path)

        // What `generate --adapter` gives, greedy.
        let expected = try runCLI(["generate", "--model", Self.model, "--adapter", run.path, "--prompt", "Aspirin is used to treat",
                                   "--max-tokens", "12", "--temperature", "0", "--json"])
        XCTAssertEqual(expected.status, 0, expected.stderr)
        let expectedText = (try JSONSerialization.jsonObject(with: Data(expected.stdout.utf8)) as! [String: Any])["text"] as! String

        let (p, out, _) = try startServe(["--adapter", "med=\(run.path)", "--port", "0", "--no-embedder", "--json"])
        defer { if p.isRunning { p.terminate() } }
        let listening = try listeningLine(out)
        XCTAssertEqual(listening["models"] as? [String], ["SmolLM2-135M-Instruct.Q4_1", "med"])
        let url = "http://127.0.0.1:\(listening["port"] as! Int)/v1/completions"
        func text(_ model: String) throws -> String {
            let o = try post(url, #"{"model": "\#(model)", "prompt": "Aspirin is used to treat", "max_tokens": 12, "temperature": 0}"#)
            XCTAssertEqual(o["model"] as? String, model)
            return ((o["choices"] as? [[String: Any]])?.first?["text"] as? String) ?? "<no text: \(o)>"
        }
        let tuned = try text("med"), base = try text("SmolLM2-135M-Instruct.Q4_1")
        print("base: \(base.debugDescription)\nmed:  \(tuned.debugDescription)")
        XCTAssertEqual(tuned, expectedText, "the served adapter gives generate --adapter's greedy text")
        XCTAssertNotEqual(tuned, base, "the adapter changes the text")
        let unknown = try post(url, #"{"model": "nope", "prompt": "x", "max_tokens": 2}"#)
        XCTAssertNotNil(unknown["error"], "an unknown model id is an error: \(unknown)")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)

        // A missing adapter is a clear error before the server starts.
        let missing = try runCLI(["serve", "--model", Self.model, "--adapter", run.path + "/missing", "--port", "0", "--no-embedder"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains(run.path + "/missing"), missing.stderr)
    }

    /// `--bf16` on a command that runs a model: it generates where the CPU has AVX-512 BF16 (the
    /// first greedy tokens agree with float32 on this prompt) and is refused with a clear message
    /// elsewhere.
    func testBF16FlagGeneratesWhereNativeAndIsRefusedElsewhere() throws {
        let args = ["generate", "--model", Self.model, "--prompt", "Aspirin is used to treat", "--max-tokens", "4"]
        let float32 = try runCLI(args)
        XCTAssertEqual(float32.status, 0, float32.stderr)
        let bf16 = try runCLI(args + ["--bf16"])
        if PackedMatrix.bfloat16IsNative {
            XCTAssertEqual(bf16.status, 0, bf16.stderr)
            XCTAssertEqual(bf16.stdout, float32.stdout, "4 greedy tokens: bfloat16 weights agree with float32 here")
        } else {
            XCTAssertNotEqual(bf16.status, 0)
            XCTAssertTrue(bf16.stderr.contains("no AVX-512 BF16"), bf16.stderr)
        }
    }
}
