#if canImport(Glibc)
import Glibc
#endif

/// Reads a plain-text or Markdown file (`.txt`, `.md`, `.markdown`) as one ``Document``.
///
/// - **key**: the file name without its directory ("notes.md"), so keys are unique only within
///   one directory.
/// - **title**: the text of the first level-1 ATX heading (`# Title`), else the file name without
///   its extension.
/// - **sections**: split at ATX headings (`#` to `######`, up to three leading spaces, a space or
///   the end of the line after the hashes; a closing run of `#` is dropped). The heading text is the
///   section name; text before the first heading is "text". Lines inside fenced code blocks
///   (```` ``` ```` or `~~~`) are never headings. Setext headings (`Title` over `=====`) are plain text.
/// - **text**: each section's lines as written (Markdown syntax is kept), with trailing whitespace
///   cut, runs of blank lines collapsed to one, and blank lines at either end dropped. CRLF and CR
///   line ends become LF; a UTF-8 byte-order mark is dropped; invalid UTF-8 bytes become U+FFFD.
///
/// The same rules apply to `.txt` files: a plain text without `#` lines is one section "text".
/// A file with no text outside its headings (e.g. an empty file) yields no document.
/// The file is read whole: one text file is one document, and a document is held in memory anyway.
public struct TextReader: DocumentReader {
    public init() {}

    /// Emits the file's document, if it has any text.
    /// - Throws: ``IngestError/cannotOpen(file:reason:)``; whatever `emit` throws.
    public func read(file: String, emit: (IngestItem) throws -> Void) throws {
        let bytes = try Self.readAll(file)
        if let doc = Self.document(file: file, bytes: bytes) { try emit(.document(doc)) }
    }

    // MARK: Parsing

    /// Builds the document of `file` from its bytes, or nil when it has no text.
    private static func document(file: String, bytes: [UInt8]) -> Document? {
        let name = String(file.split(separator: "/").last ?? Substring(file))
        var title: String?
        var sections: [(name: String, lines: [Substring])] = [("text", [])]
        var fence: Character?  // the fence character of an open code block
        for line in lines(of: decode(bytes)) {
            if let f = fenceMarker(line) {
                if fence == nil { fence = f } else if fence == f { fence = nil }
            } else if fence == nil, let (level, text) = heading(line) {
                if level == 1, title == nil, !text.isEmpty { title = text }
                sections.append((text.isEmpty ? "text" : text, []))
                continue
            }
            sections[sections.count - 1].lines.append(line)
        }
        var doc = Document(key: name, source: .text, title: title ?? stem(name), file: file, line: 1)
        doc.setSections(sections.map { ($0.name, tidy($0.lines)) })
        return doc.text.isEmpty ? nil : doc
    }

    /// The bytes as a string: invalid UTF-8 replaced by U+FFFD, a leading byte-order mark dropped.
    private static func decode(_ bytes: [UInt8]) -> String {
        let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? bytes[3...] : bytes[...]
        return String(decoding: body, as: UTF8.self)
    }

    /// Lines split at LF, CRLF or CR, without their terminators.
    private static func lines(of text: String) -> [Substring] {
        // "\r\n" is a single Character in Swift, so one split handles all three line ends.
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
    }

    /// `(level, text)` when `line` is an ATX heading.
    private static func heading(_ line: Substring) -> (level: Int, text: String)? {
        var s = line.drop(while: { $0 == " " })
        guard line.count - s.count <= 3 else { return nil }
        let level = s.prefix(while: { $0 == "#" }).count
        guard (1...6).contains(level) else { return nil }
        s = s.dropFirst(level)
        guard s.isEmpty || s.first == " " || s.first == "\t" else { return nil }
        var text = s.trimmingWhitespace()
        // A closing sequence: spaces then only '#' to the end ("## Methods ##").
        let closing = text.reversed().prefix(while: { $0 == "#" }).count
        if closing > 0 {
            let rest = text.dropLast(closing)
            if rest.isEmpty || rest.last == " " || rest.last == "\t" { text = rest.trimmingWhitespace() }
        }
        return (level, String(text))
    }

    /// The fence character when `line` opens or closes a fenced code block (```` ``` ```` or `~~~`).
    private static func fenceMarker(_ line: Substring) -> Character? {
        let s = line.drop(while: { $0 == " " })
        guard line.count - s.count <= 3, let c = s.first, c == "`" || c == "~" else { return nil }
        return s.prefix(while: { $0 == c }).count >= 3 ? c : nil
    }

    /// A section's lines as one string: trailing whitespace cut, blank runs collapsed, ends trimmed.
    private static func tidy(_ lines: [Substring]) -> String {
        var out: [Substring] = []
        for line in lines {
            var l = line
            while let c = l.last, c == " " || c == "\t" { l.removeLast() }
            if l.isEmpty && (out.isEmpty || out.last!.isEmpty) { continue }
            out.append(l)
        }
        while out.last?.isEmpty == true { out.removeLast() }
        return out.joined(separator: "\n")
    }

    /// "notes.tar.md" -> "notes.tar"; a name without an extension (or a dot file) is kept.
    private static func stem(_ name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }

    // MARK: File

    /// All bytes of `file`.
    /// - Throws: ``IngestError/cannotOpen(file:reason:)`` when it is missing, not a regular file or unreadable.
    private static func readAll(_ file: String) throws -> [UInt8] {
        var st = stat()
        guard stat(file, &st) == 0 else {
            throw IngestError.cannotOpen(file: file, reason: String(cString: strerror(errno)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw IngestError.cannotOpen(file: file, reason: "not a regular file")
        }
        guard let fp = fopen(file, "rb") else {
            throw IngestError.cannotOpen(file: file, reason: String(cString: strerror(errno)))
        }
        defer { fclose(fp) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(st.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, fp) }
            if n > 0 { bytes.append(contentsOf: chunk[..<n]) }
            if n < chunk.count {
                if ferror(fp) != 0 { throw IngestError.cannotOpen(file: file, reason: "read error") }
                break
            }
        }
        return bytes
    }
}

private extension Substring {
    /// Without spaces and tabs at either end.
    func trimmingWhitespace() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
