import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An OpenAI-compatible HTTP endpoint (vLLM, llama.cpp's server, `selfspec serve`…):
/// `POST {base}/v1/completions` or `{base}/v1/chat/completions`, requests in parallel, retries
/// with exponential backoff on connection errors, timeouts, 429 and 5xx (and, for `http://`,
/// broken connections and malformed HTTP). `http://` URLs use a
/// blocking socket client (``PlainHTTP``: URLSession busy-polls on Linux while it waits);
/// `https://` uses URLSession.
public final class OpenAIBackend: GenerationBackend, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// E.g. `http://127.0.0.1:8080`; a trailing `/v1` is accepted.
        public var baseURL: URL
        public var model: String
        public var apiKey: String?
        /// Use `/v1/chat/completions` with one user message instead of `/v1/completions`.
        public var chat: Bool
        /// Requests in flight at once.
        public var parallel: Int
        /// Attempts per prompt (1 = no retry).
        public var attempts: Int
        /// First backoff; doubled after each failed attempt.
        public var backoff: TimeInterval
        /// Per request.
        public var timeout: TimeInterval

        public init(baseURL: URL, model: String, apiKey: String? = nil, chat: Bool = false, parallel: Int = 4,
                    attempts: Int = 3, backoff: TimeInterval = 0.5, timeout: TimeInterval = 120) {
            self.baseURL = baseURL; self.model = model; self.apiKey = apiKey; self.chat = chat
            self.parallel = parallel; self.attempts = attempts; self.backoff = backoff; self.timeout = timeout
        }
    }

    public let configuration: Configuration
    private let session: URLSession

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = configuration.timeout
        c.httpMaximumConnectionsPerHost = max(1, configuration.parallel)
        session = URLSession(configuration: c)
    }

    deinit { session.finishTasksAndInvalidate() }

    public var modelIdentifier: String { "openai:\(configuration.model)@\(configuration.baseURL.absoluteString)" }
    public var modelSHA256: String? { nil }
    public func usesChat(for settings: SamplingSettings) -> Bool { configuration.chat }

    var endpoint: URL {
        var base = configuration.baseURL.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        if !base.hasSuffix("/v1") { base += "/v1" }
        return URL(string: base + (configuration.chat ? "/chat/completions" : "/completions"))!
    }

    public func complete(_ prompts: [String], settings: SamplingSettings) -> [Completion] {
        let results = ResultBox(count: prompts.count)
        let gate = DispatchSemaphore(value: max(1, configuration.parallel))
        let group = DispatchGroup()
        for (i, prompt) in prompts.enumerated() {
            gate.wait()
            group.enter()
            var s = settings
            s.seed = settings.seed.map { $0 &+ UInt64(i) }
            let s2 = s
            DispatchQueue.global().async {
                results.set(i, self.completeOne(prompt, settings: s2))
                gate.signal()
                group.leave()
            }
        }
        group.wait()
        return results.values
    }

    // MARK: One request

    func completeOne(_ prompt: String, settings: SamplingSettings) -> Completion {
        let body: Data
        do { body = try JSONSerialization.data(withJSONObject: requestBody(prompt, settings: settings)) } catch {
            return .failed("cannot encode request: \(error)")
        }
        var lastError = ""
        for attempt in 0..<max(1, configuration.attempts) {
            if attempt > 0 { Thread.sleep(forTimeInterval: configuration.backoff * pow(2, Double(attempt - 1))) }
            switch send(body) {
            case .success(let c): return c
            case .retry(let e): lastError = e
            case .fatal(let e): return .failed(e)
            }
        }
        return .failed("\(lastError) (after \(configuration.attempts) attempts)")
    }

    func requestBody(_ prompt: String, settings: SamplingSettings) -> [String: Any] {
        var b: [String: Any] = ["model": configuration.model, "max_tokens": settings.maxTokens,
                                "temperature": settings.temperature, "top_p": settings.topP]
        if let seed = settings.seed { b["seed"] = Int(truncatingIfNeeded: seed & 0x7FFF_FFFF) }
        if !settings.stop.isEmpty { b["stop"] = settings.stop }
        if let r = settings.repetitionStop {
            b["repetition_stop"] = ["repeats": r.repeats, "min_tokens": r.minTokens, "max_period": r.maxPeriod]
        }
        if configuration.chat { b["messages"] = [["role": "user", "content": prompt]] } else { b["prompt"] = prompt }
        return b
    }

    enum Outcome { case success(Completion), retry(String), fatal(String) }

    func send(_ body: Data) -> Outcome {
        var headers = ["Content-Type": "application/json"]
        if let key = configuration.apiKey { headers["Authorization"] = "Bearer \(key)" }
        let url = endpoint
        let status: Int, data: Data
        if url.scheme == "http" {
            do {
                let r = try PlainHTTP.post(url, headers: headers, body: body, timeout: configuration.timeout)
                (status, data) = (r.status, r.body)
            } catch let f as PlainHTTP.Failure {
                switch f {
                case .connect(let m): return .retry("cannot reach \(url.absoluteString): \(m)")
                case .timeout: return .retry("no answer from \(url.absoluteString) within \(configuration.timeout) s")
                case .io(let m): return .retry("connection to \(url.absoluteString) failed: \(m)")
                case .malformed(let m): return .retry("malformed HTTP response from \(url.absoluteString): \(m)")
                }
            } catch { return .retry("\(url.absoluteString): \(error)") }
        } else {
            var request = URLRequest(url: url, timeoutInterval: configuration.timeout)
            request.httpMethod = "POST"
            for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
            request.httpBody = body
            let box = ResponseBox()
            let done = DispatchSemaphore(value: 0)
            session.dataTask(with: request) { data, response, error in
                box.data = data; box.response = response as? HTTPURLResponse; box.error = error
                done.signal()
            }.resume()
            done.wait()
            if let e = box.error { return .retry("cannot reach \(url.absoluteString): \(e.localizedDescription)") }
            guard let http = box.response else { return .retry("no HTTP response from \(url.absoluteString)") }
            (status, data) = (http.statusCode, box.data ?? Data())
        }
        guard status == 200 else {
            let snippet = String(decoding: data.prefix(200), as: UTF8.self)
            let message = "HTTP \(status) from \(url.absoluteString): \(snippet)"
            return status == 429 || status >= 500 ? .retry(message) : .fatal(message)
        }
        return parse(data)
    }

    func parse(_ data: Data) -> Outcome {
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let choice = (obj["choices"] as? [[String: Any]])?.first else {
            return .fatal("response is not OpenAI JSON with a \"choices\" list: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        let text = (choice["message"] as? [String: Any])?["content"] as? String ?? choice["text"] as? String
        guard let text else { return .fatal("choice has no text (or message.content)") }
        let reason: FinishReason = switch choice["finish_reason"] as? String {
        case "length": .length
        case "repetition": .repetition
        default: .stop
        }
        return .success(Completion(text: text, finishReason: reason))
    }
}

// MARK: - Boxes shared with URLSession callbacks

private final class ResponseBox: @unchecked Sendable {
    var data: Data?
    var response: HTTPURLResponse?
    var error: Error?
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Completion]
    init(count: Int) { storage = Array(repeating: .failed("not run"), count: count) }
    func set(_ i: Int, _ c: Completion) { lock.lock(); storage[i] = c; lock.unlock() }
    var values: [Completion] { lock.lock(); defer { lock.unlock() }; return storage }
}
