import Foundation

/// Reads the four benchmark layouts (`corpora/eval`, see its SOURCES.md) into `TaskDataset`s.
///
/// | task | layout |
/// | --- | --- |
/// | `pubmedqa` | one JSON object keyed by PMID: `{QUESTION, CONTEXTS[], final_decision}` |
/// | `mcq` | `{id: {question, options{A..}, answer}}` (optionally wrapped `{"medmcqa": {…}}`), a JSON list, or JSONL |
/// | `ner` | IOB `token<TAB>tag` lines, a blank line between sentences |
/// | `gad` | JSONL `{text, relation_type}` or `{text, relation: [{relation_type}]}`, positive/negative |
///
/// Records keyed by id are read in sorted key order, so a run does not depend on the JSON
/// parser's dictionary order.
public enum EvalDataLoader {
    /// Reads `path` as `task`.
    /// - Throws: `EvaluationError` naming the file, the record or line, and the field.
    public static func load(task: EvalTask, path: String) throws -> TaskDataset {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw EvaluationError.unreadable(file: path, reason: (error as NSError).localizedDescription)
        }
        let items: TaskDataset.Items
        switch task {
        case .pubmedqa: items = .labels(try pubmedQA(data, file: path))
        case .mcq: items = .labels(try multipleChoice(data, file: path))
        case .gad: items = .labels(try gad(data, file: path))
        case .ner: items = .sentences(try iob(data, file: path))
        }
        let dataset = TaskDataset(task: task, file: path, items: items)
        if dataset.count == 0 { throw EvaluationError.emptyFile(file: path, task: task.rawValue) }
        return dataset
    }

    // MARK: PubMedQA

    /// Labels of PubMedQA, in the order options are scored.
    public static let pubmedQALabels = ["yes", "no", "maybe"]

    static func pubmedQA(_ data: Data, file: String) throws -> [LabelItem] {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw EvaluationError.wrongFormat(file: file, task: "pubmedqa", location: "top level",
                                              reason: "expected one JSON object keyed by PMID")
        }
        return try root.keys.sorted().map { pmid in
            let at = "record \(pmid)"
            guard let item = root[pmid] as? [String: Any] else {
                throw EvaluationError.wrongFormat(file: file, task: "pubmedqa", location: at, reason: "not a JSON object")
            }
            guard let question = item["QUESTION"] as? String, !question.isEmpty else {
                throw EvaluationError.missingField(file: file, location: at, field: "QUESTION", expected: "a non-empty string")
            }
            guard let contexts = item["CONTEXTS"] as? [String] else {
                throw EvaluationError.missingField(file: file, location: at, field: "CONTEXTS", expected: "a list of strings")
            }
            guard let decision = item["final_decision"] as? String else {
                throw EvaluationError.missingField(file: file, location: at, field: "final_decision", expected: "a string")
            }
            guard let gold = pubmedQALabels.firstIndex(of: decision.lowercased()) else {
                throw EvaluationError.unknownLabel(file: file, location: at, field: "final_decision", label: decision,
                                                   allowed: pubmedQALabels)
            }
            let input = "Context: \(contexts.joined(separator: " "))\nQuestion: \(question)"
            return LabelItem(id: pmid, input: input, labels: pubmedQALabels, gold: gold)
        }
    }

    // MARK: Multiple choice

    static func multipleChoice(_ data: Data, file: String) throws -> [LabelItem] {
        // (location, record) pairs from the three layouts.
        var records: [(String, Any)] = []
        if let root = try? JSONSerialization.jsonObject(with: data) {
            if let list = root as? [Any] {
                records = list.enumerated().map { ("record \($0.offset + 1)", $0.element) }
            } else if let object = root as? [String: Any], object["question"] != nil {
                records = [("record 1", object)]  // a one-line JSONL file
            } else if var object = root as? [String: Any] {
                // `{"medmcqa": {id: {...}}}`: a single key whose value holds the records.
                if object.count == 1, let inner = object.first?.value as? [String: Any],
                   inner["question"] == nil {
                    object = inner
                }
                records = object.keys.sorted().map { ("record \($0)", object[$0]!) }
            } else {
                throw EvaluationError.wrongFormat(file: file, task: "mcq", location: "top level",
                                                  reason: "expected a JSON object of records, a JSON list or JSONL")
            }
        } else {
            for (n, line) in lines(data).enumerated() where !line.allSatisfy(\.isWhitespace) {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) else {
                    throw EvaluationError.wrongFormat(file: file, task: "mcq", location: "line \(n + 1)",
                                                      reason: "not JSON (expected a JSON object, list, or one object per line)")
                }
                records.append(("line \(n + 1)", object))
            }
        }
        return try records.map { at, record in try mcqItem(record, at: at, file: file) }
    }

    static func mcqItem(_ record: Any, at: String, file: String) throws -> LabelItem {
        guard let item = record as? [String: Any] else {
            throw EvaluationError.wrongFormat(file: file, task: "mcq", location: at, reason: "not a JSON object")
        }
        guard let question = item["question"] as? String, !question.isEmpty else {
            throw EvaluationError.missingField(file: file, location: at, field: "question", expected: "a non-empty string")
        }
        // Options: {"A": text, ...} or ["text", ...] (lettered A, B, ... in order).
        var options: [(String, String)] = []
        if let dict = item["options"] as? [String: Any] {
            for key in dict.keys.sorted() {
                guard let text = dict[key] as? String else {
                    throw EvaluationError.missingField(file: file, location: at, field: "options.\(key)", expected: "a string")
                }
                options.append((key, text))
            }
        } else if let list = item["options"] as? [Any] {
            for (i, value) in list.enumerated() {
                guard let text = value as? String, i < 26 else {
                    throw EvaluationError.missingField(file: file, location: at, field: "options[\(i)]", expected: "a string")
                }
                options.append((String(UnicodeScalar(UInt8(65 + i))), text))
            }
        }
        guard options.count >= 2 else {
            throw EvaluationError.missingField(file: file, location: at, field: "options", expected: "an object or list of at least 2 options")
        }
        let letters = options.map(\.0)
        guard let answer = item["answer"] as? String else {
            throw EvaluationError.missingField(file: file, location: at, field: "answer", expected: "a string (an option letter)")
        }
        guard let gold = letters.firstIndex(of: answer.trimmingCharacters(in: .whitespaces)) else {
            throw EvaluationError.unknownLabel(file: file, location: at, field: "answer", label: answer, allowed: letters)
        }
        let id = (item["id"] as? String) ?? at.replacingOccurrences(of: "record ", with: "")
        let input = "Question: \(question)\n" + options.map { "\($0.0). \($0.1)" }.joined(separator: "\n")
        return LabelItem(id: id, input: input, labels: letters, gold: gold, options: options.map(\.1))
    }

    // MARK: GAD

    /// Labels of GAD as the model answers: "yes" (positive, index 0) or "no" (negative).
    public static let gadLabels = ["yes", "no"]

    static func gad(_ data: Data, file: String) throws -> [LabelItem] {
        var items: [LabelItem] = []
        for (n, line) in lines(data).enumerated() where !line.allSatisfy(\.isWhitespace) {
            let at = "line \(n + 1)"
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw EvaluationError.wrongFormat(file: file, task: "gad (JSONL)", location: at, reason: "not a JSON object")
            }
            guard let text = object["text"] as? String, !text.isEmpty else {
                throw EvaluationError.missingField(file: file, location: at, field: "text", expected: "a non-empty string")
            }
            let field: String, label: String
            if let top = object["relation_type"] as? String {
                (field, label) = ("relation_type", top)
            } else if let relations = object["relation"] as? [[String: Any]], let first = relations.first?["relation_type"] as? String {
                (field, label) = ("relation[0].relation_type", first)
            } else {
                throw EvaluationError.missingField(file: file, location: at, field: "relation_type",
                                                   expected: "a string (top level or in relation[0])")
            }
            let gold: Int
            switch label.lowercased() {
            case "positive", "1": gold = 0
            case "negative", "0": gold = 1
            default:
                throw EvaluationError.unknownLabel(file: file, location: at, field: field, label: label, allowed: ["positive", "negative"])
            }
            let id = (object["id"] as? String) ?? at
            items.append(LabelItem(id: id, input: "Sentence: \(text)", labels: gadLabels, gold: gold))
        }
        return items
    }

    // MARK: IOB NER

    static func iob(_ data: Data, file: String) throws -> [NERSentence] {
        var sentences: [NERSentence] = []
        var tokens: [String] = [], tags: [(String, Int)] = [], firstLine = 0
        func flush() {
            guard !tokens.isEmpty else { return }
            sentences.append(NERSentence(id: "line \(firstLine)", tokens: tokens, entities: spans(tags.map(\.0))))
            tokens = []
            tags = []
        }
        for (n, raw) in lines(data).enumerated() {
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : raw
            if line.allSatisfy(\.isWhitespace) { flush(); continue }
            if line.hasPrefix("-DOCSTART-") { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 2, !fields[0].isEmpty else {
                throw EvaluationError.wrongFormat(file: file, task: "ner (IOB token<TAB>tag)", location: "line \(n + 1)",
                                                  reason: "expected token<TAB>tag")
            }
            let tag = fields[fields.count - 1].trimmingCharacters(in: .whitespaces)
            guard tag == "O" || ((tag.hasPrefix("B-") || tag.hasPrefix("I-")) && tag.count > 2) else {
                throw EvaluationError.unknownLabel(file: file, location: "line \(n + 1)", field: "tag", label: tag,
                                                   allowed: ["O", "B-<type>", "I-<type>"])
            }
            if tokens.isEmpty { firstLine = n + 1 }
            tokens.append(String(fields[0]))
            tags.append((tag, n + 1))
        }
        flush()
        return sentences
    }

    /// Entity spans of an IOB tag sequence. An `I-X` that does not continue an `X` entity starts
    /// one (the conlleval convention).
    public static func spans(_ tags: [String]) -> [EntitySpan] {
        var out: [EntitySpan] = []
        var open: EntitySpan?
        for (i, tag) in tags.enumerated() {
            let type = tag.count > 2 ? String(tag.dropFirst(2)) : ""
            if tag.hasPrefix("I-"), var o = open, o.type == type {
                o.end = i + 1
                open = o
                continue
            }
            if let o = open { out.append(o) }
            open = tag == "O" ? nil : EntitySpan(start: i, end: i + 1, type: type)
        }
        if let o = open { out.append(o) }
        return out
    }

    /// Lines of a UTF-8 file (a final newline gives no extra line).
    static func lines(_ data: Data) -> [String] {
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
