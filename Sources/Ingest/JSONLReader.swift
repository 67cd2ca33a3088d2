import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads JSON Lines (`.jsonl`): one document per line, `{"id": …, "title": …, "text": …}`.
///
/// - `id` (required): a string or an integer; it is the key. An id of only digits (not 0) also sets `pmid`.
/// - `text` (required): a string, the document's one section "text".
/// - `title` (optional): a string; absent or null gives "".
/// - `year` (optional): an integer or a string of digits; `journal` (optional): a string. These two
///   are used when well-formed and ignored otherwise, since they are extras rather than the record.
/// - Any other field is ignored.
///
/// The file is streamed line by line, never read whole, and a line longer than `maxLineBytes`
/// is refused once that many bytes are read (a file with no line end must not be read into memory
/// whole). Blank lines are skipped; line numbers count every line, blank or not, from 1. CRLF line
/// ends and a UTF-8 byte-order mark on the first line are accepted.
public struct JSONLReader: DocumentReader {
    /// The default bound on one line: 16 MiB, far above any article's full text.
    public static let defaultMaxLineBytes = 16 << 20

    /// Lines longer than this (without the line end) throw ``IngestError/badJSONLine(file:line:message:)``.
    public let maxLineBytes: Int

    public init(maxLineBytes: Int = JSONLReader.defaultMaxLineBytes) {
        self.maxLineBytes = maxLineBytes
    }

    /// Streams one document per non-blank line to `emit`.
    /// - Throws: ``IngestError/badJSONLine(file:line:message:)`` naming the line and what is wrong
    ///   (invalid JSON, not an object, a missing field, a wrong type); documents of the lines before
    ///   it have been emitted. ``IngestError/cannotOpen(file:reason:)``; whatever `emit` throws.
    public func read(file: String, emit: (IngestItem) throws -> Void) throws {
        let lines = try LineReader(file: file, maxLineBytes: maxLineBytes)
        let decoder = JSONDecoder()
        while let line = try lines.next() {
            if line.bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let record: Record
            do {
                record = try decoder.decode(Record.self, from: Data(line.bytes))
            } catch let problem as Problem {
                throw IngestError.badJSONLine(file: file, line: line.number, message: problem.message)
            } catch let error as DecodingError {
                throw IngestError.badJSONLine(file: file, line: line.number,
                                              message: Self.describe(error, bytes: line.bytes))
            }
            try emit(.document(record.document(file: file, line: line.number)))
        }
    }

    /// A readable message for what `JSONDecoder` found wrong with a whole line.
    private static func describe(_ error: DecodingError, bytes: [UInt8]) -> String {
        switch error {
        case let .dataCorrupted(context):
            // JSONDecoder only says "not valid JSON"; JSONSerialization says where (on this error path only).
            var detail = context.debugDescription
            do { _ = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) } catch {
                detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? detail
            }
            return "invalid JSON: \(detail)"
        case .typeMismatch:
            return "expected a JSON object {\"id\", \"title\", \"text\"}"
        default:  // the fields themselves are checked by Record, which throws a Problem
            return "\(error)"
        }
    }
}

// MARK: - Record

/// What is wrong with a line that is valid JSON, in words for the user.
private struct Problem: Error {
    let message: String
}

/// One line's fields, checked field by field so that errors name the field.
private struct Record: Decodable {
    var id: String
    var title: String
    var text: String
    var year: Int?
    var journal: String?

    private enum Key: String, CodingKey { case id, title, text, year, journal }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        // id: a string or an integer.
        if let s = try? c.decode(String.self, forKey: .id) {
            id = s
        } else if let i = try? c.decode(Int.self, forKey: .id) {
            id = String(i)
        } else if !c.contains(.id) || (try? c.decodeNil(forKey: .id)) == true {
            throw Problem(message: "missing \"id\"")
        } else {
            throw Problem(message: "\"id\" must be a string or an integer")
        }
        guard !id.isEmpty else { throw Problem(message: "\"id\" is empty") }
        // text: a string.
        guard c.contains(.text), (try? c.decodeNil(forKey: .text)) != true else {
            throw Problem(message: "missing \"text\" (id \(id))")
        }
        guard let t = try? c.decode(String.self, forKey: .text) else {
            throw Problem(message: "\"text\" must be a string (id \(id))")
        }
        text = t
        // title: a string, or absent/null.
        if (try? c.decodeNil(forKey: .title)) ?? true {
            title = ""
        } else if let t = try? c.decode(String.self, forKey: .title) {
            title = t
        } else {
            throw Problem(message: "\"title\" must be a string (id \(id))")
        }
        // Optional extras, ignored when malformed.
        if let y = try? c.decode(Int.self, forKey: .year) {
            year = y
        } else if let s = try? c.decode(String.self, forKey: .year) {
            year = Int(s.trimmingCharacters(in: .whitespaces))
        }
        journal = try? c.decode(String.self, forKey: .journal)
    }

    func document(file: String, line: Int) -> Document {
        let pmid = id.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ? Int(id).flatMap { $0 > 0 ? $0 : nil } : nil
        var doc = Document(key: id, source: .jsonl, pmid: pmid, title: title, journal: journal, year: year,
                           file: file, line: line)
        doc.setSections([("text", text)])
        return doc
    }
}

// MARK: - Lines

/// Lines of a file, read in 64 KB blocks; a line is copied out only once it ends, and refused as
/// soon as it passes `maxLineBytes`.
private final class LineReader {
    struct Line {
        /// 1-based line number.
        var number: Int
        /// The bytes without the line end (LF or CRLF) and, on line 1, without a UTF-8 byte-order mark.
        var bytes: [UInt8]
    }

    private let file: String
    private let fp: UnsafeMutablePointer<FILE>
    private let maxLineBytes: Int
    private var block = [UInt8](repeating: 0, count: 1 << 16)
    private var start = 0, end = 0
    private var atEOF = false
    private var number = 0

    /// Opens `file` for reading.
    /// - Throws: ``IngestError/cannotOpen(file:reason:)``.
    init(file: String, maxLineBytes: Int) throws {
        self.file = file
        self.maxLineBytes = maxLineBytes
        _ = try regularFileStatus(file)
        guard let fp = fopen(file, "rb") else {
            throw IngestError.cannotOpen(file: file, reason: String(cString: strerror(errno)))
        }
        self.fp = fp
    }

    deinit { fclose(fp) }

    /// The next line, or nil at the end of the file.
    /// - Throws: ``IngestError/cannotOpen(file:reason:)`` on a read error,
    ///   ``IngestError/badJSONLine(file:line:message:)`` for a line longer than `maxLineBytes`.
    func next() throws -> Line? {
        var bytes = [UInt8]()
        var sawAny = false
        while true {
            if start == end {
                if atEOF { break }
                end = block.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, fp) }
                start = 0
                if end == 0 {
                    if ferror(fp) != 0 { throw IngestError.cannotOpen(file: file, reason: "read error after line \(number)") }
                    atEOF = true
                    break
                }
            }
            sawAny = true
            let newline = block[start..<end].firstIndex(of: 0x0A)
            let stop = newline ?? end
            // +1 leaves room for the CR of a CRLF line end, dropped below.
            guard bytes.count + (stop - start) <= maxLineBytes + 1 else {
                throw IngestError.badJSONLine(file: file, line: number + 1,
                                              message: "line longer than \(maxLineBytes) bytes (the limit on one JSONL record)")
            }
            bytes += block[start..<stop]
            start = newline.map { $0 + 1 } ?? end
            if newline != nil { break }
        }
        guard sawAny else { return nil }
        number += 1
        if bytes.last == 0x0D { bytes.removeLast() }
        if bytes.count > maxLineBytes {
            throw IngestError.badJSONLine(file: file, line: number,
                                          message: "line longer than \(maxLineBytes) bytes (the limit on one JSONL record)")
        }
        if number == 1, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        return Line(number: number, bytes: bytes)
    }
}
