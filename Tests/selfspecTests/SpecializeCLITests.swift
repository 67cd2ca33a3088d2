import Foundation
import XCTest
import TestSupport

/// `selfspec seeds …` and `selfspec specialize generate` end to end: the real binary, a real
/// corpus, and the scripted OpenAI-compatible server (Tests/GeneratorTests/Fixtures/openai_server.py)
/// on a loopback port as the model.
final class SpecializeCLITests: XCTestCase {
    /// Runs the binary (as `CLITests.run`).
    struct Runner {
        func run(_ args: [String]) throws -> CLITests.Result {
            try runToEnd(CLITests.binary, args)
        }

        /// Runs the binary on a pseudo-terminal (`script`, util-linux): stdout and stderr both
        /// come back in `stdout`, as a terminal shows them.
        func runOnTerminal(_ args: [String]) throws -> CLITests.Result {
            let quoted = ([CLITests.binary] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            p.arguments = ["-qec", quoted.joined(separator: " "), "/dev/null"]
            let out = Pipe()
            p.standardOutput = out
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return CLITests.Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: "")
        }

        func tempDB() -> String {
            FileManager.default.temporaryDirectory.appendingPathComponent("spec-cli-\(getpid())-\(UUID().uuidString.prefix(8)).sqlite").path
        }
    }
    let cli = Runner()
    static let data = RepositoryFiles.eval.path

    /// A fresh temporary path; it and every path that extends it are removed after the test.
    func temp(_ tag: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("spec-cli-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))").path
        removeAfterTest(path)
        return path
    }

    func testSeedsSampleAndCheck() throws {
        let out = temp("seeds") + ".jsonl"
        let r = try cli.run(["seeds", "sample", "--from", Self.data + "/pubmedqa/pqal_dev.json", "--format", "pubmedqa", "--count", "5", "--seed", "1", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("wrote 5 seeds"), r.stdout)
        let check = try cli.run(["seeds", "check", out])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertTrue(check.stdout.contains("5 seeds") && check.stdout.contains("yes_no_maybe"), check.stdout)
        let ours = try cli.run(["seeds", "check", CLITests.repo.appendingPathComponent("corpora/seeds/biomedical.jsonl").path])
        XCTAssertTrue(ours.stdout.contains("59 seeds"), ours.stdout)

        let wrong = try cli.run(["seeds", "sample", "--from", Self.data + "/pubmedqa/pqal_dev.json", "--format", "gad", "--out", out])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains("not gad (JSONL) format at line 1"), wrong.stderr)
        let badFormat = try cli.run(["seeds", "sample", "--from", out, "--format", "csv", "--out", out])
        XCTAssertTrue(badFormat.stderr.contains("--format must be pubmedqa, ner, gad or mcq"), badFormat.stderr)
        let empty = temp("empty") + ".jsonl"
        FileManager.default.createFile(atPath: empty, contents: Data())
        let e = try cli.run(["seeds", "check", empty])
        XCTAssertNotEqual(e.status, 0)
        XCTAssertTrue(e.stderr.contains("\(empty): the file has no records"), e.stderr)
    }

    func testGenerateWithAnOpenAIEndpointAndResume() throws {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", CLITests.repo.appendingPathComponent("Tests/GeneratorTests/Fixtures/openai_server.py").path]
        let pipe = Pipe()
        server.standardOutput = pipe
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        var line = Data()
        while true { let b = pipe.fileHandleForReading.readData(ofLength: 1); if b.isEmpty || b == Data("\n".utf8) { break }; line.append(b) }
        let url = "http://127.0.0.1:\(String(decoding: line, as: UTF8.self))"

        let db = cli.tempDB()
        removeAfterTest(db)
        XCTAssertEqual(try cli.run(["ingest", RepositoryFiles.pubmedSample("xizhou_pubMR_pubmed_result.xml"), "--db", db, "--quiet"]).status, 0)
        let out = temp("run")
        let args = ["specialize", "generate", "--db", db, "--out", out, "--backend", "openai", "--base-url", url, "--model", "test",
                    "--seed", "7", "--seeds", CLITests.repo.appendingPathComponent("corpora/seeds/biomedical.jsonl").path]
        let r = try cli.run(args + ["--count", "6"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("has no embeddings; grounding with BM25"), r.stderr)
        XCTAssertTrue(r.stdout.contains("examples in \(out)/examples.jsonl"), r.stdout)
        XCTAssertTrue(r.stdout.contains("filtered:") && r.stdout.contains("leading verbs:"), r.stdout)
        XCTAssertFalse(r.stderr.contains("ETA"), "the progress line is for terminals only: \(r.stderr)")
        // On a terminal: the progress line with examples, rate, kept ratios and ETA.
        let tty = try cli.runOnTerminal(args.map { $0 == out ? temp("tty") : $0 } + ["--count", "3"])
        XCTAssertEqual(tty.status, 0, tty.stdout)
        XCTAssertNotNil(tty.stdout.range(of: #"generate: \d+/3 examples · [0-9.]+/min · kept \d+% instructions, \d+% responses · round 1 · ETA"#,
                                         options: .regularExpression), tty.stdout)
        let first = try String(contentsOfFile: out + "/examples.jsonl", encoding: .utf8).split(separator: "\n").count
        XCTAssertGreaterThanOrEqual(first, 6)

        let again = try cli.run(args + ["--count", "6"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("pass --resume"), again.stderr)
        let more = try cli.run(args + ["--count", "12", "--resume", "--json"])
        XCTAssertEqual(more.status, 0, more.stderr)
        let stats = try JSONSerialization.jsonObject(with: Data(more.stdout.utf8)) as? [String: Any]
        XCTAssertGreaterThanOrEqual(stats?["examples"] as? Int ?? 0, 12)
        let lines = try String(contentsOfFile: out + "/examples.jsonl", encoding: .utf8).split(separator: "\n").count
        XCTAssertEqual(lines, stats?["examples"] as? Int)
        let otherSeed = try cli.run(args.map { $0 == "7" ? "8" : $0 } + ["--resume"])
        XCTAssertTrue(otherSeed.stderr.contains("other settings"), otherSeed.stderr)
    }

    func testBackendErrors() throws {
        let seeds = CLITests.repo.appendingPathComponent("corpora/seeds/biomedical.jsonl").path
        // The local engine (default backend) with a model file that does not exist: named, nothing written.
        let out = temp("local")
        let local = try cli.run(["specialize", "generate", "--no-retrieval", "--out", out, "--seeds", seeds,
                                 "--model", "/no/such/model.gguf", "--count", "2"])
        XCTAssertNotEqual(local.status, 0)
        XCTAssertTrue(local.stderr.contains("/no/such/model.gguf"), local.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/examples.jsonl"))
        let down = try cli.run(["specialize", "generate", "--no-retrieval", "--out", temp("down"), "--seeds", seeds, "--backend", "openai",
                                "--base-url", "http://127.0.0.1:9", "--model", "m", "--attempts", "1", "--count", "3"])
        XCTAssertNotEqual(down.status, 0)
        XCTAssertTrue(down.stderr.contains("cannot reach http://127.0.0.1:9/v1/completions"), down.stderr)
        XCTAssertTrue(down.stderr.contains("every brainstorm request of 3 rounds in a row failed"), down.stderr)
        XCTAssertTrue(down.stderr.contains("ungrounded run (no retrieval)"), down.stderr)
        let badInstructions = temp("instructions") + ".jsonl"
        try Data("{\"instruction\": \"\", \"input\": \"\"}\n".utf8).write(to: URL(fileURLWithPath: badInstructions))
        let given = try cli.run(["specialize", "generate", "--no-retrieval", "--out", temp("given"), "--seeds", seeds, "--backend", "openai",
                                 "--base-url", "http://127.0.0.1:9", "--model", "m", "--instructions", badInstructions])
        XCTAssertNotEqual(given.status, 0)
        XCTAssertTrue(given.stderr.contains("\(badInstructions):1: field \"instruction\" is empty"), given.stderr)
        let noDB = try cli.run(["specialize", "generate", "--out", temp("x"), "--backend", "openai", "--base-url", "http://127.0.0.1:9", "--model", "m"])
        XCTAssertTrue(noDB.stderr.contains("pass --db FILE"), noDB.stderr)
        let bf16 = try cli.run(["specialize", "generate", "--no-retrieval", "--out", temp("bf"), "--seeds", seeds, "--backend", "openai",
                                "--base-url", "http://127.0.0.1:9", "--model", "m", "--bf16"])
        XCTAssertNotEqual(bf16.status, 0)
        // A CPU without AVX-512 BF16 refuses --bf16 itself first (WeightOptions.validate).
        let nativeBF16 = ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "").contains("avx512_bf16")
        XCTAssertTrue(bf16.stderr.contains(nativeBF16 ? "--bf16 is for the local model" : "--bf16: this CPU has no AVX-512 BF16"), bf16.stderr)
        // Per-stage prompt form and sampling: bad values exit 64 with the option named.
        for (args, message) in [(["--brainstorm-prompt", "plain"], "--brainstorm-prompt must be chat or completion, not 'plain'"),
                                (["--response-prompt", "x"], "--response-prompt must be chat or completion"),
                                (["--brainstorm-temperature", "9"], "invalid --brainstorm-temperature 9.0: expected in [0, 5]"),
                                (["--brainstorm-top-p", "0"], "invalid --brainstorm-top-p 0.0: expected in (0, 1]"),
                                (["--brainstorm-top-p", "1.5"], "invalid --brainstorm-top-p 1.5"),
                                (["--response-temperature", "6"], "invalid --response-temperature 6.0"),
                                (["--demonstrations=-1"], "--demonstrations must be in 0...8"),
                                (["--demonstrations", "9"], "--demonstrations must be in 0...8"),
                                (["--backend", "openai", "--base-url", "http://127.0.0.1:9", "--brainstorm-prompt", "chat"],
                                 "--brainstorm-prompt is for the local engine; with --backend openai, --chat picks the endpoint")] {
            let r = try cli.run(["specialize", "generate", "--no-retrieval", "--out", temp("opt"), "--model", "m.gguf"] + args)
            XCTAssertEqual(r.status, 64, "\(args)")
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
    }
}
