/// Reads one file into documents (and, for PubMed update files, deletions), in file order.
///
/// Readers stream: items are handed to `emit` as soon as they are complete, so items emitted
/// before an error is thrown are valid and may be stored.
public protocol DocumentReader: Sendable {
    /// Streams the items of `file` to `emit`.
    /// - Throws: ``IngestError`` naming the file, line and record on bad input; whatever `emit` throws.
    func read(file: String, emit: (IngestItem) throws -> Void) throws
}
