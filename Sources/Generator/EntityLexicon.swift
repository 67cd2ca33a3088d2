import Evaluation
import Foundation

/// The entity names of one type (e.g. `Chemical`), read from the mentions of a labelled NER file
/// (a train split), and found again as whole tokens in corpus sentences: distant supervision for
/// the entity-shaped mined tasks of ``CorpusTaskMiner``.
///
/// Text is split into tokens the way the BLURB NER files are: runs of letters and digits, and
/// every other non-space character on its own ("5-fluorouracil" is `5 - fluorouracil`).
/// Matching ignores case and is longest-first, left to right, without overlaps.
public struct EntityLexicon: Sendable, Equatable {
    /// The entity type, as the NER file's tags name it (`Chemical`, `Disease`).
    public let type: String
    /// Normalized names: lowercased tokens joined by one space.
    public let names: Set<String>
    /// The names as first written, in order (for drawing distractors).
    public let surfaces: [String]
    /// Every proper token prefix of a name (normalized), so matching stops as soon as none fits.
    let prefixes: Set<String>

    /// A lexicon of `mentions`, skipping names shorter than `minLength` characters (spaces not
    /// counted), names without a letter, and names in `excluded` (normalized).
    public init(type: String, mentions: [String], minLength: Int = 3, excluded: Set<String> = []) {
        var names = Set<String>(), surfaces: [String] = [], prefixes = Set<String>()
        for m in mentions {
            let tokens = Self.tokens(of: m).map { m[$0].lowercased() }
            let key = tokens.joined(separator: " ")
            guard tokens.joined().count >= minLength, key.contains(where: \.isLetter), !excluded.contains(key),
                  names.insert(key).inserted else { continue }
            surfaces.append(m.trimmingCharacters(in: .whitespaces))
            for n in 1..<tokens.count { prefixes.insert(tokens[..<n].joined(separator: " ")) }
        }
        self.type = type
        self.names = names
        self.surfaces = surfaces
        self.prefixes = prefixes
    }

    /// The lexicons of every entity type in a BLURB-style NER file (token TAB IOB tag). A name is
    /// kept only when the file tags most of its occurrences as that type: "can" or "lead" tagged
    /// once among hundreds of untagged uses is left out.
    /// - Throws: `EvaluationError` when the file cannot be read or parsed.
    public static func load(nerFile path: String, minLength: Int = 3) throws -> [EntityLexicon] {
        let sentences = try EvalDataLoader.iob(EvalDataLoader.contents(of: path), file: path)
        var byType: [String: [String]] = [:], order: [String] = []
        for s in sentences {
            for e in s.entities {
                if byType[e.type] == nil { order.append(e.type) }
                byType[e.type, default: []].append(s.tokens[e.start..<e.end].joined(separator: " "))
            }
        }
        return order.map { type in
            let all = EntityLexicon(type: type, mentions: byType[type] ?? [], minLength: minLength)
            var tagged: [String: Int] = [:], seen: [String: Int] = [:]
            for s in sentences {
                let lower = s.tokens.map { $0.lowercased() }
                for e in s.entities where e.type == type { tagged[lower[e.start..<e.end].joined(separator: " "), default: 0] += 1 }
                for r in all.matches(lower) { seen[lower[r].joined(separator: " "), default: 0] += 1 }
            }
            let ambiguous = Set(all.names.filter { 2 * (tagged[$0] ?? 0) < (seen[$0] ?? 0) })
            return EntityLexicon(type: type, mentions: byType[type] ?? [], minLength: minLength, excluded: ambiguous)
        }
    }

    /// One lexicon per type: lexicons of the same type (two disease files) are joined, in order.
    public static func merging(_ lexicons: [EntityLexicon]) -> [EntityLexicon] {
        var order: [String] = [], byType: [String: [String]] = [:]
        for l in lexicons {
            if byType[l.type] == nil { order.append(l.type) }
            byType[l.type, default: []] += l.surfaces
        }
        return order.map { EntityLexicon(type: $0, mentions: byType[$0] ?? [], minLength: 0) }
    }

    /// The lexicon's names found in `text`: longest match first, left to right, no overlaps.
    public func mentions(in text: String) -> [Range<String.Index>] {
        let ranges = Self.tokens(of: text)
        return matches(ranges.map { text[$0].lowercased() }).map { ranges[$0.lowerBound].lowerBound..<ranges[$0.upperBound - 1].upperBound }
    }

    /// Token ranges of `lower` (lowercased tokens) that are names: longest first, left to right.
    func matches(_ lower: [String]) -> [Range<Int>] {
        var out: [Range<Int>] = [], i = 0
        while i < lower.count {
            var key = "", longest = 0, j = i
            while j < lower.count {
                key += (j == i ? "" : " ") + lower[j]
                j += 1
                if names.contains(key) { longest = j - i }
                if !prefixes.contains(key) { break }
            }
            if longest > 0 {
                out.append(i..<(i + longest))
                i += longest
            } else {
                i += 1
            }
        }
        return out
    }

    /// Token ranges of `text`: runs of letters and digits, and each other non-space character.
    static func tokens(of text: String) -> [Range<String.Index>] {
        var out: [Range<String.Index>] = []
        var start: String.Index?
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            let next = text.index(after: i)
            if c.isLetter || c.isNumber {
                if start == nil { start = i }
            } else {
                if let s = start { out.append(s..<i); start = nil }
                if !c.isWhitespace { out.append(i..<next) }
            }
            i = next
        }
        if let s = start { out.append(s..<text.endIndex) }
        return out
    }
}
