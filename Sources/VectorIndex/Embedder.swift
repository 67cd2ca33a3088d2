/// Turns texts into fixed-length vectors whose dot product measures semantic similarity.
///
/// Implementations return unit-length vectors (so dot product = cosine) in input order, and
/// give the same vector for a text whether it is embedded alone or in a batch (up to float
/// rounding, < 1e-5).
public protocol Embedder: Sendable {
    /// Length of every vector.
    var dimension: Int { get }
    /// Identifies the model, so vectors from different models are never mixed in one index.
    var modelID: String { get }
    /// Embeds a batch of texts.
    /// - Parameter texts: the texts; empty strings are allowed.
    /// - Returns: one `dimension`-long unit vector per text, in input order.
    func embed(_ texts: [String]) throws -> [[Float]]
}

extension Embedder {
    /// Embeds one text.
    /// - Parameter text: the text.
    /// - Returns: its `dimension`-long unit vector.
    public func embed(_ text: String) throws -> [Float] {
        try embed([text])[0]
    }
}
