import Foundation

/// Finds generated examples that share a 13-gram of words with evaluation data (the GPT-3
/// paper's contamination test), so a model is never tuned on the questions it is scored on.
///
/// Words are `rouge_score` tokens (lowercase [a-z0-9] runs); n-grams never cross the boundary
/// between two strings of an evaluation file. They are stored as 64-bit FNV-1a hashes of the words.
public struct ContaminationIndex: Sendable {
    public let n: Int
    private var grams = Set<UInt64>()
    /// Files read and strings indexed.
    public private(set) var files: [String] = []
    public private(set) var strings = 0

    public init(n: Int = 13) { precondition(n > 0); self.n = n }

    public var count: Int { grams.count }

    /// Indexes an evaluation file: `.json` and `.jsonl` (every string value, recursively: covers
    /// PubMedQA, multiple-choice, GAD and plain JSONL), `.tsv` IOB token files (one sentence a
    /// string), anything else as plain text (one line a string).
    /// - Throws: ``GeneratorError`` naming the file (and line for JSONL).
    public mutating func addFile(_ path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw GeneratorError.unreadable(file: path, reason: (error as NSError).localizedDescription)
        }
        let ext = (path as NSString).pathExtension.lowercased()
        switch ext {
        case "json":
            guard let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
                throw GeneratorError.badJSON(file: path, line: 1, reason: "the file is not valid JSON")
            }
            addStrings(in: root)
        case "jsonl":
            var line = 0
            for raw in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                line += 1
                if raw.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) { continue }
                guard let obj = try? JSONSerialization.jsonObject(with: Data(raw), options: [.fragmentsAllowed]) else {
                    throw GeneratorError.badJSON(file: path, line: line, reason: "invalid JSON")
                }
                addStrings(in: obj)
            }
        case "tsv", "iob", "conll":
            for sentence in String(decoding: data, as: UTF8.self).components(separatedBy: "\n\n") {
                add(sentence.split(separator: "\n").map { String($0.split(separator: "\t").first ?? "") }.joined(separator: " "))
            }
        default:
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") { add(String(line)) }
        }
        files.append(path)
    }

    private mutating func addStrings(in value: Any) {
        if let s = value as? String { add(s) }
        else if let a = value as? [Any] { for v in a { addStrings(in: v) } }
        else if let d = value as? [String: Any] { for k in d.keys.sorted() { addStrings(in: d[k]!) } }
    }

    /// Indexes every n-gram of one evaluation string.
    public mutating func add(_ text: String) {
        strings += 1
        for h in hashes(text) { grams.insert(h) }
    }

    /// True when `text` shares at least one n-gram with the evaluation data.
    public func overlaps(_ text: String) -> Bool {
        if grams.isEmpty { return false }
        return hashes(text).contains { grams.contains($0) }
    }

    func hashes(_ text: String) -> [UInt64] {
        let words = RougeVocabulary.words(text).map(ContaminationIndex.fnv1a)
        guard words.count >= n else { return [] }
        var out: [UInt64] = []
        out.reserveCapacity(words.count - n + 1)
        for i in 0...(words.count - n) {
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for w in words[i..<(i + n)] { h = (h ^ w) &* 0x0000_0100_0000_01B3; h = (h ^ (h >> 29)) }
            out.append(h)
        }
        return out
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}
