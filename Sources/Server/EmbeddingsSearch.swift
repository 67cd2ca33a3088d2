import Foundation
import Hummingbird
import Ingest
import VectorIndex

/// `POST /v1/embeddings` (MiniLM) and `POST /v1/search` (the corpus retriever).
extension OpenAIServer {
    // MARK: Embeddings

    /// `{"input": string | [string], "model"?, "encoding_format"?: "float" | "base64", "dimensions"?}`
    /// → `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}`.
    /// `base64` is the little-endian float32 bytes (what the `openai` Python client asks for).
    func embeddings(_ request: JSONBody) async throws -> Response {
        var body = request
        guard let embedder else {
            throw ServerError.unavailable("this server was started without an embedding model (--embedder)")
        }
        let request = try EmbeddingsRequest(&body, limits: configuration, modelID: embedder.modelID, dimension: embedder.dimension)
        let inputs = request.inputs, modelID = embedder.modelID
        var tokens = 0
        for text in inputs {
            if let e = embedder as? MiniLMEmbedder { tokens += e.tokenIDs(text).count } else { tokens += text.split(separator: " ").count }
        }
        let vectors = try await onWorkQueue { try embedder.embed(inputs) }
        let data: [[String: Any]] = vectors.enumerated().map { i, v in
            let embedding: Any = request.base64
                ? v.withUnsafeBufferPointer { Data(buffer: $0) }.base64EncodedString()
                : v.map { Double($0) }
            return ["object": "embedding", "index": i, "embedding": embedding]
        }
        return json(["object": "list", "data": data, "model": Self.embeddingAlias(modelID),
                     "usage": ["prompt_tokens": tokens, "total_tokens": tokens]])
    }

    /// The short name of an embedding model id ("sentence-transformers/all-MiniLM-L6-v2" →
    /// "all-MiniLM-L6-v2").
    static func embeddingAlias(_ id: String) -> String {
        id.split(separator: "/").last.map(String.init) ?? id
    }

    // MARK: Search

    /// `{"query", "k"? = 10, "mode"?: "dense" | "bm25" | "hybrid", "filters"?: {"years": "2015-2020",
    /// "journal", "mesh"}}` → `{"object": "list", "mode", "data": [{rank, score, passage_id, pmid, …}]}`.
    func search(_ request: JSONBody) async throws -> Response {
        var body = request
        guard let retriever else {
            throw ServerError.unavailable("this server was started without a corpus (--db)")
        }
        let request = try SearchRequest(&body, limits: configuration, denseAvailable: retriever.embedder != nil)
        let query = request.query, k = request.k, filter = request.filter
        let chosen = request.mode
        let hits = try await onWorkQueue { try retriever.search(query, k: k, mode: chosen, filter: filter) }
        let data: [[String: Any]] = hits.map { h in
            ["rank": h.rank, "score": h.score, "passage_id": h.passageID, "document_key": h.documentKey,
             "pmid": h.pmid ?? NSNull(), "title": h.title, "section": h.section, "text": h.text,
             "year": h.year ?? NSNull(), "journal": h.journal ?? NSNull()]
        }
        return json(["object": "list", "mode": chosen.rawValue, "data": data])
    }

    /// Runs `work` on the serial work queue.
    func onWorkQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            workQueue.async { continuation.resume(with: Result { try work() }) }
        }
    }
}
