import Foundation
import XCTest
import TestSupport
@testable import LLM
@testable import Tuner
import Tensor

/// Paths the tests use, all inside the repository (see `RepositoryFiles`).
enum TestPaths {
    static let repoRoot = RepositoryFiles.root
    static let smolLM2 = repoRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")

    /// Fails (rather than skips) when the model is missing, so a missing model cannot pass silently.
    static func smolLM2Path(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try RepositoryFiles.model(smolLM2.lastPathComponent, file: file, line: line)
    }

    /// The golden reference `name` from `Tests/Fixtures/golden`.
    static func json(_ name: String) throws -> [String: Any] { try RepositoryFiles.goldenJSON(name) }
}

/// The SmolLM2 file and its float32 weights, loaded once per test run.
enum SharedModel {
    private static let base = Result { try BaseModel(path: TestPaths.smolLM2.path) }
    static func load() throws -> BaseModel {
        _ = try TestPaths.smolLM2Path()
        return try base.get()
    }
}

/// A fresh temporary directory per test, removed when released and, in any case (e.g. when
/// something recreated it after an early release), after `test`.
final class TemporaryDirectory {
    let url: URL
    init(_ test: XCTestCase) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tunertests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.removeAfterTest(url.path)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
}

/// Deterministic random test inputs.
struct TestRandom {
    var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }
    mutating func floats(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in (rng.nextUnitFloat() * 2 - 1) * scale }
    }
}
