import Foundation

// MARK: - Seed

/// One hand-written or benchmark-derived task demonstration: the model sees seeds as examples of
/// the instructions it should brainstorm and of the answers it should write.
public struct Seed: Codable, Sendable, Equatable, Hashable {
    /// A task family name (`yes_no_maybe`, `ner_chemical`, …); free text, used in statistics.
    public var task: String
    public var instruction: String
    /// The instance input; may be empty for instructions that stand alone.
    public var input: String
    public var output: String

    public init(task: String, instruction: String, input: String, output: String) {
        self.task = task; self.instruction = instruction; self.input = input; self.output = output
    }
}

// MARK: - Loading

/// Reads and validates seed files: JSONL, one `{"task","instruction","input","output"}` object a
/// line; blank lines are skipped; `input` may be empty, the other fields may not.
public enum SeedLoader {
    /// - Throws: ``GeneratorError`` naming the file and line (unreadable, empty, bad JSON,
    ///   missing or empty field).
    public static func load(path: String) throws -> [Seed] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw GeneratorError.unreadable(file: path, reason: (error as NSError).localizedDescription)
        }
        return try parse(data, file: path)
    }

    /// Parses JSONL seed data; `file` only names the source in errors.
    public static func parse(_ data: Data, file: String) throws -> [Seed] {
        var seeds: [Seed] = []
        var lineNumber = 0
        for raw in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw[...]
            if line.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Data(line)) } catch {
                throw GeneratorError.badJSON(file: file, line: lineNumber, reason: "invalid JSON")
            }
            guard let dict = object as? [String: Any] else {
                throw GeneratorError.badJSON(file: file, line: lineNumber, reason: "expected an object")
            }
            func field(_ key: String, mayBeEmpty: Bool = false) throws -> String {
                guard let v = dict[key] as? String else { throw GeneratorError.missingField(file: file, line: lineNumber, field: key) }
                let t = v.trimmingCharacters(in: .whitespacesAndNewlines)
                if t.isEmpty && !mayBeEmpty { throw GeneratorError.emptyField(file: file, line: lineNumber, field: key) }
                return t
            }
            seeds.append(Seed(task: try field("task"), instruction: try field("instruction"),
                              input: try field("input", mayBeEmpty: true), output: try field("output")))
        }
        if seeds.isEmpty { throw GeneratorError.emptyFile(file: file) }
        return seeds
    }

    /// Writes seeds as JSONL (sorted keys, one per line).
    public static func write(_ seeds: [Seed], to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var out = Data()
        for s in seeds { out.append(try enc.encode(s)); out.append(UInt8(ascii: "\n")) }
        do { try out.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw GeneratorError.unreadable(file: path, reason: "cannot write: \((error as NSError).localizedDescription)")
        }
    }
}
