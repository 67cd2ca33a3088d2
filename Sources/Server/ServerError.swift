import Foundation

/// Errors of the OpenAI-compatible server, each answered as an OpenAI-style error object
/// `{"error": {"message", "type", "param", "code"}}` with its HTTP status.
public enum ServerError: Error, LocalizedError, Sendable, Equatable {
    /// The request body is not valid JSON, or a field has the wrong type or value (400).
    case invalidRequest(message: String, param: String?)
    /// A field this server does not know (400).
    case unknownField(String)
    /// The body is larger than the limit (413).
    case bodyTooLarge(limit: Int)
    /// The model id is not served (404).
    case modelNotFound(String)
    /// No route for this path (404), or the method is wrong for it (405).
    case notFound(path: String)
    case methodNotAllowed(method: String, path: String)
    /// Missing or wrong Bearer key (401).
    case unauthorized
    /// The request queue is full (429).
    case queueFull(limit: Int)
    /// A feature the server was started without, e.g. `/v1/search` without `--db` (404 / 422).
    case unavailable(String)
    /// The input is well-formed but cannot be processed (prompt too long for the context) (422).
    case unprocessable(message: String, param: String?)
    /// The server is shutting down (503).
    case shuttingDown
    /// Something failed inside the server (500).
    case internalError(String)
    /// The listening address is taken (raised by `run`, not sent to clients).
    case portInUse(host: String, port: Int)

    /// The HTTP status code of this error.
    public var status: Int {
        switch self {
        case .invalidRequest, .unknownField: 400
        case .unauthorized: 401
        case .modelNotFound, .notFound, .unavailable: 404
        case .methodNotAllowed: 405
        case .bodyTooLarge: 413
        case .unprocessable: 422
        case .queueFull: 429
        case .internalError, .portInUse: 500
        case .shuttingDown: 503
        }
    }

    /// The OpenAI error `type`.
    public var type: String {
        switch self {
        case .invalidRequest, .unknownField, .bodyTooLarge, .modelNotFound, .notFound, .methodNotAllowed,
             .unavailable, .unprocessable: "invalid_request_error"
        case .unauthorized: "authentication_error"
        case .queueFull: "rate_limit_error"
        case .shuttingDown, .internalError, .portInUse: "server_error"
        }
    }

    /// The OpenAI error `code`.
    public var code: String? {
        switch self {
        case .invalidRequest: nil
        case .unknownField: "unknown_field"
        case .bodyTooLarge: "request_too_large"
        case .modelNotFound: "model_not_found"
        case .notFound: "not_found"
        case .methodNotAllowed: "method_not_allowed"
        case .unauthorized: "invalid_api_key"
        case .queueFull: "queue_full"
        case .unavailable: "unavailable"
        case .unprocessable: "unprocessable"
        case .shuttingDown: "shutting_down"
        case .internalError: "internal_error"
        case .portInUse: "port_in_use"
        }
    }

    /// The OpenAI error `param`: the request field at fault.
    public var param: String? {
        switch self {
        case let .invalidRequest(_, p), let .unprocessable(_, p): p
        case let .unknownField(f): f
        case .modelNotFound: "model"
        default: nil
        }
    }

    public var errorDescription: String? {
        switch self {
        case let .invalidRequest(m, _), let .unprocessable(m, _): m
        case let .unknownField(f): "unknown field '\(f)' in the request body"
        case let .bodyTooLarge(limit): "the request body is larger than the limit of \(limit) bytes"
        case let .modelNotFound(m): "the model '\(m)' does not exist (GET /v1/models lists the served ids)"
        case let .notFound(path): "no route for \(path)"
        case let .methodNotAllowed(method, path): "\(method) is not allowed on \(path)"
        case .unauthorized: "missing or invalid API key (send 'Authorization: Bearer KEY')"
        case let .queueFull(limit): "the server is busy: \(limit) requests are already queued; retry later"
        case let .unavailable(m): m
        case .shuttingDown: "the server is shutting down"
        case let .internalError(m): "internal error: \(m)"
        case let .portInUse(host, port):
            "cannot listen on \(host):\(port): the port is in use (another server is running there; pick another with --port)"
        }
    }
}
