// ROUGE-L F-measure (Lin 2004) as Google's `rouge_score` computes it without stemming — the
// scorer self-instruct uses for its 0.7 novelty filter:
//   tokens = lowercase, every run of characters outside [a-z0-9] is a separator;
//   P = LCS / |candidate|, R = LCS / |reference|, F = 2PR / (P + R) = 2·LCS / (|c| + |r|); 0 if either is empty.
//
// Hot path: the brainstorm filter compares each new instruction against every kept one. Texts are
// tokenized once into Int32 ids; a new text is scored with a bit-parallel LCS
// (Crochemore et al. 2001: V' = (V + (V & M)) | (V & ~M), LCS = zeros of V) only against texts
// whose bag-of-words bound 2·Σ_t min(c_t, r_t) / (|c| + |r|) could still beat the best score so far.

// MARK: - Tokens

/// Maps words to small integer ids, shared by every text of one index.
public struct RougeVocabulary: Sendable {
    private var ids: [String: Int32] = [:]

    public init() {}

    public var count: Int { ids.count }

    /// The ids of `text`'s tokens, adding new words to the vocabulary.
    public mutating func encode(_ text: String) -> [Int32] {
        RougeVocabulary.words(text).map { w in
            if let id = ids[w] { return id }
            let id = Int32(ids.count)
            ids[w] = id
            return id
        }
    }

    /// The ids of `text`'s tokens; words never seen get -1 (they match nothing).
    public func lookup(_ text: String) -> [Int32] {
        RougeVocabulary.words(text).map { ids[$0] ?? -1 }
    }

    /// `rouge_score`'s default tokenizer: ASCII-lowercase, split on anything outside [a-z0-9].
    public static func words(_ text: String) -> [String] {
        var out: [String] = []
        var current: [UInt8] = []
        for var b in text.utf8 {
            if b >= 65 && b <= 90 { b += 32 }
            if (b >= 97 && b <= 122) || (b >= 48 && b <= 57) { current.append(b) }
            else if !current.isEmpty { out.append(String(decoding: current, as: UTF8.self)); current.removeAll(keepingCapacity: true) }
        }
        if !current.isEmpty { out.append(String(decoding: current, as: UTF8.self)) }
        return out
    }
}

// MARK: - LCS

public enum RougeL {
    /// ROUGE-L F-measure of two texts.
    public static func score(_ candidate: String, _ reference: String) -> Double {
        var v = RougeVocabulary()
        let a = v.encode(candidate), b = v.encode(reference)
        return fMeasure(lcs: lcs(a, b), a.count, b.count)
    }

    /// 2·LCS / (m + n), 0 when either length is 0.
    @inline(__always)
    public static func fMeasure(lcs: Int, _ m: Int, _ n: Int) -> Double {
        m == 0 || n == 0 ? 0 : 2 * Double(lcs) / Double(m + n)
    }

    /// Length of the longest common subsequence, by the O(m·n) dynamic programme over one row.
    /// Kept as the reference the bit-parallel version is tested against.
    public static func lcsDP(_ a: [Int32], _ b: [Int32]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        var row = [Int32](repeating: 0, count: b.count + 1)   // (n + 1)
        for x in a {
            var diagonal: Int32 = 0
            for j in 0..<b.count {
                let up = row[j + 1]
                row[j + 1] = x == b[j] ? diagonal + 1 : max(up, row[j])
                diagonal = up
            }
        }
        return Int(row[b.count])
    }

    /// Length of the longest common subsequence, bit-parallel over the shorter sequence.
    public static func lcs(_ a: [Int32], _ b: [Int32]) -> Int {
        let (p, t) = a.count <= b.count ? (a, b) : (b, a)
        if p.isEmpty { return 0 }
        let matcher = LCSPattern(p)
        return matcher.lcs(with: t)
    }
}

/// A pattern prepared for repeated bit-parallel LCS against many texts: one bit mask of pattern
/// positions per distinct symbol, W = ⌈m / 64⌉ words each.
struct LCSPattern {
    let length: Int
    let words: Int
    /// symbol id → index into `masks` (in units of `words`).
    let slot: [Int32: Int]
    /// (distinct symbols, W)
    let masks: [UInt64]

    init(_ pattern: [Int32]) {
        length = pattern.count
        words = (pattern.count + 63) / 64
        var slot: [Int32: Int] = [:]
        var masks: [UInt64] = []
        for (i, s) in pattern.enumerated() where s >= 0 {
            let k: Int
            if let existing = slot[s] { k = existing } else {
                k = slot.count; slot[s] = k
                masks.append(contentsOf: repeatElement(0, count: words))
            }
            masks[k * words + i / 64] |= 1 << UInt64(i % 64)
        }
        self.slot = slot
        self.masks = masks
    }

    func lcs(with text: [Int32]) -> Int {
        if words == 1 { return lcsOneWord(text) }
        var v = [UInt64](repeating: ~0, count: words)   // (W)
        masks.withUnsafeBufferPointer { m in
            v.withUnsafeMutableBufferPointer { v in
                for s in text {
                    guard let k = slot[s] else { continue }
                    let base = k * words
                    var carry: UInt64 = 0
                    for w in 0..<words {
                        let mw = m[base + w], vw = v[w]
                        let u = vw & mw
                        let (s1, o1) = vw.addingReportingOverflow(u)
                        let (s2, o2) = s1.addingReportingOverflow(carry)
                        carry = (o1 || o2) ? 1 : 0
                        v[w] = s2 | (vw & ~mw)
                    }
                }
            }
        }
        var zeros = 0
        for w in 0..<words {
            let bits = w == words - 1 && length % 64 != 0 ? length % 64 : 64
            let mask: UInt64 = bits == 64 ? ~0 : (1 << UInt64(bits)) - 1
            zeros += bits - (v[w] & mask).nonzeroBitCount
        }
        return zeros
    }

    private func lcsOneWord(_ text: [Int32]) -> Int {
        var v: UInt64 = ~0
        for s in text {
            guard let k = slot[s] else { continue }
            let m = masks[k]
            v = (v &+ (v & m)) | (v & ~m)
        }
        let mask: UInt64 = length == 64 ? ~0 : (1 << UInt64(length)) - 1
        return length - (v & mask).nonzeroBitCount
    }
}

// MARK: - Index

/// The texts kept so far, for "is this new text too similar to any of them?" queries.
public struct RougeLIndex: Sendable {
    public private(set) var vocabulary = RougeVocabulary()
    /// Token ids of each kept text.
    private var texts: [[Int32]] = []
    /// token id → (text index, count in that text)
    private var postings: [[(text: Int32, count: Int32)]] = []

    /// Pairs whose exact LCS was computed, and pairs rejected by the bounds alone (for benchmarks).
    public private(set) var exactComparisons = 0
    public private(set) var prunedComparisons = 0

    public init() {}

    public var count: Int { texts.count }

    /// Adds a text that later queries are compared against.
    public mutating func add(_ text: String) {
        let ids = vocabulary.encode(text)
        let n = Int32(texts.count)
        texts.append(ids)
        if postings.count < vocabulary.count { postings.append(contentsOf: repeatElement([], count: vocabulary.count - postings.count)) }
        for (id, c) in RougeLIndex.counts(ids) { postings[Int(id)].append((n, c)) }
    }

    /// The highest ROUGE-L F-measure of `text` against any kept text (0 when none), and which.
    /// Exact: every text whose upper bound exceeds the best score so far is scored by LCS.
    public mutating func maxScore(_ text: String) -> (score: Double, index: Int?) {
        let ids = vocabulary.lookup(text)
        let m = ids.count
        if m == 0 || texts.isEmpty { return (0, nil) }
        // Bag-of-words overlap with every text sharing at least one word.
        var overlap: [Int32: Int32] = [:]
        for (id, c) in RougeLIndex.counts(ids) where id >= 0 {
            for p in postings[Int(id)] { overlap[p.text, default: 0] += min(c, p.count) }
        }
        var candidates: [(bound: Double, text: Int32)] = overlap.map { text, o in
            (RougeL.fMeasure(lcs: Int(o), m, texts[Int(text)].count), text)
        }
        prunedComparisons += texts.count - candidates.count
        candidates.sort { $0.bound != $1.bound ? $0.bound > $1.bound : $0.text < $1.text }
        let pattern = LCSPattern(ids)
        var best = 0.0, bestIndex: Int? = nil
        for (i, c) in candidates.enumerated() {
            if c.bound <= best { prunedComparisons += candidates.count - i; break }
            exactComparisons += 1
            let other = texts[Int(c.text)]
            let s = RougeL.fMeasure(lcs: pattern.lcs(with: other), m, other.count)
            if s > best { best = s; bestIndex = Int(c.text) }
        }
        return (best, bestIndex)
    }

    static func counts(_ ids: [Int32]) -> [(Int32, Int32)] {
        var d: [Int32: Int32] = [:]
        for id in ids { d[id, default: 0] += 1 }
        return d.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
