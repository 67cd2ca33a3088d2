import CZlib
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Streams the bytes of a plain or gzip file in chunks, decompressing on a background thread so
/// that inflating overlaps with parsing.
///
/// zlib's `gzread` reads plain files unchanged, so one code path serves `.xml` and `.xml.gz`.
/// A truncated or corrupt gzip stream surfaces as ``IngestError/cannotOpen`` / ``ByteSource/Chunk/failure(_:)``
/// after the last good bytes.
final class ByteSource: @unchecked Sendable {
    enum Chunk {
        case bytes([UInt8], compressedOffset: Int)
        case end(compressedOffset: Int)
        case failure(String)
    }

    let file: String
    /// On-disk size of the file.
    let size: Int
    private let gz: gzFile
    private let cond = NSCondition()
    private var queue: [Chunk] = []
    private var stopped = false
    private var finished = false
    private static let chunkSize = 1 << 18
    private static let depth = 8

    /// Opens `file` and starts the reading thread.
    /// - Throws: ``IngestError/cannotOpen(file:reason:)``.
    init(file: String) throws {
        self.file = file
        let st = try regularFileStatus(file)
        guard let g = gzopen(file, "rb") else {
            throw IngestError.cannotOpen(file: file, reason: String(cString: strerror(errno)))
        }
        gzbuffer(g, UInt32(ByteSource.chunkSize))
        gz = g
        size = Int(st.st_size)
        let thread = Thread { [self] in self.produce() }
        thread.name = "selfspec-inflate"
        thread.start()
    }

    deinit { gzclose(gz) }

    /// The next chunk; blocks until one is ready. After `.end` or `.failure` it returns the same again.
    func next() -> Chunk {
        cond.lock()
        defer { cond.unlock() }
        while queue.isEmpty && !finished { cond.wait() }
        if queue.isEmpty { return .end(compressedOffset: size) }
        let c = queue.removeFirst()
        cond.signal()
        return c
    }

    /// Stops the reading thread early (the consumer gave up).
    func cancel() {
        cond.lock()
        stopped = true
        cond.broadcast()
        while !finished { cond.wait() }
        cond.unlock()
    }

    private func push(_ chunk: Chunk) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        while queue.count >= ByteSource.depth && !stopped { cond.wait() }
        if stopped { return false }
        queue.append(chunk)
        cond.broadcast()
        return true
    }

    private func produce() {
        defer {
            cond.lock(); finished = true; cond.broadcast(); cond.unlock()
        }
        while true {
            var buf = [UInt8](repeating: 0, count: ByteSource.chunkSize)
            let n = buf.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n < 0 || (n == 0 && gzErrorText() != nil) {
                _ = push(.failure(gzErrorText() ?? "read error"))
                return
            }
            if n == 0 {
                _ = push(.end(compressedOffset: size))
                return
            }
            buf.removeLast(buf.count - Int(n))
            if !push(.bytes(buf, compressedOffset: Int(gzoffset(gz)))) { return }
        }
    }

    private func gzErrorText() -> String? {
        var errnum: Int32 = 0
        let msg = gzerror(gz, &errnum)
        guard errnum != Z_OK else { return nil }
        let text = msg.map { String(cString: $0) } ?? "error \(errnum)"
        return errnum == Z_BUF_ERROR ? "truncated gzip stream (\(text))" : "gzip: \(text)"
    }
}

/// `stat` of `file`, which must exist and be a regular file (readers call this before opening).
/// - Throws: ``IngestError/cannotOpen(file:reason:)`` naming the file and the reason.
func regularFileStatus(_ file: String) throws -> stat {
    var st = stat()
    guard stat(file, &st) == 0 else {
        throw IngestError.cannotOpen(file: file, reason: String(cString: strerror(errno)))
    }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
        throw IngestError.cannotOpen(file: file, reason: "not a regular file")
    }
    return st
}
