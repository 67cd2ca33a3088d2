import Foundation
import FuzzTargets
import LLM
import Tensor
import TestSupport
import XCTest

/// Replays `Tests/Fixtures/fuzz` through the fuzz targets, as `scripts/fuzz` runs them: the seeds
/// of each target, the inputs that once failed (`crashers/TARGET/`, kept as regressions) and the
/// allocation bombs (`bombs/`), which must be refused with the expected error, fast and without
/// allocating what they claim.
final class FuzzRegressionTests: XCTestCase {
    private static let fixtures = RepositoryFiles.root.appendingPathComponent("Tests/Fixtures/fuzz")

    /// The files of `Tests/Fixtures/fuzz/<folder>`, sorted; none when the folder is absent.
    private func files(_ folder: String) throws -> [URL] {
        let dir = Self.fixtures.appendingPathComponent(folder)
        guard FileManager.default.fileExists(atPath: dir.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { !$0.hasDirectoryPath }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testEveryTargetHasSeeds() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path)
            .filter { $0 != "crashers" && $0 != "bombs" && !$0.contains(".") }
        XCTAssertEqual(Set(folders), Set(FuzzTarget.allCases.map(\.rawValue)), "one seed folder per target")
        for target in FuzzTarget.allCases {
            XCTAssertFalse(try files(target.rawValue).isEmpty, "\(target.rawValue) has seeds")
        }
    }

    /// Targets whose every step must accept every seed (the seeds are well-formed real files);
    /// the others run several readers, some of which refuse a seed made for another.
    private static let acceptsEverySeed: Set<FuzzTarget> = [
        .safetensors, .pubmed, .jats, .jsonlDocuments, .jsonlDataset, .tokenizerBPE, .tokenizerSPM,
    ]

    func testSeedsAndCrashers() throws {
        for target in FuzzTarget.allCases {
            let harness = try FuzzHarness(target: target, models: RepositoryFiles.models.path)
            for url in try files(target.rawValue) + files("crashers/\(target.rawValue)") {
                let label = "\(target.rawValue) \(url.lastPathComponent)"
                let start = Date()
                do {
                    let outcome = try harness.run(Data(contentsOf: url))
                    if Self.acceptsEverySeed.contains(target) && !url.path.contains("/crashers/") {
                        XCTAssertEqual(outcome, .accepted, label)
                    }
                } catch {
                    XCTFail("\(label): \(error)")
                }
                XCTAssertLessThan(Date().timeIntervalSince(start), 1, "\(label): over a second (a hang for the fuzzer)")
            }
        }
    }

    func testGGUFWithOpenableSeeds() throws {
        for url in try files("gguf") {
            let file = try GGUFFile(path: url.path)
            XCTAssertEqual(try file.metadata.strings("tokenizer.ggml.tokens").count, 64, url.lastPathComponent)
            XCTAssertFalse(file.tensors.isEmpty, url.lastPathComponent)
        }
    }

    // MARK: Allocation bombs

    private func bomb(_ name: String) -> String {
        Self.fixtures.appendingPathComponent("bombs/\(name)").path
    }

    func testGGUFBombs() throws {
        let tensor = bomb("gguf-tensor-1e12.gguf")
        let e1 = assertBombRefused("gguf tensor 10^12") { _ = try GGUFFile(path: tensor) }
        guard case let .tensorDataOutOfBounds(_, "w", 0, byteCount, _)? = e1 as? GGUFError else { return XCTFail("\(String(describing: e1))") }
        XCTAssertEqual(byteCount, 4_000_000_000_000)

        let string = bomb("gguf-string-2e40.gguf")
        let e2 = assertBombRefused("gguf string 2^40") { _ = try GGUFFile(path: string) }
        guard case .truncated(_, "value of 'general.name'", _, 1 << 40, _)? = e2 as? GGUFError else { return XCTFail("\(String(describing: e2))") }

        let array = bomb("gguf-array-2e40.gguf")
        let e3 = assertBombRefused("gguf array 2^40") { _ = try GGUFFile(path: array) }
        guard case .countTooLarge(_, "array 'tokenizer.ggml.tokens' element", 1 << 40, _)? = e3 as? GGUFError else {
            return XCTFail("\(String(describing: e3))")
        }
    }

    func testSafetensorsBombs() throws {
        let header = bomb("safetensors-header-2e40.safetensors")
        let e1 = assertBombRefused("safetensors header 2^40") { _ = try SafetensorsFile(path: header) }
        XCTAssertEqual(e1 as? SafetensorsError, .headerTooLarge(file: header, headerBytes: 1 << 40, limit: SafetensorsFile.defaultMaxHeaderBytes))

        let shape = bomb("safetensors-shape-1e12.safetensors")
        let e2 = assertBombRefused("safetensors shape 10^12") { _ = try SafetensorsFile(path: shape) }
        XCTAssertEqual(e2 as? SafetensorsError, .byteLengthMismatch(file: shape, tensor: "w", shape: [1_000_000, 1_000_000], dtype: "F32",
                                                                   expectedBytes: 4_000_000_000_000, actualBytes: 16))
    }

    /// The bombs through the fuzz targets too: refused at opening, never a failure.
    func testBombsThroughTheTargets() throws {
        for url in try files("bombs") {
            let target: FuzzTarget = url.pathExtension == "gguf" ? .gguf : .safetensors
            let harness = try FuzzHarness(target: target, models: RepositoryFiles.models.path)
            guard case let .refused(message) = try harness.run(Data(contentsOf: url)) else {
                XCTFail("\(url.lastPathComponent) was accepted"); continue
            }
            XCTAssertTrue(message.hasPrefix("open: "), "\(url.lastPathComponent): \(message)")
        }
    }

    /// The blind mutation fuzzer CI runs: the same seed gives the same mutants, mutants differ
    /// from their seeds, and a real run over the GGUF seeds executes, refuses most mutants and finds
    /// no failure (a failure here is a parser bug: its input is printed).
    func testMutationFuzzer() throws {
        let seeds = try files("gguf").map { try Data(contentsOf: $0) }
        let harness = try FuzzHarness(target: .gguf, models: RepositoryFiles.models.path)
        var a = MutationFuzzer(harness: harness, seeds: seeds, seed: 7), b = MutationFuzzer(harness: harness, seeds: seeds, seed: 7)
        let mutantsA = (0..<50).map { _ in a.mutant() }
        XCTAssertEqual(mutantsA, (0..<50).map { _ in b.mutant() }, "seeded: reproducible")
        XCTAssertGreaterThan(Set(mutantsA).subtracting(seeds.map { Array($0) }).count, 40, "mutants are new inputs")
        var fuzzer = MutationFuzzer(harness: harness, seeds: seeds, seed: 1)
        var failed = [String]()
        let summary = fuzzer.run(seconds: 60, executions: 400) { input, why in failed.append("\(input.base64EncodedString()): \(why)") }
        print("mutation fuzzer, gguf: \(summary)")
        XCTAssertEqual(summary.executions, 400)
        XCTAssertEqual(failed, [])
        XCTAssertGreaterThan(summary.refused, 100, "most mutants of a GGUF are refused")
    }
}
