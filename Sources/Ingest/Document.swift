/// The documents and passages that flow from readers to the corpus store.
///
/// A reader (PubMed/MEDLINE, PMC JATS, plain text, JSONL) turns a file into ``Document`` values.
/// A document's searchable content is one string, ``Document/text``, made of its sections in order
/// (joined by a blank line); each ``Section`` names a range of it. The chunker cuts that text into
/// ``Passage`` values whose offsets point back into it, so provenance is exact:
/// `passage.text == document.text[start..<end]` (offsets in Unicode scalars, as Python indexes `str`).

/// A MeSH heading of a PubMed record.
public struct MeshHeading: Sendable, Equatable, Codable {
    /// Descriptor name, e.g. "Neoplasms".
    public var descriptor: String
    /// Descriptor unique id, e.g. "D009369".
    public var ui: String
    /// Whether the descriptor (or any of its qualifiers) is a major topic.
    public var majorTopic: Bool
    /// Qualifier names, e.g. ["drug therapy"].
    public var qualifiers: [String]

    public init(descriptor: String, ui: String, majorTopic: Bool, qualifiers: [String] = []) {
        self.descriptor = descriptor
        self.ui = ui
        self.majorTopic = majorTopic
        self.qualifiers = qualifiers
    }
}

/// A named range of a document's text, e.g. "BACKGROUND" or "Methods / Cell culture".
public struct Section: Sendable, Equatable, Codable {
    public var name: String
    /// Start offset in ``Document/text``, in Unicode scalars.
    public var start: Int
    /// End offset (exclusive) in ``Document/text``, in Unicode scalars.
    public var end: Int

    public init(name: String, start: Int, end: Int) {
        self.name = name
        self.start = start
        self.end = end
    }
}

/// Which reader produced a document.
public enum DocumentSource: String, Sendable, Codable {
    case pubmed, jats, text, jsonl
}

/// One document with its metadata, ready to be chunked and stored.
public struct Document: Sendable, Equatable {
    /// External id, unique in a corpus: the PMID for PubMed records, the JSONL `id`,
    /// the PMC id (or PMID) for JATS, the file name for text files.
    public var key: String
    public var source: DocumentSource
    public var pmid: Int?
    /// PubMed `PMID/@Version` (1 when absent).
    public var version: Int
    public var title: String
    /// All searchable text, the sections joined by "\n\n".
    public var text: String
    public var sections: [Section]
    public var journal: String?
    public var journalAbbrev: String?
    public var year: Int?
    public var language: String?
    public var publicationTypes: [String]
    public var mesh: [MeshHeading]
    public var keywords: [String]
    public var doi: String?
    public var pmcid: String?
    /// Where the document came from: file path and line of its start element.
    public var file: String
    public var line: Int

    public init(key: String, source: DocumentSource, pmid: Int? = nil, version: Int = 1, title: String,
                text: String = "", sections: [Section] = [], journal: String? = nil, journalAbbrev: String? = nil,
                year: Int? = nil, language: String? = nil, publicationTypes: [String] = [],
                mesh: [MeshHeading] = [], keywords: [String] = [], doi: String? = nil, pmcid: String? = nil,
                file: String = "", line: Int = 0) {
        self.key = key; self.source = source; self.pmid = pmid; self.version = version; self.title = title
        self.text = text; self.sections = sections; self.journal = journal; self.journalAbbrev = journalAbbrev
        self.year = year; self.language = language; self.publicationTypes = publicationTypes; self.mesh = mesh
        self.keywords = keywords; self.doi = doi; self.pmcid = pmcid; self.file = file; self.line = line
    }
}

extension Document {
    /// Builds ``text`` and ``sections`` from (name, text) pairs, skipping empty ones.
    public mutating func setSections(_ parts: [(name: String, text: String)]) {
        var out = ""
        var offset = 0
        var sections: [Section] = []
        for (name, body) in parts where !body.isEmpty {
            if !out.isEmpty { out += "\n\n"; offset += 2 }
            let n = body.unicodeScalars.count
            sections.append(Section(name: name, start: offset, end: offset + n))
            out += body
            offset += n
        }
        self.text = out
        self.sections = sections
    }
}

/// A piece of a document sized for the embedder, with exact provenance.
public struct Passage: Sendable, Equatable {
    /// Position of the passage within its document (0, 1, ...).
    public var ordinal: Int
    /// Section name at the passage start; "A–B" when it spans sections.
    public var section: String
    /// Offsets in ``Document/text`` (Unicode scalars, end exclusive).
    public var start: Int
    public var end: Int
    public var text: String

    public init(ordinal: Int, section: String, start: Int, end: Int, text: String) {
        self.ordinal = ordinal; self.section = section; self.start = start; self.end = end; self.text = text
    }
}

/// A PubMed update file's instruction to remove citations.
public struct Deletion: Sendable, Equatable {
    public var pmids: [Int]
    public var file: String
    public var line: Int
}

/// What a reader yields, in file order.
public enum IngestItem: Sendable {
    case document(Document)
    case deletion(Deletion)
}
