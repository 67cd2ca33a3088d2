import Foundation
import XCTest
import TestSupport
@testable import LLM

/// Paths the tests use, all inside the repository (see `RepositoryFiles`).
enum TestPaths {
    static let repoRoot = RepositoryFiles.root
    static let smolLM2 = repoRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")

    /// The SmolLM2 model path; fails the test (rather than skipping) when `scripts/setup` has
    /// not placed it, so a missing model cannot pass silently.
    static func smolLM2Path(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try RepositoryFiles.model(smolLM2.lastPathComponent, file: file, line: line)
    }

    /// The golden reference `name` from `Tests/Fixtures/golden`.
    static func json(_ name: String) throws -> [String: Any] { try RepositoryFiles.goldenJSON(name) }
}

/// A fresh temporary directory per test, removed when released and, in any case (e.g. when
/// something recreated it after an early release), after `test`.
final class TemporaryDirectory {
    let url: URL
    init(_ test: XCTestCase) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("llmtests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.removeAfterTest(url.path)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}

/// The SmolLM2 file and tokenizer, opened once per test run.
enum SharedModel {
    private static let file = Result { try GGUFFile(path: TestPaths.smolLM2.path) }
    private static let tokenizer = Result { try BPETokenizer(metadata: try file.get().metadata) }

    static func open() throws -> GGUFFile {
        _ = try TestPaths.smolLM2Path()
        return try file.get()
    }

    static func bpe() throws -> BPETokenizer {
        _ = try TestPaths.smolLM2Path()
        return try tokenizer.get()
    }
}
