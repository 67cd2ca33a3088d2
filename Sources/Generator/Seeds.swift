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
        try JSONLRecords.parse(data, file: file) { r in
            Seed(task: try r.field("task"), instruction: try r.field("instruction"),
                 input: try r.field("input", mayBeEmpty: true), output: try r.field("output"))
        }
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

/// Instructions from an earlier run (its `instructions.jsonl`: `{"instruction", "input"}` per
/// line) for a run that only regenerates responses (`specialize generate --instructions`).
public enum InstructionLoader {
    /// - Throws: ``GeneratorError`` naming the file and line.
    public static func load(path: String) throws -> [InstructionCandidate] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw GeneratorError.unreadable(file: path, reason: (error as NSError).localizedDescription)
        }
        return try JSONLRecords.parse(data, file: path) { r in
            InstructionCandidate(instruction: try r.field("instruction"), input: try r.field("input", mayBeEmpty: true))
        }
    }
}

/// One JSON object per line, blank lines skipped; errors name the file and line.
enum JSONLRecords {
    struct Record {
        let file: String, line: Int, object: [String: Any]

        /// A string field, trimmed.
        func field(_ key: String, mayBeEmpty: Bool = false) throws -> String {
            guard let v = object[key] as? String else { throw GeneratorError.missingField(file: file, line: line, field: key) }
            let t = v.trimmingCharacters(in: .whitespacesAndNewlines)
            if t.isEmpty && !mayBeEmpty { throw GeneratorError.emptyField(file: file, line: line, field: key) }
            return t
        }
    }

    /// - Throws: ``GeneratorError`` for bad JSON, a line that is not an object, an empty file,
    ///   and whatever `make` throws.
    static func parse<T>(_ data: Data, file: String, _ make: (Record) throws -> T) throws -> [T] {
        var out: [T] = []
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
            out.append(try make(Record(file: file, line: lineNumber, object: dict)))
        }
        if out.isEmpty { throw GeneratorError.emptyFile(file: file) }
        return out
    }
}
