import Foundation
import XCTest

extension XCTestCase {
    /// Removes `path` and its side files (see ``removeWithSideFiles(_:)``) after the current test.
    public func removeAfterTest(_ path: String) {
        addTeardownBlock { removeWithSideFiles(path) }
    }
}

/// Removes `path` and every sibling whose name starts with its last component (SQLite's
/// `-wal`, `-shm` and `-journal` files, and the like).
public func removeWithSideFiles(_ path: String) {
    let fm = FileManager.default
    let url = URL(fileURLWithPath: path)
    let name = url.lastPathComponent
    guard !name.isEmpty, name != "/", name != "." else { return }
    let dir = url.deletingLastPathComponent()
    try? fm.removeItem(at: url)
    for sibling in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where sibling.hasPrefix(name) {
        try? fm.removeItem(at: dir.appendingPathComponent(sibling))
    }
}

extension XCTestCase {
    /// A fresh directory under the temporary directory, removed with its contents after the
    /// current test.
    public func makeTemporaryDirectory(_ prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}
