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
        let modelID = embedder.modelID
        if let m = try body.string("model"), m != modelID, m != Self.embeddingAlias(modelID) {
            throw ServerError.modelNotFound(m)
        }
        guard let inputs = try body.strings("input", maxCount: configuration.maxEmbeddingInputs) else {
            throw ServerError.invalidRequest(message: "'input' is required (a string or an array of strings)", param: "input")
        }
        guard !inputs.isEmpty else { throw ServerError.invalidRequest(message: "'input' is empty", param: "input") }
        let format = try body.string("encoding_format") ?? "float"
        guard format == "float" || format == "base64" else {
            throw ServerError.invalidRequest(message: "'encoding_format' is '\(format)'; expected float or base64", param: "encoding_format")
        }
        if let d = try body.int("dimensions"), d != embedder.dimension {
            throw ServerError.invalidRequest(message: "'dimensions' is \(d); this model gives \(embedder.dimension)", param: "dimensions")
        }
        _ = try body.string("user")
        try body.checkNoUnknownFields()
        var tokens = 0
        for text in inputs {
            if let e = embedder as? MiniLMEmbedder { tokens += e.tokenIDs(text).count } else { tokens += text.split(separator: " ").count }
        }
        let vectors = try await onWorkQueue { try embedder.embed(inputs) }
        let data: [[String: Any]] = vectors.enumerated().map { i, v in
            let embedding: Any = format == "base64"
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
        guard let query = try body.string("query"), !query.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ServerError.invalidRequest(message: "'query' is required (a non-empty string)", param: "query")
        }
        let k = try body.int("k", in: 1...configuration.maxSearchResults) ?? 10
        let denseAvailable = retriever.embedder != nil
        var mode: SearchMode = denseAvailable ? .hybrid : .bm25
        if let m = try body.string("mode") {
            guard let parsed = SearchMode(rawValue: m) else {
                throw ServerError.invalidRequest(message: "'mode' is '\(m)'; expected dense, bm25 or hybrid", param: "mode")
            }
            guard parsed == .bm25 || denseAvailable else {
                throw ServerError.unprocessable(message: "'mode' \(m) needs an embedded corpus; this one has BM25 only", param: "mode")
            }
            mode = parsed
        }
        let filter = try searchFilter(try body.object("filters"))
        try body.checkNoUnknownFields()
        let chosen = mode
        let hits = try await onWorkQueue { try retriever.search(query, k: k, mode: chosen, filter: filter) }
        let data: [[String: Any]] = hits.map { h in
            ["rank": h.rank, "score": h.score, "passage_id": h.passageID, "document_key": h.documentKey,
             "pmid": h.pmid ?? NSNull(), "title": h.title, "section": h.section, "text": h.text,
             "year": h.year ?? NSNull(), "journal": h.journal ?? NSNull()]
        }
        return json(["object": "list", "mode": chosen.rawValue, "data": data])
    }

    /// `filters`: `years` ("2015-2020", "2019", or an integer), `journal`, `mesh`.
    private func searchFilter(_ object: [String: Any]?) throws -> SearchFilter {
        guard let object else { return SearchFilter() }
        var filter = SearchFilter()
        for (key, value) in object {
            switch key {
            case "years":
                if let y = value as? NSNumber, !JSONBody.isBool(y), let year = Int(exactly: y.doubleValue) {
                    filter.years = year...year
                } else if let s = value as? String, let range = Self.parseYears(s) {
                    filter.years = range
                } else {
                    throw ServerError.invalidRequest(message: "'filters.years' must look like \"2015-2020\" or 2019", param: "filters.years")
                }
            case "journal", "mesh":
                guard let s = value as? String else {
                    throw ServerError.invalidRequest(message: "'filters.\(key)' must be a string", param: "filters.\(key)")
                }
                if key == "journal" { filter.journal = s } else { filter.mesh = s }
            default:
                throw ServerError.unknownField("filters.\(key)")
            }
        }
        return filter
    }

    static func parseYears(_ s: String) -> ClosedRange<Int>? {
        let parts = s.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        if parts.count == 1, let a = parts[0] { return a...a }
        if parts.count == 2, let a = parts[0], let b = parts[1], a <= b { return a...b }
        return nil
    }

    /// Runs `work` on the serial work queue.
    func onWorkQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            workQueue.async { continuation.resume(with: Result { try work() }) }
        }
    }
}
