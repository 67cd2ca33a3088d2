import Foundation

/// Reads the four benchmark layouts (`corpora/eval`, see its SOURCES.md): once per format into
/// records, which `load` turns into `TaskDataset`s and Generator's seed sampler into seeds.
///
/// | task | layout |
/// | --- | --- |
/// | `pubmedqa` | one JSON object keyed by PMID: `{QUESTION, CONTEXTS[], final_decision, LONG_ANSWER?}` |
/// | `mcq` | `{id: {question, options{A..}, answer}}` (optionally wrapped `{"medmcqa": {…}}`), a JSON list, or JSONL |
/// | `ner` | IOB `token<TAB>tag` lines, a blank line between sentences |
/// | `gad` | JSONL `{text, relation_type}` or `{text, relation: [{relation_type}]}`, positive/negative |
///
/// Records keyed by id are read in sorted key order, so a run does not depend on the JSON
/// parser's dictionary order. Every reader throws `EvaluationError` naming the file, the record
/// or line, and the field.
public enum EvalDataLoader {
    /// Reads `path` as `task`.
    /// - Throws: `EvaluationError` naming the file, the record or line, and the field.
    public static func load(task: EvalTask, path: String) throws -> TaskDataset {
        let data = try contents(of: path)
        let items: TaskDataset.Items
        switch task {
        case .pubmedqa:
            items = .labels(try pubmedQA(data, file: path).map {
                LabelItem(id: $0.pmid, input: "Context: \($0.contexts.joined(separator: " "))\nQuestion: \($0.question)",
                          labels: pubmedQALabels, gold: $0.decision)
            })
        case .mcq:
            items = .labels(try multipleChoice(data, file: path).map { r in
                LabelItem(id: r.id, input: "Question: \(r.question)\n" + r.listedOptions, labels: r.letters, gold: r.answer, options: r.options)
            })
        case .gad: items = .labels(try gad(data, file: path))
        case .ner: items = .sentences(try iob(data, file: path))
        }
        let dataset = TaskDataset(task: task, file: path, items: items)
        if dataset.count == 0 { throw EvaluationError.emptyFile(file: path, task: task.rawValue) }
        return dataset
    }

    /// The bytes of a benchmark file.
    /// - Throws: `EvaluationError.unreadable`.
    public static func contents(of path: String) throws -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw EvaluationError.unreadable(file: path, reason: (error as NSError).localizedDescription)
        }
    }

    /// A NER folder (BLURB's layout) means its `split` file (`train.tsv`, `devel.tsv`, `test.tsv`);
    /// any other path means itself.
    public static func resolve(_ path: String, task: EvalTask, split: String) -> String {
        var isDir: ObjCBool = false
        if task == .ner, FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            return (path as NSString).appendingPathComponent(split)
        }
        return path
    }

    // MARK: PubMedQA

    /// Labels of PubMedQA, in the order options are scored.
    public static let pubmedQALabels = ["yes", "no", "maybe"]

    /// The records of a PubMedQA file, in PMID order.
    public static func pubmedQA(_ data: Data, file: String) throws -> [PubMedQARecord] {
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
            let labels = item["LABELS"] as? [String] ?? []
            return PubMedQARecord(pmid: pmid, question: question, contexts: contexts,
                                  sectionLabels: labels.count == contexts.count ? labels : [], decision: gold,
                                  longAnswer: item["LONG_ANSWER"] as? String)
        }
    }

    // MARK: Multiple choice

    /// The records of a multiple-choice file in any of its three layouts.
    public static func multipleChoice(_ data: Data, file: String) throws -> [MultipleChoiceRecord] {
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

    static func mcqItem(_ record: Any, at: String, file: String) throws -> MultipleChoiceRecord {
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
        return MultipleChoiceRecord(id: id, question: question, letters: letters, options: options.map(\.1), answer: gold)
    }

    // MARK: GAD

    /// Labels of GAD as the model answers: "yes" (positive, index 0) or "no" (negative).
    public static let gadLabels = ["yes", "no"]

    /// The items of a GAD file (input `Sentence: …`, gold 0 for a positive relation), in file order.
    public static func gad(_ data: Data, file: String) throws -> [LabelItem] {
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

    /// The sentences of an IOB file, in file order (`-DOCSTART-` lines skipped).
    public static func iob(_ data: Data, file: String) throws -> [NERSentence] {
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
