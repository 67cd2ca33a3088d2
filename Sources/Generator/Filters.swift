import Foundation

// MARK: - Reasons

/// Why a brainstormed instruction or a response was dropped; each is counted in the stats.
public enum FilterReason: String, Codable, Sendable, CaseIterable, Comparable {
    // Stage 1: instructions
    case unparseable, tooShort = "too_short", tooLong = "too_long", banned
    case duplicate, nearDuplicate = "near_duplicate", similar = "rouge_l"
    /// An instruction that speaks as a chat assistant ("I'm ready to assist you") instead of setting a task.
    case assistantTalk = "assistant_talk"
    /// An instruction about "the passage", "the abstract"… with no input that holds it.
    case missingInput = "missing_input"
    /// An instruction that copies the brainstorm prompt's own requirements ("write a realistic,
    /// self-contained input…").
    case copiesPrompt = "copies_prompt"
    // Stage 2: responses
    case emptyResponse = "empty_response", repetition, truncated, copiesPassage = "copies_passage", refusal
    /// The response repeats the prompt's framing ("You are a helpful AI assistant…") or restates the
    /// instruction or input instead of answering.
    case echo = "echoes_prompt"
    /// The response reproduces a seed demonstration's answer or input from the prompt under an
    /// unrelated task (a stock answer).
    case copiesDemonstration = "copies_demonstration"
    case backendError = "backend_error", contaminated

    public static func < (a: FilterReason, b: FilterReason) -> Bool { a.rawValue < b.rawValue }
}

// MARK: - Instructions

/// The self-instruct filters for brainstormed instructions, in order: length, banned content,
/// assistant talk, a copy of the brainstorm prompt's requirements, a reference to a missing input, exact and near
/// duplicates, ROUGE-L against every seed and kept instruction.
public struct InstructionFilter: Sendable {
    /// Words in an instruction: self-instruct keeps 4...150.
    public var instructionWords = 4...150
    /// Words in an input.
    public var maxInputWords = 400
    /// ROUGE-L F-measure at or above which an instruction is "not new" (self-instruct: 0.7).
    public var rougeThreshold = 0.7

    /// Whole words (or phrases) that mark tasks a text model cannot do: self-instruct's list
    /// plus links and attachments.
    public static let bannedWords: [String] = [
        "image", "images", "graph", "graphs", "picture", "pictures", "photo", "photos", "file", "files",
        "map", "maps", "draw", "plot", "plots", "go to", "video", "videos", "audio", "music", "flowchart", "flowcharts",
        "diagram", "diagrams", "chart", "charts", "figure", "url", "link", "links", "website", "attached", "attachment",
    ]

    private var rouge = RougeLIndex()
    private var exact = Set<String>()
    private var near = Set<String>()

    /// - Parameter seeds: instructions the new ones must differ from.
    public init(seeds: [String] = []) {
        for s in seeds { remember(InstructionCandidate(instruction: s, input: "")) }
    }

    /// Number of instructions (seeds and kept) compared against.
    public var pool: Int { rouge.count }
    public var comparisons: (exact: Int, pruned: Int) { (rouge.exactComparisons, rouge.prunedComparisons) }

    /// Checks `c`; when it passes, it is remembered so later ones must differ from it.
    /// - Returns: nil and the best ROUGE-L if kept, else the reason (the score is 0 when ROUGE-L was not reached).
    public mutating func check(_ c: InstructionCandidate) -> (reason: FilterReason?, rougeL: Double) {
        let words = RougeVocabulary.words(c.instruction).count
        if words < instructionWords.lowerBound { return (.tooShort, 0) }
        if words > instructionWords.upperBound || RougeVocabulary.words(c.input).count > maxInputWords { return (.tooLong, 0) }
        if InstructionFilter.isBanned(c.instruction) || InstructionFilter.hasLink(c.instruction + " " + c.input) { return (.banned, 0) }
        if let f = c.instruction.unicodeScalars.first, !(f.properties.isAlphabetic || f == "\"" || f == "'") { return (.banned, 0) }
        if InstructionFilter.isAssistantTalk(c.instruction) { return (.assistantTalk, 0) }
        if InstructionFilter.echoesBrainstormPrompt(c.instruction + " " + c.input) { return (.copiesPrompt, 0) }
        if InstructionFilter.needsMissingInput(c) { return (.missingInput, 0) }
        if exact.contains(InstructionFilter.exactKey(c)) { return (.duplicate, 0) }
        if near.contains(InstructionFilter.nearKey(c)) { return (.nearDuplicate, 0) }
        let best = rouge.maxScore(c.instruction).score
        if best >= rougeThreshold { return (.similar, best) }
        remember(c)
        return (nil, best)
    }

    /// Adds `c` to the pool without checking it: a seed, or an instruction an earlier round kept.
    public mutating func remember(_ c: InstructionCandidate) {
        rouge.add(c.instruction)
        exact.insert(InstructionFilter.exactKey(c))
        near.insert(InstructionFilter.nearKey(c))
    }

    static func isBanned(_ text: String) -> Bool {
        if RougeVocabulary.words(text).joined(separator: " ").hasPrefix("write a program") { return true }
        return containsPhrase(text, of: bannedWords)
    }

    /// Whether the words of `text` (lowercased, as ROUGE-L splits them) contain one of `phrases`
    /// as whole words.
    static func containsPhrase(_ text: String, of phrases: [String]) -> Bool {
        let words = " " + RougeVocabulary.words(text).joined(separator: " ") + " "
        return phrases.contains { words.contains(" \($0) ") }
    }

    /// Phrases of a chat assistant talking to its user, not of a task (lowercased words). First
    /// person or addressed to the assistant, so "Which devices can help you with…" stays a task.
    public static let assistantPhrases = [
        "ai assistant", "as an ai", "as a language model", "i am a language model", "smollm", "i m ready", "i am ready",
        "you re ready", "how can i help", "how can i assist", "how may i help", "how may i assist", "i m here to",
        "i am here to", "i can help you", "i can assist you", "happy to help", "glad to help", "let me help",
        "what task would you like", "what would you like me to",
    ]

    static func isAssistantTalk(_ text: String) -> Bool { containsPhrase(text, of: assistantPhrases) }

    /// Phrases of the brainstorm prompt's own requirements (``BrainstormPrompt``), which a small
    /// model copies into the task it writes.
    public static let promptPhrases = [
        "new diverse tasks", "come up with new", "come up with tasks", "come up with 4", "vary the task types",
        "vary the wording", "self contained input", "answerable in text", "stay in the biomedical domain",
        "train an assistant", "noinput", "writing tasks", "one or two sentences in english", "mix imperatives and questions",
    ]

    static func echoesBrainstormPrompt(_ text: String) -> Bool { containsPhrase(text, of: promptPhrases) }

    /// Texts an instruction may point to ("the passage"); without an input there is nothing to read.
    public static let referencedTexts: Set<String> = [
        "passage", "passages", "abstract", "text", "article", "sentence", "sentences", "paragraph", "excerpt", "document",
    ]
    /// Words that often name a text but also a thing in general ("the study designs", "the input of
    /// a BLAST search"): they count only after "this", "these", "following", "given", "above", "below".
    public static let referencedTextsStrict: Set<String> = ["study", "report", "table", "input", "trial"]

    /// Whether the instruction is about "the passage", "this abstract", "the following text"… and
    /// the input is empty, so the task cannot be done from the example alone. Not when the text
    /// follows in the instruction itself (8 or more words after a colon), nor for "the abstract
    /// of a…" (a kind of text, not a given one).
    static func needsMissingInput(_ c: InstructionCandidate) -> Bool {
        guard RougeVocabulary.words(c.input).isEmpty else { return false }
        if let colon = c.instruction.firstIndex(of: ":"), RougeVocabulary.words(String(c.instruction[colon...])).count >= 8 { return false }
        let w = RougeVocabulary.words(c.instruction)
        let pointing: Set<String> = ["this", "these", "following", "given", "above", "below"]
        for i in w.indices.dropFirst() {
            let before = w[i - 1], next = i + 1 < w.count ? w[i + 1] : ""
            if next == "of" { continue }
            if referencedTexts.contains(w[i]) && (before == "the" || pointing.contains(before)) { return true }
            if referencedTextsStrict.contains(w[i]) && pointing.contains(before) { return true }
        }
        return false
    }

    static func hasLink(_ text: String) -> Bool {
        let t = text.lowercased()
        return t.contains("http://") || t.contains("https://") || t.contains("www.")
    }

    /// Case and whitespace folded.
    static func exactKey(_ c: InstructionCandidate) -> String {
        (c.instruction + "\u{1}" + c.input).lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// Words only, without digits, articles and punctuation: "List 3 drugs." ≈ "list the drugs".
    static func nearKey(_ c: InstructionCandidate) -> String {
        let drop: Set<String> = ["a", "an", "the"]
        func key(_ s: String) -> String {
            RougeVocabulary.words(s).filter { !drop.contains($0) && !$0.allSatisfy(\.isNumber) }.joined(separator: " ")
        }
        return key(c.instruction) + "\u{1}" + key(c.input)
    }
}

// MARK: - Responses

/// Checks on a generated response, in order: backend error, empty, truncated at the token limit,
/// refusal, echo of the prompt, degenerate repetition, copy of a retrieved passage, copy of a
/// demonstration.
public struct ResponseFilter: Sendable {
    /// A response of at least this many words whose LCS with one passage covers `copyFraction` (0.8)
    /// of its words is a copy, not an answer.
    public var copyMinWords = 20
    public var copyFraction = 0.8
    /// Repetition: fewer than this fraction of distinct 4-grams among at least 16 of them, or
    /// one line repeated 3 or more times.
    public var minDistinctNgramFraction = 0.5

    public static let refusalPhrases = [
        "i'm sorry", "i am sorry", "i cannot", "i can't", "i can not", "i am unable", "i'm unable",
        "as an ai", "as a language model", "i am not able", "i'm not able", "i do not have access",
        "i don't have access", "cannot provide", "unable to provide",
    ]

    public init() {}

    /// A response of at least this many words, half of whose words lie in 5-word spans of a
    /// demonstration (its answer or input) that the task does not share, is that stock text, not an
    /// answer; demonstrations whose subject the task shares (a word of 5 or more letters outside
    /// ``ResponseFilter/commonWords``) do not count, so a right answer about the same drug stays.
    public var demonstrationMinWords = 6
    public var demonstrationCoverage = 0.5

    /// - Parameters:
    ///   - passages: the texts of the passages in the prompt (a response copying one is dropped);
    ///   - task: the instruction and input asked for (a response that only restates them is an echo);
    ///   - demonstrations: the seed demonstrations in the prompt (a response reproducing one's
    ///     answer or input under an unrelated task is dropped).
    public func check(_ c: Completion, passages: [String], task: [String] = [], demonstrations: [Seed] = []) -> FilterReason? {
        if c.error != nil { return .backendError }
        let text = c.text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty || RougeVocabulary.words(text).isEmpty { return .emptyResponse }
        if c.finishReason == .length { return .truncated }
        if c.finishReason == .repetition { return .repetition }
        if isRefusal(text) { return .refusal }
        if isEcho(text) || restates(text, task) { return .echo }
        if isRepetitive(text) { return .repetition }
        if copies(text, passages: passages) { return .copiesPassage }
        if copies(text, demonstrations: demonstrations, task: task) { return .copiesDemonstration }
        return nil
    }

    public func isRefusal(_ text: String) -> Bool {
        let head = String(text.lowercased().replacingOccurrences(of: "’", with: "'").prefix(120))
        return ResponseFilter.refusalPhrases.contains { head.contains($0) }
    }

    /// Phrases of system prompts and of our own prompt headers.
    public static let echoPhrases = ["you are a helpful", "you are a biomedical expert", "ai assistant named", "### instruction", "come up with"]

    public func isEcho(_ text: String) -> Bool {
        let head = String(text.lowercased().prefix(200))
        return ResponseFilter.echoPhrases.contains { head.contains($0) }
    }

    /// Whether `text` restates the task instead of answering it (a model that repeats the question):
    /// its words are exactly the instruction's or the instruction and input's; or, for an
    /// instruction that is not a question, a common subsequence covers 80% of both its words and
    /// the instruction's ("Summarise the trial." → "The trial is summarised."); or, with 8 or more
    /// input words, it reproduces the input (an LCS of 90% of its words and of the input's) when the
    /// task is not an editing one (rewrite, correct, tag…), whose answer rightly repeats the input.
    /// A yes/no question answered by a statement ("Is metformin contraindicated in…?" →
    /// "Metformin is contraindicated in…") is an answer, so questions only match exactly.
    public func restates(_ text: String, _ task: [String]) -> Bool {
        let words = RougeVocabulary.words(text)
        guard !words.isEmpty, !task.isEmpty else { return false }
        let instruction = RougeVocabulary.words(task[0])
        let whole = RougeVocabulary.words(task.joined(separator: " "))
        if words == instruction || words == whole { return true }
        guard words.count >= 4 else { return false }
        var v = RougeVocabulary()
        let r = v.encode(text)
        let pattern = LCSPattern(r)
        if !task[0].contains("?") {
            let common = Double(pattern.lcs(with: v.lookup(task[0])))
            if common >= 0.8 * Double(r.count) && common >= 0.8 * Double(instruction.count) { return true }
        }
        let editing = !Set(instruction).isDisjoint(with: ResponseFilter.editingVerbs)
        for input in task.dropFirst() where !editing {
            let n = RougeVocabulary.words(input).count
            guard n >= 8 else { continue }
            let common = Double(pattern.lcs(with: v.lookup(input)))
            if common >= 0.9 * Double(r.count) && common >= 0.9 * Double(n) { return true }
        }
        return false
    }

    /// Verbs of tasks whose answer is the input, edited.
    public static let editingVerbs: Set<String> = [
        "rewrite", "rephrase", "paraphrase", "correct", "fix", "edit", "tag", "mark", "annotate", "highlight",
        "anonymise", "anonymize", "deidentify", "redact", "convert", "format", "reformat", "punctuate", "bracket", "brackets",
        "enclose", "wrap", "insert", "capitalise", "capitalize", "underline",
    ]

    /// Instruction words too common to say two tasks share a subject.
    public static let commonWords: Set<String> = [
        "about", "above", "after", "answer", "based", "below", "between", "brief", "classify", "clinical", "describe",
        "disease", "diseases", "drugs", "explain", "extract", "following", "given", "input", "instruction", "label",
        "mentioned", "passage", "patient", "patients", "question", "reason", "relation", "sentence", "sentences",
        "short", "single", "state", "statement", "study", "summarise", "summarize", "their", "there", "these", "think",
        "those", "treatment", "trial", "which", "whether", "write",
    ]

    /// Whether `demonstrationCoverage` of the words of `text` (at least `demonstrationMinWords`)
    /// lie in 5-word spans of one demonstration's answer or input that the task (instruction and
    /// input) does not contain, for a demonstration whose subject the task does not share. Spans,
    /// not a common subsequence, so a stock answer the model repeats twice is still caught.
    public func copies(_ text: String, demonstrations: [Seed], task: [String] = []) -> Bool {
        let words = RougeVocabulary.words(text)
        let n = 5
        guard words.count >= max(demonstrationMinWords, n), !demonstrations.isEmpty else { return false }
        func spanList(_ w: [String]) -> [String] {
            w.count < n ? [] : (0...(w.count - n)).map { w[$0..<($0 + n)].joined(separator: " ") }
        }
        func spans(_ w: [String]) -> Set<String> { Set(spanList(w)) }
        func subject(_ w: [String]) -> Set<String> {
            Set(w.filter { $0.count >= 5 && !ResponseFilter.commonWords.contains($0) && !$0.allSatisfy(\.isNumber) })
        }
        let taskWords = RougeVocabulary.words(task.joined(separator: " "))
        let taskSpans = spans(taskWords), taskSubject = subject(taskWords)
        let own = spanList(words)  // the response's spans, position i starting at word i
        return demonstrations.contains { d in
            let demo = RougeVocabulary.words(d.instruction + " " + d.input)
            if !subject(demo).isDisjoint(with: taskSubject) { return false }
            let reference = spans(RougeVocabulary.words(d.output)).union(spans(RougeVocabulary.words(d.input))).subtracting(taskSpans)
            guard !reference.isEmpty else { return false }
            var covered = [Bool](repeating: false, count: words.count)
            for (i, span) in own.enumerated() where reference.contains(span) {
                for j in i..<(i + n) { covered[j] = true }
            }
            return Double(covered.filter { $0 }.count) >= demonstrationCoverage * Double(words.count)
        }
    }

    public func isRepetitive(_ text: String) -> Bool {
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.count > 10 }
        var seen: [String: Int] = [:]
        for l in lines { seen[l, default: 0] += 1; if seen[l]! >= 3 { return true } }
        let w = RougeVocabulary.words(text)
        guard w.count >= 19 else { return false }
        var grams = Set<String>()
        for i in 0...(w.count - 4) { grams.insert(w[i..<(i + 4)].joined(separator: " ")) }
        return Double(grams.count) / Double(w.count - 3) < minDistinctNgramFraction
    }

    public func copies(_ text: String, passages: [String]) -> Bool {
        var v = RougeVocabulary()
        let r = v.encode(text)
        guard r.count >= copyMinWords else { return false }
        let pattern = LCSPattern(r)
        return passages.contains { p in
            Double(pattern.lcs(with: v.lookup(p))) >= copyFraction * Double(r.count)
        }
    }
}
