import Foundation
import XCTest

/// The files of this repository that tests read. Everything is inside the clone: golden
/// references and their scripts in `Tests/Fixtures/golden`, the labelled development sets in
/// `corpora/eval`, small real PubMed files in `corpora/samples/pubmed_xml`, and the models that
/// `scripts/setup` downloads into `models/`. A missing file fails the test that needs it: nothing
/// is skipped because a fixture is absent.
public enum RepositoryFiles {
    /// The repository root, found from this file's location (`Tests/TestSupport/…`).
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// Golden references made with the Python stack (see its README.md).
    public static let golden = root.appendingPathComponent("Tests/Fixtures/golden")
    /// Labelled development sets (PubMedQA, MedMCQA, GAD, NER); see `corpora/eval/SOURCES.md`.
    public static let eval = root.appendingPathComponent("corpora/eval")
    /// Small real PubMed XML files (PubmedArticleSet and the older MedlineCitationSet schema).
    public static let pubmedSamples = root.appendingPathComponent("corpora/samples/pubmed_xml")
    /// Models downloaded by `scripts/setup`.
    public static let models = root.appendingPathComponent("models")

    /// `corpora/eval/<relative>` as a path.
    public static func eval(_ relative: String) -> String { eval.appendingPathComponent(relative).path }
    /// `corpora/samples/pubmed_xml/<name>` as a path.
    public static func pubmedSample(_ name: String) -> String { pubmedSamples.appendingPathComponent(name).path }

    /// The parsed golden JSON file `name`; a missing file is a test failure (thrown).
    public static func goldenJSON(_ name: String) throws -> [String: Any] {
        let url = golden.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw MissingFile(path: url.path, hint: "golden references are tracked in the repository")
        }
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        return try XCTUnwrap(object as? [String: Any], "\(url.path) is not a JSON object")
    }

    /// `models/<name>` as a path, after checking it exists: a missing model fails the test (with
    /// `XCTFail`, then a thrown skip that ends it), so it can never pass silently.
    public static func model(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let path = models.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("missing \(path): run scripts/setup", file: file, line: line)
            throw XCTSkip("model missing (already reported as a failure)")
        }
        return path
    }
}

/// A file a test needs is not in the repository.
public struct MissingFile: Error, CustomStringConvertible {
    public var path: String
    public var hint: String
    public var description: String { "missing \(path) (\(hint))" }
}
