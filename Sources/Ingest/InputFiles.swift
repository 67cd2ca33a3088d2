import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The formats the ingester reads, chosen by file extension (and, for `.xml`, by a look at
/// the root element).
public enum InputFormat: String, Sendable, Codable {
    case pubmed, jats, text, jsonl

    /// A reader for this format.
    public var reader: any DocumentReader {
        switch self {
        case .pubmed: return PubMedReader()
        case .jats: return JATSReader()
        case .text: return TextReader()
        case .jsonl: return JSONLReader()
        }
    }

    /// The format of `path` from its name, or nil if it is not ingestible.
    public static func of(path: String) -> InputFormat? {
        let lower = path.lowercased()
        if lower.hasSuffix(".nxml") || lower.hasSuffix(".nxml.gz") { return .jats }
        if lower.hasSuffix(".xml") || lower.hasSuffix(".xml.gz") { return sniffXML(path) }
        if lower.hasSuffix(".txt") || lower.hasSuffix(".md") || lower.hasSuffix(".markdown") { return .text }
        if lower.hasSuffix(".jsonl") { return .jsonl }
        return nil
    }

    /// `.xml` is PubMed unless its first 16 KiB show a JATS `<article` root and no PubMed root.
    private static func sniffXML(_ path: String) -> InputFormat {
        guard let src = try? ByteSource(file: path) else { return .pubmed }
        defer { src.cancel() }
        guard case let .bytes(b, _) = src.next() else { return .pubmed }
        let head = String(decoding: b.prefix(16384), as: UTF8.self)
        if head.contains("<PubmedArticleSet") || head.contains("<MedlineCitationSet") { return .pubmed }
        return head.contains("<article") ? .jats : .pubmed
    }
}

/// One file to ingest.
public struct InputFile: Sendable, Equatable {
    public var path: String
    public var format: InputFormat
    public var size: Int
    public var mtime: Int
}

extension Ingester {
    /// Expands files, directories (recursively, sorted) and glob patterns into ingestible files.
    /// - Throws: ``IngestError/cannotOpen(file:reason:)`` for a missing path or an explicitly named
    ///   file of unknown type; ``IngestError/noInputs(path:)`` when a directory or glob has none.
    public static func expand(_ paths: [String]) throws -> [InputFile] {
        var out: [InputFile] = []
        var seen = Set<String>()
        func add(_ path: String, explicit: Bool) throws {
            guard let format = InputFormat.of(path: path) else {
                if explicit {
                    throw IngestError.cannotOpen(file: path, reason: "unsupported file type (expected .xml, .xml.gz, .nxml, .txt, .md, .jsonl)")
                }
                return
            }
            var st = stat()
            guard stat(path, &st) == 0 else { throw IngestError.cannotOpen(file: path, reason: String(cString: strerror(errno))) }
            if seen.insert(path).inserted {
                out.append(InputFile(path: path, format: format, size: Int(st.st_size), mtime: Int(st.st_mtim.tv_sec)))
            }
        }
        for path in paths {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                if isDir.boolValue {
                    let before = out.count
                    let items = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
                    for rel in items.sorted() {
                        let full = (path as NSString).appendingPathComponent(rel)
                        var d: ObjCBool = false
                        if FileManager.default.fileExists(atPath: full, isDirectory: &d), !d.boolValue {
                            try add(full, explicit: false)
                        }
                    }
                    if out.count == before { throw IngestError.noInputs(path: path) }
                } else {
                    try add(path, explicit: true)
                }
            } else if path.contains("*") || path.contains("?") || path.contains("[") {
                var g = glob_t()
                defer { globfree(&g) }
                guard glob(path, 0, nil, &g) == 0 else { throw IngestError.noInputs(path: path) }
                let before = out.count
                for i in 0..<Int(g.gl_pathc) {
                    if let p = g.gl_pathv[i] { try add(String(cString: p), explicit: false) }
                }
                if out.count == before { throw IngestError.noInputs(path: path) }
            } else {
                throw IngestError.cannotOpen(file: path, reason: "no such file or directory")
            }
        }
        return out
    }
}
