import Foundation

/// A number an answer states, with the unit written after it.
public struct Figure: Sendable, Equatable {
    /// As written, with its unit: `12%`, `40 mg`, `11 studies`, `1,200`.
    public var text: String
    /// The number, normalised: thousands separators dropped, `·` read as a decimal point, the
    /// sign left out (`−12%` and `12%` state the same figure).
    public var value: Double
}

/// Checks that the figures of an answer appear in its evidence (the cited passages).
///
/// A figure is a number written with digits: `12%`, `1.2 to 1.5` (two figures), `40 mg`,
/// `11 studies`, `1,234`, `.5`, `−0.3`. Not figures: citation markers (`[1]`, `PMID 123`), numbers
/// inside names (`CD4`, `IL-6`, `COVID-19`, `5-HT`, `B12`, `3rd`), list markers (`12. ` at the
/// start of a line), and integers below 10 with no unit or percent sign (`type 2 diabetes`,
/// `phase 3`: too often part of a name).
///
/// A figure is supported when its value appears as a number anywhere in the evidence, compared
/// as numbers: `1,200` = `1200` = `1 200` (thin space), `12.0%` = `12%`, `0.5` = `.5`,
/// `−3` (U+2212) = `-3` = `3`. Units are not compared (`40 mg` is supported by a passage with
/// `40 mg/day` or `40 patients`), and rounding is not undone (`12.3%` is not supported by
/// `12.34%`): the check finds invented figures, it does not prove the right ones.
public enum FigureCheck {
    /// The figures of `text` to check, in order (citation markers left out).
    public static func figures(in text: String) -> [Figure] {
        var cleaned = text
        for c in CitationParser.parse(text) {
            if let r = cleaned.range(of: c.text) { cleaned.replaceSubrange(r, with: " ") }
        }
        return scan(cleaned, all: false)
    }

    /// The figures of `answer` whose value appears in none of `evidence`, as written, each once.
    /// - Parameters:
    ///   - answer: the model's answer.
    ///   - evidence: the texts the figures may come from (the cited passages, the question).
    public static func unsupported(answer: String, evidence: [String]) -> [String] {
        let known = evidence.flatMap { scan($0, all: true).map(\.value) }
        var out: [String] = []
        for f in figures(in: answer) where !known.contains(where: { same($0, f.value) }) {
            if !out.contains(f.text) { out.append(f.text) }
        }
        return out
    }

    static func same(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(1, abs(a), abs(b)) }

    // MARK: Scanning

    /// Words read as the unit of the number before them (lowercased).
    static let units: Set<String> = [
        "mg", "g", "kg", "µg", "μg", "mcg", "ug", "ng", "ml", "l", "dl", "mmol", "µmol", "μmol", "nmol", "mol", "meq",
        "mmhg", "iu", "u", "units", "cm", "mm", "m", "km", "bpm", "kcal", "percent", "per", "fold", "times",
        "years", "year", "yr", "yrs", "months", "month", "weeks", "week", "wk", "days", "day", "d", "hours", "hour",
        "h", "hr", "minutes", "minute", "min", "seconds", "s", "patients", "participants", "subjects", "people",
        "persons", "individuals", "women", "men", "children", "adults", "cases", "controls", "studies", "trials",
        "articles", "cohorts", "deaths", "events", "points", "mg/dl", "mg/kg", "mmol/l",
    ]
    /// Thousands separators between digit groups (not the plain space).
    private static let groupSeparators: Set<Character> = [",", "\u{2009}", "\u{202F}", "\u{00A0}"]
    private static let minusSigns: Set<Character> = ["-", "\u{2212}"]

    /// The numbers of `text`; with `all: false` only the figures to check (see the type's rules).
    static func scan(_ text: String, all: Bool) -> [Figure] {
        let c = Array(text)
        var out: [Figure] = []
        var i = 0
        while i < c.count {
            let startsNumber = c[i].isASCIIDigit || (c[i] == "." && i + 1 < c.count && c[i + 1].isASCIIDigit && (i == 0 || !c[i - 1].isASCIIDigit))
            guard startsNumber else { i += 1; continue }
            let start = i
            // Digits, thousands groups ("1,234", only groups of exactly 3), a decimal part.
            var digits = ""
            while i < c.count, c[i].isASCIIDigit { digits.append(c[i]); i += 1 }
            while !digits.isEmpty, i + 3 < c.count, groupSeparators.contains(c[i]),
                  (1...3).allSatisfy({ c[i + $0].isASCIIDigit }), i + 4 >= c.count || !c[i + 4].isASCIIDigit {
                digits += String(c[(i + 1)...(i + 3)]); i += 4
            }
            if i + 1 < c.count, c[i] == "." || c[i] == "·", c[i + 1].isASCIIDigit {
                digits.append("."); i += 1
                while i < c.count, c[i].isASCIIDigit { digits.append(c[i]); i += 1 }
            }
            guard let value = Double(digits.hasPrefix(".") ? "0" + digits : digits) else { continue }
            var end = i
            let signed = start > 0 && minusSigns.contains(c[start - 1]) && (start == 1 || !(c[start - 2].isLetter || c[start - 2].isNumber))
            if all { out.append(Figure(text: String(c[start..<end]), value: value)); continue }
            // Inside a name: a letter right before ("CD4"), or a hyphen or slash after a letter ("IL-6").
            let before: Character? = start > 0 ? c[start - 1] : nil
            if let b = before, b.isLetter { continue }
            if let b = before, !signed, "-/_".contains(b), start >= 2, c[start - 2].isLetter { continue }
            // The unit after it: "%", or a unit word after at most one space; a hyphenated unit ("12-week").
            var unit = ""
            var j = end
            if j < c.count, c[j] == "%" {
                unit = "%"; end = j + 1
            } else {
                if j < c.count, c[j] == " " || c[j] == "-" || c[j] == "\u{00A0}" { j += 1 }
                var k = j
                while k < c.count, c[k].isLetter || c[k] == "/" || c[k] == "µ" { k += 1 }
                let word = String(c[j..<k])
                let lower = word.lowercased()
                if !word.isEmpty, units.contains(lower) || units.contains(String(lower.prefix { $0 != "/" })) {
                    unit = word; end = k
                } else if j == end, !word.isEmpty {
                    continue  // letters glued to the number and not a unit: a name ("5HT", "3rd", "2D")
                } else if j > end, c[j - 1] == "-", !word.isEmpty {
                    continue  // "5-HT": a name
                }
            }
            if unit.isEmpty, !digits.contains("."), value < 10 { continue }
            // A list marker: "12. " or "12) " at the start of a line.
            var lineStart = start
            while lineStart > 0, c[lineStart - 1] == " " || c[lineStart - 1] == "\t" { lineStart -= 1 }
            if unit.isEmpty, lineStart == 0 || c[lineStart - 1] == "\n", end + 1 < c.count, c[end] == "." || c[end] == ")",
               c[end + 1] == " " { continue }
            let shown = (signed ? String(c[start - 1]) : "") + String(c[start..<end])
            out.append(Figure(text: shown, value: value))
            i = max(i, end)
        }
        return out
    }
}
