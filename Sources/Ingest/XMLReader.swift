import CLibXML2
import CZlib
#if canImport(Glibc)
import Glibc
#endif

/// A streaming XML reader over libxml2's `xmlTextReader` (pull API): the file is never loaded whole.
///
/// Input goes through zlib's `gzread`, which reads plain and gzip files alike, so a truncated
/// `.gz` is reported as such and ``bytesRead`` gives progress in on-disk bytes. Network access and DTD loading are off,
/// so a hostile file cannot reach out or expand external entities. Element names are compared
/// by pointer against names interned in the reader's dictionary (``intern(_:)``), which avoids a
/// string comparison per node on the hot path.
final class XMLReader {
    typealias Name = UnsafePointer<xmlChar>

    let file: String
    private var reader: xmlTextReaderPtr!
    private let gz: gzFile
    /// The first error libxml2 or zlib reported, with its position.
    private(set) var firstError: (line: Int, column: Int, message: String)?
    private var inputError: String?

    /// Opens `file` (plain or gzip XML) for streaming.
    /// - Throws: ``IngestError/cannotOpen(file:reason:)`` when the file is missing or unreadable.
    init(file: String) throws {
        self.file = file
        _ = try regularFileStatus(file)
        guard let g = gzopen(file, "rb") else {
            throw IngestError.cannotOpen(file: file, reason: String(cString: strerror(errno)))
        }
        gzbuffer(g, 1 << 18)
        gz = g
        let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_COMPACT.rawValue | XML_PARSE_NOCDATA.rawValue)
        let me = Unmanaged.passUnretained(self).toOpaque()
        guard let r = xmlReaderForIO({ ctx, buffer, len in
            guard let ctx, let buffer else { return -1 }
            let me = Unmanaged<XMLReader>.fromOpaque(ctx).takeUnretainedValue()
            let n = gzread(me.gz, buffer, UInt32(max(len, 0)))
            if n <= 0 {
                var errnum: Int32 = 0
                let msg = gzerror(me.gz, &errnum)
                if errnum != Z_OK {
                    let text = msg.map { String(cString: $0) } ?? "read error"
                    me.inputError = errnum == Z_BUF_ERROR ? "truncated gzip (\(text))" : "gzip: \(text)"
                    return -1
                }
            }
            return n
        }, nil, me, file, nil, options) else {
            gzclose(g)
            throw IngestError.cannotOpen(file: file, reason: "libxml2 could not open it")
        }
        reader = r
        // libxml2 reports input-conversion and I/O errors ("encoding error : input conversion
        // failed") through its per-thread global handler, which prints to stderr; a library must
        // not print. This reader's errors come from its own handler below and the read status.
        xmlSetStructuredErrorFunc(nil, { _, _ in })
        xmlTextReaderSetStructuredErrorHandler(r, { arg, error in
            guard let arg, let error else { return }
            let me = Unmanaged<XMLReader>.fromOpaque(arg).takeUnretainedValue()
            guard me.firstError == nil, error.pointee.level.rawValue >= XML_ERR_ERROR.rawValue else { return }
            var msg = error.pointee.message.map { String(cString: $0) } ?? "unknown error"
            while msg.last == "\n" { msg.removeLast() }
            me.firstError = (Int(error.pointee.line), Int(error.pointee.int2), msg)
        }, me)
    }

    /// Bytes of the file (compressed, for `.gz`) consumed so far.
    var bytesRead: Int { Int(gzoffset(gz)) }

    deinit {
        xmlFreeTextReader(reader)
        gzclose(gz)
    }

    /// Interns `name` in the reader's dictionary; compare the result with ``name`` by pointer.
    func intern(_ name: String) -> Name {
        xmlTextReaderConstString(reader, name)
    }

    /// Advances to the next node.
    /// - Returns: `false` at the end of the document.
    /// - Throws: ``IngestError/malformedXML(file:line:column:message:pmid:)`` on a parse error
    ///   (including a truncated gzip stream, which libxml2 sees as premature end of data).
    func read(pmid: Int? = nil) throws -> Bool {
        let rc = xmlTextReaderRead(reader)
        if rc == 1 { return true }
        if rc == 0, firstError == nil { return false }
        var e = firstError ?? (line, column, "parse error")
        if let inputError { e.message = inputError + (firstError.map { "; " + $0.message } ?? "") }
        throw IngestError.malformedXML(file: file, line: e.line, column: e.column, message: e.message, pmid: pmid)
    }

    var nodeType: Int32 { xmlTextReaderNodeType(reader) }
    var depth: Int32 { xmlTextReaderDepth(reader) }
    var isEmptyElement: Bool { xmlTextReaderIsEmptyElement(reader) == 1 }
    /// The interned local name of the current node.
    var name: Name? { xmlTextReaderConstLocalName(reader) }
    var nameString: String { name.map { String(cString: $0) } ?? "" }
    /// The text of a text node (entities and character references already decoded).
    var value: Name? { xmlTextReaderConstValue(reader) }
    var line: Int { Int(xmlTextReaderGetParserLineNumber(reader)) }
    /// The line where the current node starts (``line`` is where the parser has read up to).
    var nodeLine: Int {
        guard let node = xmlTextReaderCurrentNode(reader) else { return line }
        let n = Int(xmlGetLineNo(node))
        return n > 0 ? n : line
    }
    var column: Int { Int(xmlTextReaderGetParserColumnNumber(reader)) }

    /// The value of attribute `name` on the current element, or nil.
    func attribute(_ name: String) -> String? {
        guard let v = xmlTextReaderGetAttribute(reader, name) else { return nil }
        defer { free(v) }  // xmlFree is malloc's free unless an app replaces it
        return String(cString: v)
    }

    /// Whether attribute `name` equals `expected` (no String built).
    func attribute(_ name: String, equals expected: String) -> Bool {
        guard let v = xmlTextReaderGetAttribute(reader, name) else { return false }
        defer { free(v) }  // xmlFree is malloc's free unless an app replaces it
        return strcmp(UnsafeRawPointer(v).assumingMemoryBound(to: CChar.self), expected) == 0
    }
}

/// Node types of `xmlTextReaderNodeType` (libxml2's `xmlReaderTypes`).
enum XMLNode {
    static let element: Int32 = 1
    static let text: Int32 = 3
    static let cdata: Int32 = 4
    static let whitespace: Int32 = 13
    static let significantWhitespace: Int32 = 14
    static let endElement: Int32 = 15
}

/// Collects text as UTF-8 bytes with whitespace normalised: runs of XML whitespace become one
/// space, leading and trailing whitespace is dropped.
///
/// A buffer holds at most ``maxBytes``: past that it stops growing and sets ``overflowed``, which
/// the readers turn into an error (a few hundred KB of gzip can inflate to gigabytes of one text).
struct TextBuffer {
    /// The most text one field or paragraph may hold: 16 MiB, far above any real abstract or paragraph.
    static let maxBytes = 16 << 20

    private(set) var bytes: [UInt8] = []
    private var pendingSpace = false
    /// Text was refused because the buffer would pass ``maxBytes``.
    private(set) var overflowed = false

    init() { bytes.reserveCapacity(4096) }

    var isEmpty: Bool { bytes.isEmpty }

    mutating func reset() { bytes.removeAll(keepingCapacity: true); pendingSpace = false; overflowed = false }

    /// Appends a NUL-terminated UTF-8 string.
    mutating func append(_ p: UnsafePointer<xmlChar>) {
        guard !overflowed, bytes.count + strlen(UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self)) < Self.maxBytes else {
            overflowed = true
            return
        }
        var i = 0
        while true {
            let c = p[i]
            if c == 0 { break }
            if c == 0x20 || c == 0x0A || c == 0x09 || c == 0x0D {
                pendingSpace = !bytes.isEmpty
            } else {
                if pendingSpace { bytes.append(0x20); pendingSpace = false }
                bytes.append(c)
            }
            i += 1
        }
    }

    /// Appends `count` UTF-8 bytes.
    mutating func append(_ p: UnsafePointer<UInt8>, count: Int) {
        guard !overflowed, bytes.count + count < Self.maxBytes else {
            overflowed = true
            return
        }
        for i in 0..<count {
            let c = p[i]
            if c == 0x20 || c == 0x0A || c == 0x09 || c == 0x0D {
                pendingSpace = !bytes.isEmpty
            } else {
                if pendingSpace { bytes.append(0x20); pendingSpace = false }
                bytes.append(c)
            }
        }
    }

    /// Marks a word boundary (e.g. between block elements) without adding text.
    mutating func separate() { if !bytes.isEmpty { pendingSpace = true } }

    var string: String { String(decoding: bytes, as: UTF8.self) }
}
