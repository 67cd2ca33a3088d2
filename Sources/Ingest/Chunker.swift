/// Cutting documents into passages sized for the embedder.
///
/// A passage is a run of whole sentences (from ``SentenceSplitter``) of at most
/// ``Chunker/Options/maxWords`` words; consecutive passages share a few trailing sentences so a
/// fact stated across a passage boundary is still retrievable from one passage. Offsets are exact:
/// `passage.text` is `document.text` from `start` to `end` in Unicode scalars.

/// Anything that cuts a document into passages (the sentence-aware ``Chunker`` is the default).
public protocol DocumentChunker: Sendable {
    /// The passages of `document`, ordinals 0, 1, 2, …, offsets into ``Document/text``.
    func chunk(_ document: Document) -> [Passage]
}

/// Bad chunker options, as given by a user or a config file.
public enum ChunkerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `maxWords` is below ``Chunker/Options/minimumMaxWords``.
    case maxWordsTooSmall(maxWords: Int, minimum: Int)
    /// `overlapWords` is negative or not below half of `maxWords`.
    case overlapOutOfRange(overlapWords: Int, maxWords: Int)
    /// `minWords` is negative or not below half of `maxWords`.
    case minWordsOutOfRange(minWords: Int, maxWords: Int)

    public var description: String {
        switch self {
        case let .maxWordsTooSmall(maxWords, minimum):
            return "chunker maxWords must be at least \(minimum), got \(maxWords)"
        case let .overlapOutOfRange(overlapWords, maxWords):
            return "chunker overlapWords must be in 0..<\((maxWords + 1) / 2) (below half of maxWords \(maxWords)), "
                + "got \(overlapWords)"
        case let .minWordsOutOfRange(minWords, maxWords):
            return "chunker minWords must be in 0..<\((maxWords + 1) / 2) (below half of maxWords \(maxWords)), "
                + "got \(minWords)"
        }
    }
}

/// The sentence-aware chunker.
///
/// Rules, in order:
/// 1. The text is split into sentences; a sentence that crosses a section start is cut there.
/// 2. A sentence longer than `maxWords` is cut at word boundaries into near-equal pieces.
/// 3. Passages take whole sentences (or pieces) greedily up to `maxWords` words.
/// 4. The next passage starts with the previous one's trailing *whole* sentences totalling at most
///    `overlapWords` words (none if the last sentence alone is longer). It never repeats the whole
///    previous passage and always adds new text (the carried words leave room for the next sentence).
/// 5. If the last passage adds fewer than `minWords` new words, that text joins the previous
///    passage instead (which may then hold up to `maxWords + minWords - 1` words).
///
/// A passage's ``Passage/section`` is its section's name, "FIRST–LAST" (en dash) when it spans
/// sections, and "text" for a document without sections. Words are runs of non-space scalars.
public struct Chunker: DocumentChunker {
    /// Passage sizes, in words (runs of non-space characters).
    public struct Options: Sendable, Equatable {
        /// Smallest accepted ``maxWords``.
        public static let minimumMaxWords = 16

        /// Most words in a passage. 160 words of biomedical English are ~210–230 WordPiece tokens,
        /// which leaves room for the title within MiniLM's 256-token window.
        public var maxWords: Int
        /// Most words of trailing sentences repeated at the start of the next passage.
        /// Must be in `0 ..< maxWords / 2`.
        public var overlapWords: Int
        /// A last passage adding fewer new words than this is merged into the previous one.
        /// Must be in `0 ..< maxWords / 2`.
        public var minWords: Int

        /// Stores the values as given; ``Chunker/init(options:)`` validates them.
        public init(maxWords: Int = 160, overlapWords: Int = 32, minWords: Int = 8) {
            self.maxWords = maxWords
            self.overlapWords = overlapWords
            self.minWords = minWords
        }

        /// Checks the values.
        /// - Throws: ``ChunkerError`` naming the first bad value and its accepted range.
        public func validate() throws(ChunkerError) {
            guard maxWords >= Self.minimumMaxWords else {
                throw .maxWordsTooSmall(maxWords: maxWords, minimum: Self.minimumMaxWords)
            }
            guard overlapWords >= 0, 2 * overlapWords < maxWords else {
                throw .overlapOutOfRange(overlapWords: overlapWords, maxWords: maxWords)
            }
            guard minWords >= 0, 2 * minWords < maxWords else {
                throw .minWordsOutOfRange(minWords: minWords, maxWords: maxWords)
            }
        }
    }

    /// The validated passage sizes.
    public let options: Options
    /// Where sentences end.
    public let splitter: SentenceSplitter

    /// A chunker with the default options (160 / 32 / 8 words).
    public init() {
        self.options = Options()
        self.splitter = SentenceSplitter()
    }

    /// A chunker with validated options.
    /// - Throws: ``ChunkerError`` when an option is out of range.
    public init(options: Options, splitter: SentenceSplitter = SentenceSplitter()) throws(ChunkerError) {
        try options.validate()
        self.options = options
        self.splitter = splitter
    }

    /// Cuts `document` into passages.
    /// - Parameter document: Any document; an empty ``Document/text`` gives no passages.
    /// - Returns: Passages in text order with ordinals 0, 1, 2, … and exact scalar offsets.
    public func chunk(_ document: Document) -> [Passage] {
        var text = document.text
        let (scalars, utf8Offsets) = Self.decode(text)
        guard !scalars.isEmpty else { return [] }

        let sentences = Self.cut(splitter.split(scalars: scalars), atSectionStarts: document.sections, scalars)
        let units = makeUnits(sentences, scalars)
        let groups = pack(units)
        return text.withUTF8 { utf8 in
            groups.enumerated().map { ordinal, group in
                let start = units[group.lowerBound].start
                let end = units[group.upperBound - 1].end
                let bytes = UnsafeBufferPointer(rebasing: utf8[utf8Offsets[start]..<utf8Offsets[end]])
                return Passage(ordinal: ordinal, section: Self.sectionName(start: start, end: end, document.sections),
                               start: start, end: end, text: String(decoding: bytes, as: UTF8.self))
            }
        }
    }
}

// MARK: - Text access

extension Chunker {
    /// The scalars of `text` and the UTF-8 offset of each (plus the end), in one pass.
    ///
    /// Passage texts are sliced from the UTF-8 bytes: building them scalar by scalar was the
    /// chunker's main cost.
    static func decode(_ text: String) -> (scalars: [Unicode.Scalar], utf8Offsets: [Int]) {
        var scalars: [Unicode.Scalar] = []
        var utf8Offsets: [Int] = []  // (scalars.count + 1)
        scalars.reserveCapacity(text.utf8.count)
        utf8Offsets.reserveCapacity(text.utf8.count + 1)
        var offset = 0
        for c in text.unicodeScalars {
            scalars.append(c)
            utf8Offsets.append(offset)
            offset += UTF8.width(c)
        }
        utf8Offsets.append(offset)
        return (scalars, utf8Offsets)
    }
}

// MARK: - Units (sentences and pieces of long sentences)

extension Chunker {
    /// What passages are built from: a whole sentence, or a piece of one longer than `maxWords`.
    struct Unit: Equatable {
        var start: Int
        var end: Int
        var words: Int
        /// Only whole sentences are repeated as overlap.
        var whole: Bool
    }

    /// Turns sentences into units of at most `maxWords` words each.
    func makeUnits(_ sentences: [Range<Int>], _ s: [Unicode.Scalar]) -> [Unit] {
        var units: [Unit] = []
        units.reserveCapacity(sentences.count)
        var wordStarts: [Int] = []
        var wordEnds: [Int] = []
        for sentence in sentences {
            wordStarts.removeAll(keepingCapacity: true)
            wordEnds.removeAll(keepingCapacity: true)
            var inWord = false
            for p in sentence {
                let space = SentenceSplitter.isSpace(s[p])
                if !space && !inWord { wordStarts.append(p) }
                if space && inWord { wordEnds.append(p) }
                inWord = !space
            }
            if inWord { wordEnds.append(sentence.upperBound) }
            let count = wordStarts.count
            if count <= options.maxWords {
                units.append(Unit(start: sentence.lowerBound, end: sentence.upperBound, words: count, whole: true))
                continue
            }
            // Near-equal pieces, so no tiny last piece: 170 words at max 160 -> 85 + 85.
            let pieces = (count + options.maxWords - 1) / options.maxWords
            var first = 0
            for piece in 0..<pieces {
                let size = count / pieces + (piece < count % pieces ? 1 : 0)
                units.append(Unit(start: wordStarts[first], end: wordEnds[first + size - 1], words: size, whole: false))
                first += size
            }
        }
        return units
    }

    /// Cuts every sentence that crosses a section start (readers normally separate sections by a
    /// blank line, which already ends sentences; this guards against those that do not).
    static func cut(_ sentences: [Range<Int>], atSectionStarts sections: [Section],
                    _ s: [Unicode.Scalar]) -> [Range<Int>] {
        let starts = Set(sections.map(\.start)).sorted()
        guard !starts.isEmpty else { return sentences }
        var out: [Range<Int>] = []
        out.reserveCapacity(sentences.count + starts.count)
        var b = 0
        for sentence in sentences {
            var lower = sentence.lowerBound
            while b < starts.count, starts[b] <= lower { b += 1 }
            while b < starts.count, starts[b] < sentence.upperBound {
                SentenceSplitter.appendTrimmed(lower..<starts[b], of: s, to: &out)
                lower = starts[b]
                b += 1
            }
            SentenceSplitter.appendTrimmed(lower..<sentence.upperBound, of: s, to: &out)
        }
        return out
    }
}

// MARK: - Packing units into passages

extension Chunker {
    /// Groups units into passages: ranges of unit indices, consecutive ones possibly overlapping.
    func pack(_ units: [Unit]) -> [Range<Int>] {
        let maxWords = options.maxWords
        var groups: [Range<Int>] = []
        var i = 0
        while i < units.count {
            var j = i
            var words = 0
            while j < units.count, j == i || words + units[j].words <= maxWords {
                words += units[j].words
                j += 1
            }
            groups.append(i..<j)
            guard j < units.count else { break }
            // Carry trailing whole sentences, leaving room for the next unit so every passage
            // adds new text; never carry the group's first unit, so `i` always advances.
            let budget = min(options.overlapWords, maxWords - units[j].words)
            var k = j
            var carried = 0
            while k - 1 > i, units[k - 1].whole, carried + units[k - 1].words <= budget {
                carried += units[k - 1].words
                k -= 1
            }
            i = k
        }
        mergeTinyTail(&groups, units)
        return groups
    }

    /// Merges the last passage into the previous one when it adds fewer than `minWords` words.
    func mergeTinyTail(_ groups: inout [Range<Int>], _ units: [Unit]) {
        guard groups.count >= 2 else { return }
        let last = groups[groups.count - 1]
        let previous = groups[groups.count - 2]
        let newWords = units[previous.upperBound..<last.upperBound].reduce(0) { $0 + $1.words }
        guard newWords < options.minWords else { return }
        groups[groups.count - 2] = previous.lowerBound..<last.upperBound
        groups.removeLast()
    }
}

// MARK: - Section names

extension Chunker {
    /// "NAME", "FIRST–LAST" across sections, or "text" without sections.
    static func sectionName(start: Int, end: Int, _ sections: [Section]) -> String {
        guard !sections.isEmpty else { return "text" }
        let first = sections[sectionIndex(at: start, sections)].name
        let last = sections[sectionIndex(at: end - 1, sections)].name
        return first == last ? first : "\(first)\u{2013}\(last)"
    }

    /// The section with the largest start at or before `offset` (the first one if none).
    static func sectionIndex(at offset: Int, _ sections: [Section]) -> Int {
        var best = 0
        var bestStart = Int.min
        for (index, section) in sections.enumerated() where section.start <= offset && section.start > bestStart {
            best = index
            bestStart = section.start
        }
        return best
    }
}
