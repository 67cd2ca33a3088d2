import Foundation

// MARK: - Reasons

/// Why a brainstormed instruction or a response was dropped; each is counted in the stats.
public enum FilterReason: String, Codable, Sendable, CaseIterable, Comparable {
    // Stage 1: instructions
    case unparseable, tooShort = "too_short", tooLong = "too_long", banned
    case duplicate, nearDuplicate = "near_duplicate", similar = "rouge_l"
    // Stage 2: responses
    case emptyResponse = "empty_response", repetition, truncated, copiesPassage = "copies_passage", refusal
    /// The response repeats the prompt's framing ("You are a helpful AI assistant…") instead of answering.
    case echo = "echoes_prompt"
    case backendError = "backend_error", contaminated

    public static func < (a: FilterReason, b: FilterReason) -> Bool { a.rawValue < b.rawValue }
}

// MARK: - Instructions

/// The self-instruct filters for brainstormed instructions, in order: length, banned content,
/// exact and near duplicates, ROUGE-L against every seed and kept instruction.
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
        "map", "maps", "draw", "plot", "go to", "video", "videos", "audio", "music", "flowchart",
        "diagram", "diagrams", "chart", "figure", "url", "link", "links", "website", "attached", "attachment",
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
        let words = " " + RougeVocabulary.words(text).joined(separator: " ") + " "
        if words.hasPrefix(" write a program") { return true }
        return bannedWords.contains { words.contains(" \($0) ") }
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
/// refusal, echo of the prompt, degenerate repetition, copy of a retrieved passage.
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

    /// - Parameters:
    ///   - passages: the texts of the passages in the prompt (a response copying one is dropped);
    ///   - task: the instruction and input asked for (a response that only restates them is an echo).
    public func check(_ c: Completion, passages: [String], task: [String] = []) -> FilterReason? {
        if c.error != nil { return .backendError }
        let text = c.text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty || RougeVocabulary.words(text).isEmpty { return .emptyResponse }
        if c.finishReason == .length { return .truncated }
        if isRefusal(text) { return .refusal }
        if isEcho(text) || restates(text, task) { return .echo }
        if isRepetitive(text) { return .repetition }
        if copies(text, passages: passages) { return .copiesPassage }
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

    /// Whether every word of `text` is, in order, the words of the instruction or of the
    /// instruction and input (a model that answers by repeating the question).
    public func restates(_ text: String, _ task: [String]) -> Bool {
        let words = RougeVocabulary.words(text)
        guard !words.isEmpty, !task.isEmpty else { return false }
        let instruction = RougeVocabulary.words(task[0])
        let whole = RougeVocabulary.words(task.joined(separator: " "))
        return words == instruction || words == whole
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
