import Foundation
import Hummingbird
import LLM
import Logging
import ServiceLifecycle
import VectorIndex

/// An HTTP server speaking the OpenAI API over SelfSpec's engines (Hummingbird 2).
///
/// Routes: `GET /v1/models`, `GET /v1/models/{id}`, `POST /v1/chat/completions`,
/// `POST /v1/completions` (server-sent events with `"stream": true`), `POST /v1/embeddings`,
/// `POST /v1/search`, `GET /health` (status and each model's batch counters). Every route checks the Bearer key when one is set; every
/// failure is an OpenAI-style error object with its status. Generation requests for one model
/// share that model's `BatchScheduler` (continuous batching).
///
/// ```swift
/// let server = OpenAIServer(models: [base], configuration: .init(port: 0))
/// try await server.run { port in print("listening on \(port)") }   // until shutdown()
/// ```
public final class OpenAIServer: Sendable {
    /// Limits and the listening address.
    public struct Configuration: Sendable {
        /// Address to bind (default loopback only).
        public var host: String
        /// Port; 0 picks a free one (reported to `run`'s `onListening`).
        public var port: Int
        /// When set, every request needs `Authorization: Bearer <apiKey>`.
        public var apiKey: String?
        /// Largest request body accepted (413 beyond).
        public var maxBodyBytes: Int
        /// Largest `max_tokens` accepted (400 beyond).
        public var maxTokensLimit: Int
        /// `max_tokens` when a request gives none.
        public var defaultMaxTokens: Int
        /// Most inputs in one embeddings request.
        public var maxEmbeddingInputs: Int
        /// Most results of one search.
        public var maxSearchResults: Int
        /// On shutdown, in-flight requests get this long to finish before they are cancelled.
        public var drainSeconds: Double

        public init(host: String = "127.0.0.1", port: Int = 8080, apiKey: String? = nil, maxBodyBytes: Int = 1 << 20,
                    maxTokensLimit: Int = 2048, defaultMaxTokens: Int = 256, maxEmbeddingInputs: Int = 256,
                    maxSearchResults: Int = 100, drainSeconds: Double = 10) {
            self.host = host
            self.port = port
            self.apiKey = apiKey
            self.maxBodyBytes = maxBodyBytes
            self.maxTokensLimit = maxTokensLimit
            self.defaultMaxTokens = defaultMaxTokens
            self.maxEmbeddingInputs = maxEmbeddingInputs
            self.maxSearchResults = maxSearchResults
            self.drainSeconds = drainSeconds
        }
    }

    public let configuration: Configuration
    /// The served model ids; the first is the default when a request names none.
    public let models: [ServedModel]
    let embedder: (any Embedder)?
    let retriever: Retriever?
    /// Embedding and search run here, one at a time, off the event loops (SQLite handles and the
    /// embedder's buffers are not shared between threads).
    let workQueue = DispatchQueue(label: "selfspec.server.work")
    private let group = Locked<ServiceGroup?>(nil)

    /// - Parameters:
    ///   - models: the models to serve (at least one); ids must be distinct.
    ///   - embedder: answers `/v1/embeddings` (and dense search); nil: 404 there.
    ///   - retriever: answers `/v1/search`; nil: 404 there.
    public init(models: [ServedModel], embedder: (any Embedder)? = nil, retriever: Retriever? = nil,
                configuration: Configuration = .init()) {
        precondition(!models.isEmpty, "at least one model")
        self.models = models
        self.embedder = embedder
        self.retriever = retriever
        self.configuration = configuration
    }

    // MARK: Running

    /// Listens until `shutdown()` (or the task is cancelled).
    /// - Parameter onListening: called once with the bound port.
    /// - Throws: `ServerError.portInUse` (naming host and port), other bind errors.
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let responder = CallbackResponder<ServerRequestContext> { [self] request, context in
            let read = BodyRead()
            var response = await BodyRead.$current.withValue(read) { await self.respond(to: request) }
            if Self.hasBody(request) && !read.finished {
                // A body left unread (refused before or while reading: 401, 404, 405, 413…) keeps the
                // connection waiting for it; with `Connection: close` Hummingbird would wait for the
                // client's end forever, holding the socket and its buffers (found by scripts/load).
                // So tell the client, and close the connection once the response is out.
                response.headers[.connection] = "close"
                context.closeConnection(Self.lingerSeconds)
            }
            return response
        }
        var logger = Logger(label: "selfspec.serve", factory: { _ in SwiftLogNoOpLogHandler() })
        logger.logLevel = .critical
        let app = Application(
            responder: responder,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "selfspec"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        self.group.withLock { $0 = group }
        do {
            try await group.run()
        } catch {
            let text = "\(error)"
            if text.contains("Address already in use") || text.contains("errno: 98") {
                throw ServerError.portInUse(host: configuration.host, port: configuration.port)
            }
            throw error
        }
    }

    /// Graceful shutdown: stop accepting connections and generation requests (503), let in-flight
    /// requests finish for up to `drainSeconds`, cancel what is left (streams end with
    /// `finish_reason: "cancelled"`), then `run` returns.
    public func shutdown() async {
        for m in models { m.scheduler.shutdown(cancelInFlight: false) }
        let models = self.models, drain = configuration.drainSeconds
        let canceller = Task {
            try await Task.sleep(nanoseconds: UInt64(drain * 1e9))
            for m in models { m.scheduler.shutdown(cancelInFlight: true) }
        }
        if let group = group.withLock({ $0 }) { await group.triggerGracefulShutdown() }
        for m in models { await m.scheduler.waitUntilIdle() }
        canceller.cancel()
    }

    // MARK: Routing

    /// Answers one request; never throws (errors become OpenAI error objects).
    func respond(to request: Request) async -> Response {
        do {
            try authorize(request)
            let path = request.uri.path
            let method = request.method
            func require(_ m: HTTPRequest.Method) throws {
                guard method == m else { throw ServerError.methodNotAllowed(method: method.rawValue, path: path) }
            }
            switch path {
            case "/health":
                try require(.get)
                return json(["status": "ok", "models": models.map(Self.healthObject)])
            case "/v1/models":
                try require(.get)
                return json(["object": "list", "data": models.map(modelObject)])
            case _ where path.hasPrefix("/v1/models/"):
                try require(.get)
                let id = String(path.dropFirst("/v1/models/".count)).removingPercentEncoding ?? ""
                guard let m = models.first(where: { $0.id == id }) else { throw ServerError.modelNotFound(id) }
                return json(modelObject(m))
            case "/v1/chat/completions":
                try require(.post)
                return try await chatCompletions(try await body(of: request))
            case "/v1/completions":
                try require(.post)
                return try await completions(try await body(of: request))
            case "/v1/embeddings":
                try require(.post)
                return try await embeddings(try await body(of: request))
            case "/v1/search":
                try require(.post)
                return try await search(try await body(of: request))
            default:
                throw ServerError.notFound(path: path)
            }
        } catch {
            return errorResponse(Self.serverError(error))
        }
    }

    /// A model's batch counters: `active` slots, `waiting` requests, `completed` and `dropped` (consumer gone).
    static func healthObject(_ m: ServedModel) -> [String: Any] {
        let s = m.scheduler.snapshot
        return ["id": m.id, "active": s.active, "waiting": s.waiting, "completed": s.completed, "dropped": s.dropped,
                "max_batch": m.scheduler.options.maxBatch, "max_queue": m.scheduler.options.maxQueue]
    }

    private func modelObject(_ m: ServedModel) -> [String: Any] {
        ["id": m.id, "object": "model", "created": m.created, "owned_by": "selfspec"]
    }

    /// The served model named by `id` (the first one when nil).
    func model(_ id: String?) throws -> ServedModel {
        guard let id else { return models[0] }
        guard let m = models.first(where: { $0.id == id }) else { throw ServerError.modelNotFound(id) }
        return m
    }

    private func authorize(_ request: Request) throws {
        guard let key = configuration.apiKey else { return }
        guard Self.authorizationMatches(request.headers[.authorization] ?? "", key: key) else {
            throw ServerError.unauthorized
        }
    }

    /// Whether an `Authorization` header is `Bearer <key>`, in time that depends only on the
    /// key's length: every byte of the expected value is compared (a missing byte of a short
    /// header compares as 0), differences are OR-ed together, and nothing exits early, so the
    /// time taken does not tell how much of a guess matched.
    static func authorizationMatches(_ header: String, key: String) -> Bool {
        let expected = Array("Bearer \(key)".utf8), given = Array(header.utf8)
        var diff = expected.count ^ given.count
        for i in 0..<expected.count { diff |= Int(expected[i] ^ (i < given.count ? given[i] : 0)) }
        return diff == 0
    }

    /// Seconds between the response to a request whose body was left unread and the close of its
    /// connection (time to write the response).
    static let lingerSeconds: Int64 = 2

    /// Whether a request carries a body (a Content-Length above 0, or a transfer coding).
    static func hasBody(_ request: Request) -> Bool {
        if let length = request.headers[.contentLength].flatMap(Int.init) { return length > 0 }
        return request.headers[.transferEncoding] != nil
    }

    /// The body as JSON, refused beyond `maxBodyBytes`.
    private func body(of request: Request) async throws -> JSONBody {
        let limit = configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw ServerError.bodyTooLarge(limit: limit)
        }
        // Counted chunk by chunk: a chunked body has no Content-Length to check up front.
        var data = Data()
        do {
            for try await chunk in request.body {
                guard data.count + chunk.readableBytes <= limit else { throw ServerError.bodyTooLarge(limit: limit) }
                data.append(contentsOf: chunk.readableBytesView)
            }
            BodyRead.current?.finished = true
        } catch let error as ServerError {
            throw error
        } catch {
            throw ServerError.invalidRequest(message: "could not read the request body: \(error)", param: nil)
        }
        return try JSONBody(data)
    }

    // MARK: Responses

    func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    func errorResponse(_ error: ServerError) -> Response {
        var response = json(Self.errorObject(error), status: HTTPResponse.Status(code: error.status))
        if case .unauthorized = error { response.headers[.wwwAuthenticate] = "Bearer" }
        if case .queueFull = error { response.headers[.retryAfter] = "1" }
        return response
    }

    /// `{"error": {"message", "type", "param", "code"}}`.
    static func errorObject(_ error: ServerError) -> [String: Any] {
        ["error": ["message": error.errorDescription ?? "\(error)", "type": error.type,
                   "param": error.param ?? NSNull(), "code": error.code ?? NSNull()] as [String: Any]]
    }

    /// Maps library errors to the status a client should see.
    static func serverError(_ error: Error) -> ServerError {
        switch error {
        case let e as ServerError: return e
        case let e as SchedulerError:
            switch e {
            case let .queueFull(limit): return .queueFull(limit: limit)
            case .shuttingDown: return .shuttingDown
            }
        case let e as ModelError:
            return .unprocessable(message: e.localizedDescription, param: nil)
        case let e as SamplingError:
            return .invalidRequest(message: e.localizedDescription, param: nil)
        case let e as ChatTemplateError:
            return .unprocessable(message: e.localizedDescription, param: "messages")
        case let e as RetrievalError:
            return .unprocessable(message: e.localizedDescription, param: nil)
        default:
            return .internalError(error.localizedDescription)
        }
    }
}

/// A value behind a lock (shared by the server and the `serve` command).
public final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    /// Wraps `value`.
    public init(_ value: Value) { self.value = value }
    /// Runs `body` with the value while holding the lock.
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Whether the request being answered had its body read to the end (set by `body(of:)`).
final class BodyRead: @unchecked Sendable {
    @TaskLocal static var current: BodyRead?
    var finished = false
}

/// Hummingbird's basic context plus the connection, which the server closes after refusing an
/// unread body.
struct ServerRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// Closes the request's connection after that many seconds.
    let closeConnection: @Sendable (_ after: Int64) -> Void

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        let channel = source.channel
        closeConnection = { seconds in
            _ = channel.eventLoop.scheduleTask(in: .seconds(seconds)) { channel.close(promise: nil) }
        }
    }
}
