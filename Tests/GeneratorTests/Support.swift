import Foundation
import Ingest
import XCTest
import TestSupport

/// Paths of the repository, its labelled sets (`corpora/eval`) and this target's fixtures.
enum Paths {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repo = RepositoryFiles.root
    static let seeds = repo.appendingPathComponent("corpora/seeds/biomedical.jsonl").path
    /// `corpora/eval/<rel>`.
    static func data(_ rel: String) -> String { RepositoryFiles.eval(rel) }
}

extension XCTestCase {
    /// The documents of a sample PubMed file (`corpora/samples/pubmed_xml/NAME`).
    func samplePubMed(_ name: String) throws -> [Document] {
        var docs: [Document] = []
        try PubMedReader().read(file: RepositoryFiles.pubmedSample(name)) { if case .document(let d) = $0 { docs.append(d) } }
        return docs
    }

    /// A fresh temporary path (file or directory) for one test; it and every path that extends
    /// it (`+ ".sqlite"`, SQLite's `-wal`/`-shm`, ...) are removed after the test.
    func tempPath(_ tag: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))").path
        removeAfterTest(path)
        return path
    }

    /// `text` written to a fresh temporary file, removed after the test.
    func writeTemp(_ text: String, _ tag: String, ext: String = "jsonl") -> String {
        let p = tempPath(tag) + "." + ext
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }
}

/// The scripted OpenAI-compatible server (`Fixtures/openai_server.py`), a real HTTP server on a
/// free loopback port, run as a subprocess for the lifetime of the object.
final class TestServer: @unchecked Sendable {
    let process = Process()
    let port: Int
    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    init(arguments: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Paths.fixtures.appendingPathComponent("openai_server.py").path] + arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = Data()
        while true {
            let b = out.fileHandleForReading.readData(ofLength: 1)
            if b.isEmpty || b == Data("\n".utf8) { break }
            line.append(b)
        }
        guard let p = Int(String(decoding: line, as: UTF8.self)) else {
            process.terminate()
            throw NSError(domain: "TestServer", code: 1, userInfo: [NSLocalizedDescriptionKey: "server did not print a port"])
        }
        port = p
    }

    deinit { process.terminate(); process.waitUntilExit() }

    /// The server's request counters.
    func stats() throws -> [String: Int] {
        let data = try Data(contentsOf: baseURL.appendingPathComponent("stats"))
        return try JSONSerialization.jsonObject(with: data) as? [String: Int] ?? [:]
    }
}

/// A loopback port with nothing listening (bound and released).
func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    close(fd)
    return Int(UInt16(bigEndian: addr.sin_port))
}
