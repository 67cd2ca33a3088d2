import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Errors from mapping a file into memory.
public enum MappedFileError: LocalizedError, Equatable, Sendable {
    /// The file is missing, unreadable, not a regular file, or `mmap` failed.
    case cannotOpen(file: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .cannotOpen(file, reason): return "cannot open \(file): \(reason)"
        }
    }
}

/// A read-only, private memory mapping of a whole file; unmapped in `deinit`.
///
/// The mapping is immutable for its lifetime, so it may be read from any thread.
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened with.
    public let path: String
    /// The file size in bytes at open time.
    public let size: Int
    private let base: UnsafeMutableRawPointer?

    /// Maps `path` read-only.
    /// - Parameter path: the file to map.
    /// - Throws: ``MappedFileError/cannotOpen(file:reason:)``.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MappedFileError.cannotOpen(file: path, reason: Self.errnoText()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw MappedFileError.cannotOpen(file: path, reason: Self.errnoText()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw MappedFileError.cannotOpen(file: path, reason: "not a regular file")
        }
        size = Int(st.st_size)
        if size == 0 {
            base = nil  // mmap of zero bytes fails; an empty mapping needs no memory
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw MappedFileError.cannotOpen(file: path, reason: "mmap: " + Self.errnoText())
        }
        base = p
    }

    deinit {
        if let base { munmap(base, size) }
    }

    /// All bytes of the file, valid while `self` is alive.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base.map { UnsafeRawPointer($0) }, count: size)
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
