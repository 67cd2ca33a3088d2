import Foundation

// MARK: - Parsing

/// One brainstormed task before filtering.
public struct InstructionCandidate: Sendable, Equatable, Codable {
    public var instruction: String
    /// Empty when the model gave none (or wrote "<noinput>", "None", "N/A").
    public var input: String

    public init(instruction: String, input: String) { self.instruction = instruction; self.input = input }
}

/// Turns a model's free-form brainstorm into (instruction, input) pairs. Understands
/// `Instruction:` / `Input:` blocks (optionally headed by `Task 4`, numbered, or bulleted),
/// plain numbered or bulleted lists of instructions, and ignores `Output:` sections, headings
/// and other chatter.
public enum BrainstormParser {
    public struct Result: Sendable, Equatable {
        public var candidates: [InstructionCandidate]
        /// Non-empty blocks that held no usable instruction.
        public var unparseable: Int
    }

    static let noInput: Set<String> = ["", "<noinput>", "<no input>", "none", "n/a", "na", "-", "no input", "(none)", "null", "empty"]
    /// The same, by words, so "<noinput>." or "(No input)" count too.
    static let noInputWords: Set<[String]> = [["noinput"], ["no", "input"], ["none"], ["n", "a"]]

    public static func parse(_ text: String) -> Result {
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
        if lines.contains(where: { label(of: $0)?.0 == .instruction }) { return parseBlocks(lines) }
        return parseList(lines)
    }

    enum Label { case instruction, input, output, task }

    /// The field label a line starts with (after numbering and markdown), and the rest of the line.
    static func label(of raw: String) -> (Label, String)? {
        var s = Substring(stripMarkers(raw))
        s = s.drop { $0 == "*" || $0 == "#" || $0 == " " }
        let lower = s.lowercased()
        let table: [(String, Label)] = [("instruction", .instruction), ("input", .input), ("output", .output),
                                        ("response", .output), ("answer", .output), ("task", .task)]
        for (word, l) in table where lower.hasPrefix(word) {
            var rest = s.dropFirst(word.count)
            if l == .task {
                // "Task 4", "Task 4:", "Task:" — a header; any text after a colon is the instruction.
                rest = rest.drop { $0.isNumber || $0 == " " }
                if rest.isEmpty { return (.task, "") }
                if rest.first == ":" { return (.instruction, clean(String(rest.dropFirst()))) }
                return nil
            }
            rest = rest.drop { $0 == " " || $0 == "*" }
            if rest.first == ":" { return (l, clean(String(rest.dropFirst()))) }
        }
        return nil
    }

    static func parseBlocks(_ lines: [String]) -> Result {
        var out: [InstructionCandidate] = []
        var unparseable = 0
        var instruction: [String]? = nil, input: [String]? = nil
        var current: Label? = nil
        func flush() {
            if let ins = instruction {
                // "Instruction: Task 4: Name …" (the header copied into the field) counts as "Name …".
                let i = clean(stripTaskHeader(clean(ins.joined(separator: " "))))
                var x = input.map { clean($0.joined(separator: "\n")) } ?? ""
                if noInput.contains(x.lowercased()) || noInputWords.contains(RougeVocabulary.words(x)) { x = "" }
                if i.isEmpty { unparseable += 1 } else { out.append(InstructionCandidate(instruction: i, input: x)) }
            }
            instruction = nil; input = nil; current = nil
        }
        for line in lines {
            if let (l, rest) = label(of: line) {
                switch l {
                case .task: flush()
                case .instruction: flush(); instruction = rest.isEmpty ? [] : [rest]; current = .instruction
                case .input: if instruction != nil { input = rest.isEmpty ? [] : [rest]; current = .input } else { unparseable += 1 }
                case .output: current = .output
                }
                continue
            }
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { if current == .instruction { current = nil }; continue }
            // "Task 6 Define …" without a colon still starts a new task.
            let marked = stripMarkers(t), headed = stripTaskHeader(marked)
            if headed != marked, !headed.isEmpty {
                flush(); instruction = [headed]; current = .instruction
                continue
            }
            switch current {
            case .instruction?: instruction?.append(t)
            case .input?: input?.append(t)
            default: break   // output text or chatter between blocks
            }
        }
        flush()
        return Result(candidates: out, unparseable: unparseable)
    }

    /// A numbered or bulleted list, one instruction per item; other lines are junk.
    static func parseList(_ lines: [String]) -> Result {
        var out: [InstructionCandidate] = []
        var unparseable = 0
        for line in lines {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            let stripped = stripTaskHeader(stripMarkers(t))
            if stripped.count < t.count, !stripped.isEmpty {
                out.append(InstructionCandidate(instruction: clean(stripped), input: ""))
            } else {
                unparseable += 1
            }
        }
        return Result(candidates: out, unparseable: unparseable)
    }

    /// Drops a leading "12.", "12)", "(3)", "-", "*", "•" list marker.
    static func stripMarkers(_ s: String) -> String {
        var t = Substring(s.trimmingCharacters(in: .whitespaces))
        if let f = t.first, "-*•".contains(f), t.dropFirst().first == " " { return t.dropFirst(2).trimmingCharacters(in: .whitespaces) }
        var u = t
        if u.first == "(" { u = u.dropFirst() }
        let digits = u.prefix { $0.isNumber }
        if !digits.isEmpty, digits.count <= 3 {
            u = u.dropFirst(digits.count)
            if let f = u.first, ".):".contains(f) { t = u.dropFirst() ; return t.trimmingCharacters(in: .whitespaces) }
        }
        return String(t)
    }

    /// Drops a leading "Task 4", "Task 4:", "Task 4." or "Task:" that models copy from the
    /// prompt ("Tasks", "Task force" and "Task-based" stay).
    static func stripTaskHeader(_ s: String) -> String {
        guard s.lowercased().hasPrefix("task") else { return s }
        var rest = s.dropFirst(4).drop { $0 == " " }
        let digits = rest.prefix { $0.isNumber }
        rest = rest.dropFirst(digits.count)
        if digits.isEmpty {
            guard rest.first == ":" else { return s }
            rest = rest.dropFirst()
        } else if let f = rest.first, ".:)-".contains(f) {
            rest = rest.dropFirst()
        } else if let f = rest.first, f != " " {
            return s   // "Task4x"
        }
        return rest.trimmingCharacters(in: .whitespaces)
    }

    static func clean(_ s: String) -> String {
        var t = s.trimmingCharacters(in: .whitespacesAndNewlines)
        while t.hasPrefix("**") || t.hasSuffix("**") {
            if t.hasPrefix("**") { t.removeFirst(2) }
            if t.hasSuffix("**") { t.removeLast(2) }
            t = t.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if t.count >= 2, t.first == "\"", t.last == "\"" { t = String(t.dropFirst().dropLast()) }
        return t
    }
}
