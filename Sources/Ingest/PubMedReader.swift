import CLibXML2
#if canImport(Glibc)
import Glibc
#endif

/// Reads PubMed/MEDLINE XML (`.xml`, `.xml.gz`): the current `PubmedArticleSet/PubmedArticle`
/// schema and the older `MedlineCitationSet/MedlineCitation` one, including the
/// `DeleteCitation` lists of update files.
///
/// Streams: a background thread inflates the file in 256 KiB chunks that libxml2's SAX2 push
/// parser consumes, so memory stays flat whatever the file size. (libxml2's `xmlTextReader`
/// walks the same file more slowly than SAX2: see BENCHMARKS.md.)
/// Text inside inline markup (`<i>`, `<sup>`, MathML…) is kept, entities are decoded, whitespace
/// is normalised. Each `AbstractText` becomes a section named by its `Label` ("abstract" when
/// unlabelled).
public struct PubMedReader: DocumentReader {
    public init() {}

    public func read(file: String, emit: (IngestItem) throws -> Void) throws {
        try read(file: file, progress: nil, emit: emit)
    }

    /// Like ``read(file:emit:)``, also reporting the on-disk bytes consumed so far.
    public func read(file: String, progress: ((Int) -> Void)?, emit: (IngestItem) throws -> Void) throws {
        let source = try ByteSource(file: file)
        defer { source.cancel() }
        let parser = PubMedParser(file: file)
        var done = false
        while !done {
            let chunk = source.next()
            var offset = source.size
            switch chunk {
            case let .bytes(bytes, compressedOffset):
                offset = compressedOffset
                bytes.withUnsafeBufferPointer { parser.feed($0, last: false) }
            case .end:
                parser.feed(UnsafeBufferPointer(start: nil, count: 0), last: true)
                done = true
            case let .failure(message):
                parser.fail(message)
                done = true
            }
            for item in parser.drain() { try emit(item) }
            if let error = parser.error { throw error }
            progress?(offset)
        }
        try parser.finish()
    }
}

/// The state machine behind ``PubMedReader``, driven by SAX2 callbacks: a stack of interned
/// element names and one text capture at a time (the subtree text of the captured element).
/// Finished items wait in `pending` until the read loop drains them, so no Swift error has to
/// cross the C callbacks.
private final class PubMedParser {
    typealias Name = UnsafePointer<xmlChar>

    let file: String
    private var ctxt: xmlParserCtxtPtr!
    private var n: Names!
    private(set) var error: IngestError?
    private var pending: [IngestItem] = []

    // Element path (interned pointers) of open elements.
    private var stack: [Name] = []
    // The capture in progress.
    private var capture: Field?
    private var captureDepth = -1
    private var text = TextBuffer()

    // The record in progress.
    private var record = Record()
    private var inRecord = false
    private var recordDepth = -1
    private var deletion: [Int] = []
    private var deletionLine = 0
    private var lastPMID: Int?
    private var rootName: String?

    init(file: String) {
        self.file = file
        stack.reserveCapacity(32)
        var sax = xmlSAXHandler()
        sax.initialized = XML_SAX2_MAGIC
        sax.startElementNs = { ctx, localname, _, _, _, _, nbAttributes, _, attributes in
            guard let ctx, let localname else { return }
            Unmanaged<PubMedParser>.fromOpaque(ctx).takeUnretainedValue()
                .startElement(localname, attributes: attributes, count: Int(nbAttributes))
        }
        sax.endElementNs = { ctx, _, _, _ in
            guard let ctx else { return }
            Unmanaged<PubMedParser>.fromOpaque(ctx).takeUnretainedValue().endElement()
        }
        let characters: charactersSAXFunc = { ctx, ch, len in
            guard let ctx, let ch else { return }
            let me = Unmanaged<PubMedParser>.fromOpaque(ctx).takeUnretainedValue()
            guard me.capture != nil else { return }
            me.text.append(ch, count: Int(len))
            if me.text.overflowed { me.refuseLongText() }
        }
        sax.characters = characters
        sax.cdataBlock = characters
        sax.serror = { ctx, err in
            guard let ctx, let err else { return }
            let me = Unmanaged<PubMedParser>.fromOpaque(ctx).takeUnretainedValue()
            guard me.error == nil, err.pointee.level.rawValue >= XML_ERR_ERROR.rawValue else { return }
            var msg = err.pointee.message.map { String(cString: $0) } ?? "unknown error"
            while msg.last == "\n" { msg.removeLast() }
            me.error = .malformedXML(file: me.file, line: Int(err.pointee.line), column: Int(err.pointee.int2),
                                     message: msg, pmid: me.lastPMID)
        }
        ctxt = xmlCreatePushParserCtxt(&sax, Unmanaged.passUnretained(self).toOpaque(), nil, 0, file)
        xmlCtxtUseOptions(ctxt, Int32(XML_PARSE_NONET.rawValue | XML_PARSE_COMPACT.rawValue))
        n = Names(ctxt.pointee.dict)
    }

    deinit {
        if let doc = ctxt.pointee.myDoc { xmlFreeDoc(doc) }
        xmlFreeParserCtxt(ctxt)
    }

    /// Parses the next chunk of bytes.
    func feed(_ bytes: UnsafeBufferPointer<UInt8>, last: Bool) {
        guard error == nil else { return }
        let rc = bytes.withMemoryRebound(to: CChar.self) {
            xmlParseChunk(ctxt, $0.baseAddress, Int32($0.count), last ? 1 : 0)
        }
        if rc != 0, error == nil {
            error = .malformedXML(file: file, line: line, column: Int(xmlSAX2GetColumnNumber(ctxt)),
                                  message: "parse error \(rc)", pmid: lastPMID)
        }
    }

    /// Stops the parse: one field's text passed ``TextBuffer/maxBytes`` (a decompression bomb).
    private func refuseLongText() {
        guard error == nil else { return }
        error = .badRecord(file: file, line: line, message: "the text of one field passes \(TextBuffer.maxBytes) bytes"
                           + (lastPMID.map { " (after PMID \($0))" } ?? ""))
        xmlStopParser(ctxt)
    }

    /// Records an input failure (e.g. truncated gzip) at the current position.
    func fail(_ message: String) {
        guard error == nil else { return }
        error = .malformedXML(file: file, line: line, column: Int(xmlSAX2GetColumnNumber(ctxt)),
                              message: message, pmid: lastPMID)
    }

    /// Items finished since the last call, in file order.
    func drain() -> [IngestItem] {
        defer { pending.removeAll(keepingCapacity: true) }
        return pending
    }

    /// Checks the document as a whole once the input is consumed.
    func finish() throws {
        if let error { throw error }
        guard rootName != nil else {
            throw IngestError.notPubMed(file: file, rootElement: "(none: the file has no elements)")
        }
    }

    private var line: Int { Int(xmlSAX2GetLineNumber(ctxt)) }

    private enum Field { case pmid, deletePMID, title, abstract, journal, iso, year, medlineDate, language, pubType, descriptor, qualifier, keyword, doi, pmc }

    private struct Record {
        var pmid: Int?
        var version = 1
        var line = 0
        var title = ""
        var sections: [(name: String, text: String)] = []
        var label = "abstract"
        var journal: String?
        var iso: String?
        var year: Int?
        var language: String?
        var pubTypes: [String] = []
        var mesh: [MeshHeading] = []
        var keywords: [String] = []
        var doi: String?
        var pmc: String?
    }

    /// Element and attribute names interned in the parser's dictionary, compared by pointer.
    private struct Names {
        let pubmedArticleSet, medlineCitationSet, pubmedArticle, medlineCitation, deleteCitation, pmid,
            article, articleTitle, abstract, abstractText, journal, title, isoAbbreviation, pubDate, year,
            medlineDate, language, publicationType, meshHeading, descriptorName, qualifierName, keywordList,
            keyword, eLocationID, articleIdList, articleId, pubmedData: Name
        init(_ dict: xmlDictPtr) {
            func i(_ s: String) -> Name { xmlDictLookup(dict, s, -1) }
            pubmedArticleSet = i("PubmedArticleSet"); medlineCitationSet = i("MedlineCitationSet")
            pubmedArticle = i("PubmedArticle"); medlineCitation = i("MedlineCitation")
            deleteCitation = i("DeleteCitation"); pmid = i("PMID"); article = i("Article")
            articleTitle = i("ArticleTitle"); abstract = i("Abstract"); abstractText = i("AbstractText")
            journal = i("Journal"); title = i("Title"); isoAbbreviation = i("ISOAbbreviation")
            pubDate = i("PubDate"); year = i("Year"); medlineDate = i("MedlineDate")
            language = i("Language"); publicationType = i("PublicationType")
            meshHeading = i("MeshHeading"); descriptorName = i("DescriptorName")
            qualifierName = i("QualifierName"); keywordList = i("KeywordList"); keyword = i("Keyword")
            eLocationID = i("ELocationID"); articleIdList = i("ArticleIdList")
            articleId = i("ArticleId"); pubmedData = i("PubmedData")
        }
    }

    /// SAX2 attributes: `count` 5-tuples (localname, prefix, URI, value, end).
    private struct Attributes {
        let base: UnsafeMutablePointer<UnsafePointer<xmlChar>?>?
        let count: Int

        func value(_ name: String) -> String? {
            guard let base else { return nil }
            for k in 0..<count {
                guard let local = base[5 * k], let v = base[5 * k + 3], let e = base[5 * k + 4] else { continue }
                if strcmp(UnsafeRawPointer(local).assumingMemoryBound(to: CChar.self), name) == 0 {
                    return String(decoding: UnsafeBufferPointer(start: v, count: e - v), as: UTF8.self)
                }
            }
            return nil
        }

        func value(_ name: String, equals expected: String) -> Bool { value(name) == expected }
    }

    // MARK: Elements

    private var parent: Name? { stack.last }
    private var grandparent: Name? { stack.count >= 2 ? stack[stack.count - 2] : nil }

    private func startElement(_ name: Name, attributes: UnsafeMutablePointer<UnsafePointer<xmlChar>?>?, count: Int) {
        let depth = stack.count
        defer { stack.append(name) }
        if rootName == nil {
            rootName = String(cString: name)
            guard name == n.pubmedArticleSet || name == n.medlineCitationSet else {
                error = .notPubMed(file: file, rootElement: rootName!)
                xmlStopParser(ctxt)
                return
            }
        }
        let attrs = Attributes(base: attributes, count: count)
        if !inRecord {
            if name == n.pubmedArticle || (name == n.medlineCitation && parent == n.medlineCitationSet) {
                inRecord = true
                recordDepth = depth
                record = Record()
                record.line = line
            } else if name == n.deleteCitation {
                deletionLine = line
            } else if name == n.pmid, parent == n.deleteCitation {
                begin(.deletePMID, depth)
            }
            return
        }
        if capture != nil {
            // Inline markup inside a captured element: keep its text; block-ish MathML gets a space.
            return
        }
        let p = parent
        switch name {
        case n.pmid where p == n.medlineCitation:
            record.version = Int(attrs.value("Version") ?? "") ?? 1
            begin(.pmid, depth)
        case n.articleTitle where p == n.article: begin(.title, depth)
        case n.abstractText where p == n.abstract && grandparent == n.article:
            let label = attrs.value("Label") ?? attrs.value("NlmCategory") ?? ""
            record.label = label.isEmpty ? "abstract" : label
            begin(.abstract, depth)
        case n.title where p == n.journal: begin(.journal, depth)
        case n.isoAbbreviation where p == n.journal: begin(.iso, depth)
        case n.year where p == n.pubDate: begin(.year, depth)
        case n.medlineDate where p == n.pubDate: begin(.medlineDate, depth)
        case n.language where p == n.article: begin(.language, depth)
        case n.publicationType: begin(.pubType, depth)
        case n.descriptorName where p == n.meshHeading:
            let ui = attrs.value("UI") ?? ""
            record.mesh.append(MeshHeading(descriptor: "", ui: ui, majorTopic: attrs.value("MajorTopicYN", equals: "Y")))
            begin(.descriptor, depth)
        case n.qualifierName where p == n.meshHeading:
            if attrs.value("MajorTopicYN", equals: "Y"), !record.mesh.isEmpty { record.mesh[record.mesh.count - 1].majorTopic = true }
            begin(.qualifier, depth)
        case n.keyword where p == n.keywordList: begin(.keyword, depth)
        case n.eLocationID where p == n.article:
            if attrs.value("EIdType", equals: "doi") { begin(.doi, depth) }
        case n.articleId where p == n.articleIdList && grandparent == n.pubmedData:
            if attrs.value("IdType", equals: "doi") { begin(.doi, depth) }
            else if attrs.value("IdType", equals: "pmc") { begin(.pmc, depth) }
        default: break
        }
    }

    private func endElement() {
        guard let name = stack.popLast() else { return }
        let depth = stack.count
        if capture != nil, depth == captureDepth { endCapture() }
        if inRecord, depth == recordDepth {
            inRecord = false
            if let doc = finishRecord() { pending.append(.document(doc)) }
        } else if name == n.deleteCitation {
            pending.append(.deletion(Deletion(pmids: deletion, file: file, line: deletionLine)))
            deletion = []
        }
    }

    private func begin(_ field: Field, _ depth: Int) {
        capture = field
        captureDepth = depth
        text.reset()
    }

    private func endCapture() {
        guard let field = capture else { return }
        capture = nil
        captureDepth = -1
        let value = text.string
        switch field {
        case .pmid:
            guard let id = Int(value), id > 0 else {
                stop(.badRecord(file: file, line: line, message: "PMID is not a positive number: \"\(value.prefix(40))\""))
                return
            }
            record.pmid = id
            lastPMID = id
        case .deletePMID:
            if let id = Int(value) { deletion.append(id) }
        case .title: record.title = value
        case .abstract: record.sections.append((record.label, value))
        case .journal: record.journal = value
        case .iso: record.iso = value
        case .year: if record.year == nil { record.year = Int(value) }
        case .medlineDate: if record.year == nil { record.year = PubMedDate.firstYear(in: value) }
        case .language: if record.language == nil { record.language = value }
        case .pubType: record.pubTypes.append(value)
        case .descriptor: if !record.mesh.isEmpty { record.mesh[record.mesh.count - 1].descriptor = value }
        case .qualifier: if !record.mesh.isEmpty { record.mesh[record.mesh.count - 1].qualifiers.append(value) }
        case .keyword: if !value.isEmpty { record.keywords.append(value) }
        case .doi: if record.doi == nil, !value.isEmpty { record.doi = value }
        case .pmc: if record.pmc == nil, !value.isEmpty { record.pmc = value }
        }
    }

    private func stop(_ e: IngestError) {
        if error == nil { error = e }
        xmlStopParser(ctxt)
    }

    private func finishRecord() -> Document? {
        guard let pmid = record.pmid else {
            stop(.badRecord(file: file, line: record.line, message: "record without a PMID (after PMID \(lastPMID.map(String.init) ?? "none"))"))
            return nil
        }
        var doc = Document(key: String(pmid), source: .pubmed, pmid: pmid, version: record.version, title: record.title,
                           journal: record.journal, journalAbbrev: record.iso, year: record.year, language: record.language,
                           publicationTypes: record.pubTypes, mesh: record.mesh, keywords: record.keywords,
                           doi: record.doi, pmcid: record.pmc, file: file, line: record.line)
        doc.setSections(record.sections)
        return doc
    }
}

enum PubMedDate {
    /// The first plausible year (1800–2199) in a `MedlineDate` such as "1998 Dec-1999 Jan".
    static func firstYear(in s: String) -> Int? {
        var run = 0, value = 0
        for b in s.utf8 {
            if b >= 48 && b <= 57 {
                run += 1; value = value * 10 + Int(b - 48)
                if run == 4, value >= 1800, value < 2200 { return value }
            } else { run = 0; value = 0 }
        }
        return nil
    }
}
