#if canImport(Glibc)
import Glibc
#endif

/// Reads PMC articles in JATS XML (`.nxml`): one ``Document`` per file.
///
/// What becomes of an article:
/// - **key**: `"PMC<id>"` from `article-meta/article-id[@pub-id-type="pmc"]` (or `"pmcid"`), else the
///   PMID, else the file name. `pmid`, `pmcid`, `doi` from the other `article-id`s.
/// - **metadata**: `title-group/article-title`; `journal-title`; `journalAbbrev` from
///   `journal-id[@journal-id-type="nlm-ta"]` (else `"iso-abbrev"`); `year` from the first
///   `pub-date/year`; `keywords` from `kwd`; `publicationTypes` = `[article/@article-type]`.
/// - **sections**, in this order:
///   1. each `abstract` ("Abstract", or its own title such as "Author Summary"), and its `sec`s as
///      "Abstract / Background" (a trailing ":" or "." of a title or label is dropped);
///   2. the `body`: each `sec` named by the path of titles, "Methods / Cell culture" (the `label`
///      when a `sec` has no title; text outside any `sec` is "Body"). A section's paragraphs are
///      joined by "\n"; a `sec`'s own text before and after its child `sec`s forms separate sections
///      under the same name;
///   3. appendices (`back/app-group`, `back/app`), named like body sections (untitled: "Appendix");
///   4. figure and table captions (`fig`, `table-wrap`, in the body or in `floats-group`), each its
///      own section named by its label ("Figure 1", "Table 2"; unlabelled: "Figure" / "Table"),
///      title and paragraphs of the caption joined by "\n". They come last so that a body section's
///      text stays contiguous, however the figures are placed in it.
/// - **skipped**: the rest of `back` (references, acknowledgements, footnotes, glossary), table bodies
///   and table footnotes, supplementary material, `sub-article`/`response`, translated titles and
///   abstracts, `tex-math` that sits next to MathML in `alternatives`, and display-formula labels.
///
/// Text inside inline markup (`italic`, `sup`, `xref`, MathML…) is kept; character references and
/// the five XML entities are decoded, CDATA is text; whitespace, including Unicode spaces such as
/// U+00A0 or U+200A, is normalised to single spaces. A lone `tex-math` is kept without its LaTeX
/// preamble. The DTD is never loaded, so a named entity only the DTD declares (`&nbsp;`) makes the
/// file malformed; PMC's `.nxml` files use numeric references only.
public struct JATSReader: DocumentReader {
    public init() {}

    /// Streams the one document of `file` to `emit`.
    /// - Throws: ``IngestError/notJATS(file:rootElement:)`` when the root element is not `article`;
    ///   ``IngestError/malformedXML(file:line:column:message:pmid:)`` on XML errors;
    ///   ``IngestError/cannotOpen(file:reason:)``; whatever `emit` throws.
    public func read(file: String, emit: (IngestItem) throws -> Void) throws {
        let parser = try JATSParser(file: file)
        try emit(.document(try parser.parse()))
    }
}

// MARK: - Parser

/// The state machine behind ``JATSReader``, pulled node by node from an ``XMLReader``.
///
/// It keeps the path of open elements (interned names), one field capture at a time (title,
/// article id, section title…), and a stack of section frames, each with its paragraph in progress.
private final class JATSParser {
    typealias Name = XMLReader.Name

    private let xml: XMLReader
    private let file: String
    private let n: Names

    // Metadata found so far.
    private var pmcid: String?
    private var pmid: Int?
    private var doi: String?
    private var title = ""
    private var journal: String?
    private var nlmTA: String?
    private var isoAbbrev: String?
    private var year: Int?
    private var keywords: [String] = []
    private var articleType: String?
    private var articleLine = 0

    // Output so far: sections in reading order, captions held back until the end.
    private var parts: [(name: String, text: String)] = []
    private var captions: [(name: String, text: String)] = []

    // Traversal state.
    private var stack: [Name] = []          // open elements, root first
    private var frames: [Frame] = []        // open section-like elements, outermost first
    private var field: Field?               // the capture in progress, if any
    private var fieldDepth = 0              // stack.count of the captured element
    private var fieldText = TextBuffer()
    private var inTeX = false               // inside a kept `tex-math`
    private var texText = TextBuffer()
    private var articleMeta = 0, journalMeta = 0  // > 0 inside those elements

    /// Opens `file`.
    /// - Throws: ``IngestError/cannotOpen(file:reason:)``.
    init(file: String) throws {
        self.file = file
        xml = try XMLReader(file: file)
        n = Names(xml)
        stack.reserveCapacity(32)
    }

    /// What a captured element's text is for.
    private enum Field {
        case articleID(type: String), articleTitle, journalTitle, journalID(type: String), year, keyword
        case sectionTitle, label
    }

    /// An open `abstract`, `body`, `sec`, `app`, `fig`, `table-wrap`… whose text becomes sections.
    private struct Frame {
        /// stack.count of the element, to recognise its end.
        var depth: Int
        /// Its part of a section path (a title), or nil.
        var component: String?
        /// Its `label`, used when it has no title.
        var label: String?
        /// A root starts a new path (body, abstract, figure) instead of extending its parent's.
        var isRoot: Bool
        /// The name when the whole path is empty ("Body", "Figure").
        var fallback: String
        /// Captions go to `captions`, not `parts`.
        var isCaption = false
        var lines: [String] = []
        var para = TextBuffer()
    }

    // MARK: Reading loop

    /// Reads the whole file.
    /// - Returns: The article as a document.
    func parse() throws -> Document {
        var sawRoot = false
        while try xml.read(pmid: pmid) {
            switch xml.nodeType {
            case XMLNode.element:
                guard let name = xml.name else { continue }
                if !sawRoot {
                    sawRoot = true
                    guard name == n.article else {
                        throw IngestError.notJATS(file: file, rootElement: xml.nameString)
                    }
                    articleLine = xml.nodeLine
                    articleType = xml.attribute("article-type")
                }
                try startElement(name)
            case XMLNode.endElement:
                endElement()
            case XMLNode.text, XMLNode.cdata, XMLNode.whitespace, XMLNode.significantWhitespace:
                if let value = xml.value {
                    appendText(value)
                    if texText.overflowed || fieldText.overflowed || frames.last?.para.overflowed == true {
                        throw IngestError.badRecord(file: file, line: xml.nodeLine,
                                                    message: "the text of one paragraph or field passes \(TextBuffer.maxBytes) bytes")
                    }
                }
            default:
                break
            }
        }
        guard sawRoot else { throw IngestError.notJATS(file: file, rootElement: "(none: the file has no elements)") }
        return makeDocument()
    }

    private func makeDocument() -> Document {
        let key = pmcid ?? pmid.map(String.init) ?? String(file.split(separator: "/").last ?? Substring(file))
        var doc = Document(key: key, source: .jats, pmid: pmid, title: title, journal: journal,
                           journalAbbrev: nlmTA ?? isoAbbrev, year: year,
                           publicationTypes: articleType.map { [$0] } ?? [], keywords: keywords, doi: doi,
                           pmcid: pmcid, file: file, line: articleLine)
        doc.setSections(parts + captions)
        return doc
    }

    /// Skips the subtree of the current (non-empty) element, up to and including its end tag.
    private func skipSubtree() throws {
        let depth = xml.depth
        while try xml.read(pmid: pmid) {
            if xml.nodeType == XMLNode.endElement && xml.depth == depth { return }
        }
    }

    // MARK: Elements

    private func startElement(_ name: Name) throws {
        let parent = stack.last
        if shouldSkip(name, parent: parent) {
            if !xml.isEmptyElement { try skipSubtree() }
            return
        }
        stack.append(name)
        let depth = stack.count
        switch name {
        case n.articleMeta: articleMeta += 1
        case n.journalMeta: journalMeta += 1
        case n.articleID where articleMeta > 0:
            begin(.articleID(type: xml.attribute("pub-id-type") ?? ""), depth)
        case n.articleTitle where parent == n.titleGroup && articleMeta > 0: begin(.articleTitle, depth)
        case n.journalTitle where journalMeta > 0 && journal == nil: begin(.journalTitle, depth)
        case n.journalID where journalMeta > 0: begin(.journalID(type: xml.attribute("journal-id-type") ?? ""), depth)
        case n.year where parent == n.pubDate && articleMeta > 0 && year == nil: begin(.year, depth)
        case n.kwd where articleMeta > 0: begin(.keyword, depth)
        case n.abstract where articleMeta > 0:
            pushFrame(Frame(depth: depth, component: "Abstract", isRoot: true, fallback: "Abstract"))
        case n.body: pushFrame(Frame(depth: depth, isRoot: true, fallback: "Body"))
        case n.floatsGroup: pushFrame(Frame(depth: depth, isRoot: true, fallback: "Body"))
        case n.appGroup: pushFrame(Frame(depth: depth, isRoot: true, fallback: "Appendix"))
        case n.app: pushFrame(Frame(depth: depth, isRoot: parent == n.back, fallback: "Appendix"))
        case n.sec where !frames.isEmpty: pushFrame(Frame(depth: depth, isRoot: false, fallback: "Body"))
        case n.fig where !frames.isEmpty:
            pushFrame(Frame(depth: depth, isRoot: true, fallback: "Figure", isCaption: true))
        case n.tableWrap where !frames.isEmpty:
            pushFrame(Frame(depth: depth, isRoot: true, fallback: "Table", isCaption: true))
        case n.title where frames.last?.depth == depth - 1 && !(frames.last?.isCaption ?? true):
            begin(.sectionTitle, depth)
        case n.label where frames.last?.depth == depth - 1: begin(.label, depth)
        case n.texMath: inTeX = true; texText.reset()
        case n.break_, n.dispFormula: separate()
        default:
            if n.blocks.contains(name) { flushParagraph() }
        }
        if xml.isEmptyElement { endElement() }
    }

    private func endElement() {
        guard let name = stack.popLast() else { return }
        let depth = stack.count + 1
        if field != nil && depth == fieldDepth { finishField() }
        if let frame = frames.last, frame.depth == depth { popFrame(); return }
        switch name {
        case n.articleMeta: articleMeta -= 1
        case n.journalMeta: journalMeta -= 1
        case n.texMath: finishTeX()
        case n.dispFormula: separate()
        default:
            if n.blocks.contains(name) { flushParagraph() }
        }
    }

    /// Subtrees that contribute nothing: references, table bodies, boilerplate, duplicates.
    private func shouldSkip(_ name: Name, parent: Name?) -> Bool {
        if n.skipped.contains(name) { return true }
        if parent == n.back { return name != n.appGroup && name != n.app }
        if name == n.texMath { return parent == n.alternatives }
        if name == n.label { return parent == n.dispFormula }
        return false
    }

    // MARK: Text

    private func appendText(_ value: UnsafePointer<UInt8>) {
        if inTeX { texText.append(value) }
        else if field != nil { fieldText.append(value) }
        else if !frames.isEmpty { frames[frames.count - 1].para.append(value) }
    }

    /// Appends a Swift string to wherever text is going now.
    private func appendText(_ s: String) {
        s.utf8CString.withUnsafeBufferPointer { cs in
            cs.withMemoryRebound(to: UInt8.self) { appendText($0.baseAddress!) }
        }
    }

    /// A word boundary in the paragraph in progress (a `break`, a display formula).
    private func separate() {
        if field != nil { fieldText.separate() }
        else if !frames.isEmpty { frames[frames.count - 1].para.separate() }
    }

    /// Starts capturing the text of the element at `depth` (a capture inside a capture is part of it).
    private func begin(_ f: Field, _ depth: Int) {
        guard field == nil else { return }
        field = f
        fieldDepth = depth
        fieldText.reset()
    }

    private func finishField() {
        let text = Self.tidy(fieldText.string)
        let f = field
        field = nil
        switch f {
        case let .articleID(type):
            setArticleID(type: type, value: text)
        case .articleTitle: if title.isEmpty { title = text }
        case .journalTitle: if !text.isEmpty { journal = text }
        case let .journalID(type):
            if type == "nlm-ta", nlmTA == nil, !text.isEmpty { nlmTA = text }
            if type == "iso-abbrev", isoAbbrev == nil, !text.isEmpty { isoAbbrev = text }
        case .year: year = Int(text)
        case .keyword: if !text.isEmpty { keywords.append(text) }
        case .sectionTitle:
            let t = Self.trimPunctuation(text)
            if !t.isEmpty { frames[frames.count - 1].component = t }
        case .label:
            let t = Self.trimPunctuation(text)
            if !t.isEmpty { frames[frames.count - 1].label = t }
        case nil: break
        }
    }

    private func setArticleID(type: String, value: String) {
        switch type {
        case "pmc", "pmcid":
            var digits = Substring(value)
            if digits.uppercased().hasPrefix("PMC") { digits = digits.dropFirst(3) }
            if pmcid == nil, !digits.isEmpty { pmcid = "PMC" + digits }
        case "pmid": if pmid == nil { pmid = Int(value) }
        case "doi": if doi == nil, !value.isEmpty { doi = value }
        default: break
        }
    }

    /// A lone `tex-math`: keeps what is between `\begin{document}` and `\end{document}` (PMC wraps
    /// each formula in a full LaTeX document), without the `$` delimiters.
    private func finishTeX() {
        inTeX = false
        var tex = Substring(texText.string)
        if let b = tex.firstRange(of: "\\begin{document}") { tex = tex[b.upperBound...] }
        if let e = tex.firstRange(of: "\\end{document}") { tex = tex[..<e.lowerBound] }
        while let c = tex.first, c == " " || c == "$" { tex.removeFirst() }
        while let c = tex.last, c == " " || c == "$" { tex.removeLast() }
        let trimmed = String(tex)
        if !trimmed.isEmpty { separate(); appendText(trimmed); separate() }
    }

    /// Replaces Unicode spaces (U+00A0, U+2000–U+200A, U+202F…) by ASCII spaces and collapses runs.
    /// The ``TextBuffer`` already collapsed ASCII whitespace, so pure-ASCII text is returned as is.
    private static func tidy(_ s: String) -> String {
        if s.utf8.allSatisfy({ $0 < 0x80 }) { return s }
        var out = String.UnicodeScalarView()
        var space = false
        for u in s.unicodeScalars {
            if u.properties.isWhitespace {
                space = !out.isEmpty
            } else {
                if space { out.append(" "); space = false }
                out.append(u)
            }
        }
        return String(out)
    }

    /// "Background:" -> "Background", "Table 1." -> "Table 1": names, not sentences.
    private static func trimPunctuation(_ s: String) -> String {
        var t = Substring(s)
        while let c = t.last, c == ":" || c == "." || c == " " { t.removeLast() }
        return String(t)
    }

    // MARK: Sections

    private func pushFrame(_ frame: Frame) {
        // A caption does not interrupt the paragraph it sits in; a section does.
        if !frame.isCaption { flushParagraph(); emitLines() }
        frames.append(frame)
    }

    private func popFrame() {
        flushParagraph()
        emitLines()
        frames.removeLast()
    }

    /// Moves the paragraph in progress of the innermost frame into its lines.
    private func flushParagraph() {
        guard !frames.isEmpty else { return }
        let i = frames.count - 1
        if !frames[i].para.isEmpty {
            let line = Self.tidy(frames[i].para.string)
            if !line.isEmpty { frames[i].lines.append(line) }
        }
        frames[i].para.reset()
    }

    /// Turns the innermost frame's lines into a section.
    private func emitLines() {
        guard let frame = frames.last, !frame.lines.isEmpty else { return }
        let part = (name: path(frames.count - 1), text: frame.lines.joined(separator: "\n"))
        if frame.isCaption { captions.append(part) } else { parts.append(part) }
        frames[frames.count - 1].lines.removeAll()
    }

    /// "Methods / Cell culture": the titles from the nearest root frame down to frame `i`.
    private func path(_ i: Int) -> String {
        var root = i
        while root > 0 && !frames[root].isRoot { root -= 1 }
        let names = frames[root...i].compactMap { $0.component ?? $0.label }
        return names.isEmpty ? frames[root].fallback : names.joined(separator: " / ")
    }
}

// MARK: - Names

/// Element names interned in the reader's dictionary, compared by pointer.
private struct Names {
    typealias Name = XMLReader.Name
    let article, articleMeta, journalMeta, articleID, titleGroup, articleTitle, journalTitle, journalID, pubDate,
        year, kwd, abstract, body, back, floatsGroup, appGroup, app, sec, fig, tableWrap, title, label, texMath,
        alternatives, dispFormula, break_: Name
    /// Elements whose start and end close the paragraph in progress.
    let blocks: Set<Name>
    /// Elements skipped with their whole subtree.
    let skipped: Set<Name>

    init(_ xml: XMLReader) {
        func i(_ s: String) -> Name { xml.intern(s) }
        article = i("article"); articleMeta = i("article-meta"); journalMeta = i("journal-meta")
        articleID = i("article-id"); titleGroup = i("title-group"); articleTitle = i("article-title")
        journalTitle = i("journal-title"); journalID = i("journal-id"); pubDate = i("pub-date"); year = i("year")
        kwd = i("kwd"); abstract = i("abstract"); body = i("body"); back = i("back")
        floatsGroup = i("floats-group"); appGroup = i("app-group"); app = i("app"); sec = i("sec")
        fig = i("fig"); tableWrap = i("table-wrap"); title = i("title"); label = i("label")
        texMath = i("tex-math"); alternatives = i("alternatives"); dispFormula = i("disp-formula")
        break_ = i("break")
        blocks = Set(["p", "title", "caption", "list-item", "def-item", "term", "def", "disp-quote",
                      "verse-line", "statement", "boxed-text", "speech", "attrib"].map(i))
        skipped = Set(["ref-list", "table", "table-wrap-foot", "supplementary-material", "media",
                       "sub-article", "response", "trans-abstract", "trans-title-group", "alt-title",
                       "annotation", "annotation-xml", "object-id", "permissions", "contrib-group",
                       "aff", "author-notes", "history", "funding-group", "custom-meta-group",
                       "related-article", "fn-group", "ack"].map(i))
    }
}
