import Foundation
import Ingest
import LLM
import VectorIndex

// The body → typed request step of each POST route: everything a route checks before it needs a
// model, the embedder or the corpus. A generation route reads `model` first (an unknown model is
// answered before anything else), then its request; `RequestDecoding` runs the step alone.

// MARK: - Generation options

/// Sampling and output options common to both generation routes (OpenAI names, plus llama.cpp's
/// `top_k`, `min_p`, `repeat_penalty`, `dry_multiplier`, `dry_base`, `dry_allowed_length`).
struct GenerationOptions {
    var maxTokens: Int
    var sampling: SamplingParameters
    var stops: [String]
    var stream: Bool
    var includeUsage: Bool
    /// `repetition_stop`: end a looping answer with `finish_reason: "repetition"` (nil: off).
    var repetitionStop: RepetitionStop?

    /// Reads the options of a request within the server's limits.
    init(_ body: inout JSONBody, limits: OpenAIServer.Configuration) throws {
        let limit = limits.maxTokensLimit
        var maxTokens = try body.int("max_tokens")
        if let m = try body.int("max_completion_tokens") { maxTokens = m }
        if let m = maxTokens, m < 0 || m > limit {
            throw ServerError.invalidRequest(message: "'max_tokens' is \(m); this server allows 0...\(limit)", param: "max_tokens")
        }
        var p = SamplingParameters(temperature: 1, seed: UInt64.random(in: 0...UInt64.max))
        if let t = try body.double("temperature", in: 0...2) { p.temperature = Float(t) }
        if let t = try body.double("top_p", in: 0...1) {
            guard t > 0 else { throw ServerError.invalidRequest(message: "'top_p' must be above 0", param: "top_p") }
            p.topP = Float(t)
        }
        if let k = try body.int("top_k", in: 0...1_000_000) { p.topK = k }
        if let m = try body.double("min_p", in: 0...1) { p.minP = Float(m) }
        if let r = try body.double("repeat_penalty", in: 0.01...10) { p.repetitionPenalty = Float(r) }
        if let f = try body.double("frequency_penalty", in: -2...2) { p.frequencyPenalty = Float(f) }
        // DRY, with llama.cpp server's names.
        if let d = try body.double("dry_multiplier", in: 0...100) { p.dryMultiplier = Float(d) }
        if let d = try body.double("dry_base", in: 1...10) { p.dryBase = Float(d) }
        if let d = try body.int("dry_allowed_length", in: 1...1000) { p.dryAllowedLength = d }
        if let presence = try body.double("presence_penalty", in: -2...2), presence != 0 {
            throw ServerError.invalidRequest(message: "'presence_penalty' is not supported (use frequency_penalty or repeat_penalty)", param: "presence_penalty")
        }
        if let s = try body.int("seed", in: Int.min...Int.max) { p.seed = UInt64(bitPattern: Int64(s)) }
        if let n = try body.int("n"), n != 1 {
            throw ServerError.invalidRequest(message: "'n' must be 1 (one choice per request)", param: "n")
        }
        if let l = body.raw("logprobs"), !((l as? NSNumber).map { JSONBody.isBool($0) && !$0.boolValue } ?? false) {
            throw ServerError.invalidRequest(message: "'logprobs' is not supported", param: "logprobs")
        }
        _ = try body.string("user")
        let stops = try body.strings("stop", maxCount: 16) ?? []
        let stream = try body.bool("stream") ?? false
        var includeUsage = false
        if let o = try body.object("stream_options") {
            for key in o.keys where key != "include_usage" { throw ServerError.unknownField("stream_options.\(key)") }
            if let v = o["include_usage"] {
                guard let b = v as? NSNumber, JSONBody.isBool(b) else {
                    throw ServerError.invalidRequest(message: "'stream_options.include_usage' must be a boolean", param: "stream_options.include_usage")
                }
                includeUsage = b.boolValue
            }
        }
        self.init(maxTokens: maxTokens ?? limits.defaultMaxTokens, sampling: p, stops: stops, stream: stream,
                  includeUsage: includeUsage, repetitionStop: try Self.repetitionStop(&body))
    }

    init(maxTokens: Int, sampling: SamplingParameters, stops: [String], stream: Bool, includeUsage: Bool,
         repetitionStop: RepetitionStop?) {
        self.maxTokens = maxTokens; self.sampling = sampling; self.stops = stops; self.stream = stream
        self.includeUsage = includeUsage; self.repetitionStop = repetitionStop
    }

    /// `repetition_stop` (SelfSpec's own field, off when absent): `true` for
    /// `RepetitionStop.default`, `false`, or `{"repeats", "min_tokens", "max_period"}` (each
    /// optional, the default's value otherwise).
    static func repetitionStop(_ body: inout JSONBody) throws -> RepetitionStop? {
        let name = "repetition_stop"
        guard let v = body.raw(name) else { return nil }
        if let b = v as? NSNumber, JSONBody.isBool(b) { return b.boolValue ? .default : nil }
        guard let o = v as? [String: Any] else { throw body.wrongType(name, "a boolean or an object", v) }
        var rule = RepetitionStop.default
        for (key, value) in o {
            guard let n = value as? NSNumber, !JSONBody.isBool(n), let i = Int(exactly: n.doubleValue) else {
                if ["repeats", "min_tokens", "max_period"].contains(key) {
                    throw ServerError.invalidRequest(message: "'\(name).\(key)' must be an integer", param: "\(name).\(key)")
                }
                throw ServerError.unknownField("\(name).\(key)")
            }
            switch key {
            case "repeats": rule.repeats = i
            case "min_tokens": rule.minTokens = i
            case "max_period": rule.maxPeriod = i
            default: throw ServerError.unknownField("\(name).\(key)")
            }
        }
        let limits = [("repeats", rule.repeats, 2...64), ("min_tokens", rule.minTokens, 1...4096), ("max_period", rule.maxPeriod, 1...1024)]
        for (key, value, range) in limits where !range.contains(value) {
            throw ServerError.invalidRequest(message: "'\(name).\(key)' is \(value); expected \(range.lowerBound)...\(range.upperBound)",
                                             param: "\(name).\(key)")
        }
        return rule
    }
}

// MARK: - Chat and completions

/// `POST /v1/chat/completions` after `model`: the messages and the options.
struct ChatCompletionRequest {
    var messages: [ChatMessage]
    var options: GenerationOptions

    init(_ body: inout JSONBody, limits: OpenAIServer.Configuration) throws {
        messages = try Self.messages(&body)
        options = try GenerationOptions(&body, limits: limits)
        try body.checkNoUnknownFields()
    }

    /// `messages`: `[{"role", "content": string | [{"type": "text", "text"}] | null}]` (`ChatMessage.list(fromJSON:)`).
    private static func messages(_ body: inout JSONBody) throws -> [ChatMessage] {
        guard let list = try body.array("messages") else {
            throw ServerError.invalidRequest(message: "'messages' is required", param: "messages")
        }
        do {
            return try ChatMessage.list(fromJSON: list)
        } catch let e as ChatMessagesError {
            throw e.isUnknownField ? ServerError.unknownField(e.path) : ServerError.invalidRequest(message: e.message, param: e.path)
        }
    }
}

/// `POST /v1/completions` after `model`: the prompts (text still to be tokenized by the model) and
/// the options.
struct CompletionRequest {
    enum Prompt {
        case text(String)
        case tokens([Int])
    }

    var prompts: [Prompt]
    var options: GenerationOptions

    /// Most prompts in one request.
    static let maxPrompts = 64

    init(_ body: inout JSONBody, limits: OpenAIServer.Configuration) throws {
        prompts = try Self.prompts(&body)
        options = try GenerationOptions(&body, limits: limits)
        if let echo = try body.bool("echo"), echo {
            throw ServerError.invalidRequest(message: "'echo' is not supported", param: "echo")
        }
        if let b = try body.int("best_of"), b != 1 {
            throw ServerError.invalidRequest(message: "'best_of' must be 1", param: "best_of")
        }
        try body.checkNoUnknownFields()
    }

    /// `prompt`: a string, an array of strings, an array of token ids, or an array of those.
    private static func prompts(_ body: inout JSONBody) throws -> [Prompt] {
        guard let v = body.raw("prompt") else { throw ServerError.invalidRequest(message: "'prompt' is required", param: "prompt") }
        func tokens(_ any: Any) -> [Int]? {
            guard let a = any as? [Any], !a.isEmpty else { return nil }
            let ints = a.compactMap { ($0 as? NSNumber).flatMap { JSONBody.isBool($0) ? nil : Int(exactly: $0.doubleValue) } }
            return ints.count == a.count ? ints : nil
        }
        let prompts: [Prompt]
        if let s = v as? String {
            prompts = [.text(s)]
        } else if let t = tokens(v) {
            prompts = [.tokens(t)]
        } else if let a = v as? [Any], !a.isEmpty {
            prompts = try a.map { item in
                if let s = item as? String { return .text(s) }
                if let t = tokens(item) { return .tokens(t) }
                throw ServerError.invalidRequest(message: "'prompt' must be a string, an array of strings or an array of token ids", param: "prompt")
            }
        } else {
            throw ServerError.invalidRequest(message: "'prompt' must be a non-empty string, array of strings or array of token ids", param: "prompt")
        }
        guard prompts.count <= maxPrompts else {
            throw ServerError.invalidRequest(message: "'prompt' has \(prompts.count) prompts; at most \(maxPrompts) are allowed", param: "prompt")
        }
        return prompts
    }
}

// MARK: - Embeddings and search

/// `POST /v1/embeddings`: `{"input": string | [string], "model"?, "encoding_format"?: "float" |
/// "base64", "dimensions"?}`, checked against the embedder's model id and dimension.
struct EmbeddingsRequest {
    var inputs: [String]
    /// `encoding_format` is `base64`: the little-endian float32 bytes.
    var base64: Bool

    init(_ body: inout JSONBody, limits: OpenAIServer.Configuration, modelID: String, dimension: Int) throws {
        if let m = try body.string("model"), m != modelID, m != OpenAIServer.embeddingAlias(modelID) {
            throw ServerError.modelNotFound(m)
        }
        guard let inputs = try body.strings("input", maxCount: limits.maxEmbeddingInputs) else {
            throw ServerError.invalidRequest(message: "'input' is required (a string or an array of strings)", param: "input")
        }
        guard !inputs.isEmpty else { throw ServerError.invalidRequest(message: "'input' is empty", param: "input") }
        let format = try body.string("encoding_format") ?? "float"
        guard format == "float" || format == "base64" else {
            throw ServerError.invalidRequest(message: "'encoding_format' is '\(format)'; expected float or base64", param: "encoding_format")
        }
        if let d = try body.int("dimensions"), d != dimension {
            throw ServerError.invalidRequest(message: "'dimensions' is \(d); this model gives \(dimension)", param: "dimensions")
        }
        _ = try body.string("user")
        try body.checkNoUnknownFields()
        self.inputs = inputs
        base64 = format == "base64"
    }
}

/// `POST /v1/search`: `{"query", "k"? = 10, "mode"?: "dense" | "bm25" | "hybrid", "filters"?:
/// {"years": "2015-2020", "journal", "mesh"}}`; dense and hybrid need an embedded corpus.
struct SearchRequest {
    var query: String
    var k: Int
    var mode: SearchMode
    var filter: SearchFilter

    init(_ body: inout JSONBody, limits: OpenAIServer.Configuration, denseAvailable: Bool) throws {
        guard let query = try body.string("query"), !query.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ServerError.invalidRequest(message: "'query' is required (a non-empty string)", param: "query")
        }
        self.query = query
        k = try body.int("k", in: 1...limits.maxSearchResults) ?? 10
        mode = denseAvailable ? .hybrid : .bm25
        if let m = try body.string("mode") {
            guard let parsed = SearchMode(rawValue: m) else {
                throw ServerError.invalidRequest(message: "'mode' is '\(m)'; expected dense, bm25 or hybrid", param: "mode")
            }
            guard parsed == .bm25 || denseAvailable else {
                throw ServerError.unprocessable(message: "'mode' \(m) needs an embedded corpus; this one has BM25 only", param: "mode")
            }
            mode = parsed
        }
        filter = try Self.filter(try body.object("filters"))
        try body.checkNoUnknownFields()
    }

    /// `filters`: `years` ("2015-2020", "2019", or an integer), `journal`, `mesh`.
    private static func filter(_ object: [String: Any]?) throws -> SearchFilter {
        guard let object else { return SearchFilter() }
        var filter = SearchFilter()
        for (key, value) in object {
            switch key {
            case "years":
                if let y = value as? NSNumber, !JSONBody.isBool(y), let year = Int(exactly: y.doubleValue) {
                    filter.years = year...year
                } else if let s = value as? String, let range = parseYears(s) {
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
}

// MARK: - Decoding alone

/// The server's body → typed request step alone, without a model, an embedder or a corpus: what
/// the fuzzer (`scripts/fuzz server-json`) feeds with arbitrary bytes.
public enum RequestDecoding {
    /// The POST routes whose bodies are decoded.
    public enum Route: String, CaseIterable, Sendable {
        case chatCompletions = "/v1/chat/completions"
        case completions = "/v1/completions"
        case embeddings = "/v1/embeddings"
        case search = "/v1/search"
    }

    /// The embedder the embeddings route is checked against: MiniLM-L6, as `serve --embedder` loads.
    public static let embedderID = "sentence-transformers/all-MiniLM-L6-v2", embedderDimension = 384

    /// Decodes `body` as `route` does before it needs a model (any `model` is taken as served), the
    /// embedder (``embedderID``) or the corpus (one with embeddings).
    /// - Throws: the `ServerError` the route would answer with.
    public static func decode(_ body: Data, route: Route, configuration: OpenAIServer.Configuration = .init()) throws {
        guard body.count <= configuration.maxBodyBytes else { throw ServerError.bodyTooLarge(limit: configuration.maxBodyBytes) }
        var json = try JSONBody(body)
        switch route {
        case .chatCompletions:
            _ = try json.string("model")
            _ = try ChatCompletionRequest(&json, limits: configuration)
        case .completions:
            _ = try json.string("model")
            _ = try CompletionRequest(&json, limits: configuration)
        case .embeddings:
            _ = try EmbeddingsRequest(&json, limits: configuration, modelID: embedderID, dimension: embedderDimension)
        case .search:
            _ = try SearchRequest(&json, limits: configuration, denseAvailable: true)
        }
    }
}
