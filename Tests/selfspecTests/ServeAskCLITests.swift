import Foundation
import XCTest

/// `selfspec serve` and `selfspec ask` as a user runs them: the real binary, SmolLM2, a corpus
/// ingested from real PubMed XML; signals and exit codes.
final class ServeAskCLITests: XCTestCase {
    static let repo = CLITests.repo
    static let model = repo.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path

    func runCLI(_ args: [String]) throws -> CLITests.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        final class Box: @unchecked Sendable { var data = Data() }  // written by one thread, read after wait()
        let e = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { e.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return CLITests.Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e.data, as: UTF8.self))
    }

    func tempDB() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("ask-\(getpid())-\(UUID().uuidString.prefix(8)).sqlite").path
    }

    func testAskWithRAGStreamsAnAnswerAndListsItsSources() throws {
        let db = tempDB()
        defer { try? FileManager.default.removeItem(atPath: db) }
        let xml = URL(fileURLWithPath: CLITests.shared).appendingPathComponent("qi29_main_finding_pubmed_result.xml").path
        XCTAssertEqual(try runCLI(["ingest", xml, "--db", db, "--quiet"]).status, 0)
        let r = try runCLI(["ask", "What was the main finding about depression?", "--rag", "--db", db, "--k", "2",
                            "--mode", "bm25", "--model", Self.model, "--max-tokens", "24"])
        XCTAssertEqual(r.status, 0, r.stderr)
        print(r.stdout)
        let parts = r.stdout.components(separatedBy: "\nSources:\n")
        XCTAssertEqual(parts.count, 2, "an answer, then the sources: \(r.stdout)")
        XCTAssertFalse(parts[0].trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "an answer")
        let sources = parts[1].split(separator: "\n")
        XCTAssertTrue((1...2).contains(sources.count), "\(sources)")
        for s in sources { XCTAssertTrue(s.hasPrefix("- PMID "), String(s)) }

        let j = try runCLI(["ask", "What was the main finding about depression?", "--rag", "--db", db, "--k", "2",
                            "--mode", "bm25", "--model", Self.model, "--max-tokens", "24", "--json"])
        XCTAssertEqual(j.status, 0, j.stderr)
        let o = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((o["sources"] as! [[String: Any]]).count, sources.count)
        XCTAssertEqual(o["mode"] as? String, "bm25")
        XCTAssertEqual(o["answer"] as? String, parts[0].trimmingCharacters(in: .newlines), "greedy: the same answer")

        let bad = try runCLI(["ask", "Why?", "--rag", "--model", Self.model])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--rag needs --db"), bad.stderr)
    }

    func testServeAnswersThenStopsCleanlyOnSIGTERMAndReportsAPortInUse() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLITests.binary)
        p.arguments = ["serve", "--model", Self.model, "--port", "0", "--no-embedder", "--json"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        // The first line says where it listens.
        var line = Data()
        while true {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        let listening = try JSONSerialization.jsonObject(with: line) as! [String: Any]
        let port = listening["port"] as! Int
        XCTAssertEqual(listening["models"] as? [String], ["SmolLM2-135M-Instruct.Q4_1"])
        XCTAssertTrue((listening["url"] as! String).hasPrefix("http://127.0.0.1:"))

        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sS", "http://127.0.0.1:\(port)/v1/completions", "-H", "Content-Type: application/json",
                          "-d", #"{"prompt": "The heart", "max_tokens": 8, "temperature": 0}"#]
        let curlOut = Pipe()
        curl.standardOutput = curlOut
        try curl.run()
        let answer = curlOut.fileHandleForReading.readDataToEndOfFile()
        curl.waitUntilExit()
        let o = try JSONSerialization.jsonObject(with: answer) as! [String: Any]
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
}
