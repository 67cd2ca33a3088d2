import Foundation
import Hummingbird
import LLM

/// `POST /v1/chat/completions` and `POST /v1/completions`.
extension OpenAIServer {
    /// Sampling and output options common to both routes.
    struct GenerationOptions {
        var maxTokens: Int
        var sampling: SamplingParameters
        var stops: [String]
        var stream: Bool
        var includeUsage: Bool
        /// `repetition_stop`: end a looping answer with `finish_reason: "repetition"` (nil: off).
        var repetitionStop: RepetitionStop?
    }

    // MARK: Parsing

    /// Reads the generation options of a request (OpenAI names, plus llama.cpp's `top_k`,
    /// `min_p`, `repeat_penalty`).
    func generationOptions(_ body: inout JSONBody) throws -> GenerationOptions {
        let limit = configuration.maxTokensLimit
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
        return GenerationOptions(maxTokens: maxTokens ?? configuration.defaultMaxTokens, sampling: p, stops: stops,
                                 stream: stream, includeUsage: includeUsage, repetitionStop: try repetitionStop(&body))
    }

    /// `repetition_stop` (SelfSpec's own field, off when absent): `true` for
    /// `RepetitionStop.default`, `false`, or `{"repeats", "min_tokens", "max_period"}` (each
    /// optional, the default's value otherwise).
    func repetitionStop(_ body: inout JSONBody) throws -> RepetitionStop? {
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

    /// `messages`: `[{"role", "content": string | [{"type": "text", "text"}] | null}]` (`ChatMessage.list(fromJSON:)`).
    func chatMessages(_ body: inout JSONBody) throws -> [ChatMessage] {
        guard let list = try body.array("messages") else {
            throw ServerError.invalidRequest(message: "'messages' is required", param: "messages")
        }
        do {
            return try ChatMessage.list(fromJSON: list)
        } catch let e as ChatMessagesError {
            throw e.isUnknownField ? ServerError.unknownField(e.path) : ServerError.invalidRequest(message: e.message, param: e.path)
        }
    }

    /// `prompt`: a string, an array of strings, an array of token ids, or an array of those.
    func completionPrompts(_ body: inout JSONBody, model: ServedModel) throws -> [[Int]] {
        guard let v = body.raw("prompt") else { throw ServerError.invalidRequest(message: "'prompt' is required", param: "prompt") }
        func tokens(_ any: Any) -> [Int]? {
            guard let a = any as? [Any], !a.isEmpty else { return nil }
            let ints = a.compactMap { ($0 as? NSNumber).flatMap { JSONBody.isBool($0) ? nil : Int(exactly: $0.doubleValue) } }
            return ints.count == a.count ? ints : nil
        }
        let prompts: [[Int]]
        if let s = v as? String {
            prompts = [model.encode(prompt: s)]
        } else if let t = tokens(v) {
            prompts = [t]
        } else if let a = v as? [Any], !a.isEmpty {
            prompts = try a.map { item in
                if let s = item as? String { return model.encode(prompt: s) }
                if let t = tokens(item) { return t }
                throw ServerError.invalidRequest(message: "'prompt' must be a string, an array of strings or an array of token ids", param: "prompt")
            }
        } else {
            throw ServerError.invalidRequest(message: "'prompt' must be a non-empty string, array of strings or array of token ids", param: "prompt")
        }
        guard prompts.count <= 64 else {
            throw ServerError.invalidRequest(message: "'prompt' has \(prompts.count) prompts; at most 64 are allowed", param: "prompt")
        }
        for p in prompts where p.isEmpty || (p.count == 1 && p[0] == model.tokenizer.specialTokens.bos && model.tokenizer.specialTokens.addBOSByDefault) {
            throw ServerError.unprocessable(message: "a prompt is empty", param: "prompt")
        }
        return prompts
    }

    // MARK: Routes

    func chatCompletions(_ request: JSONBody) async throws -> Response {
        var body = request
        let served = try model(try body.string("model"))
        let messages = try chatMessages(&body)
        var options = try generationOptions(&body)
        try body.checkNoUnknownFields()
        if let eot = served.template.endOfTurn, !options.stops.contains(eot) { options.stops.append(eot) }
        let prompt = try served.encode(messages: messages)
        let submission = try submit(prompt, options, to: served, param: "messages")
        let id = "chatcmpl-" + Self.randomID()
        let created = Int(Date().timeIntervalSince1970)
        @Sendable func chunk(_ delta: [String: Any], finish: Any = NSNull(), usage: Any? = nil) -> [String: Any] {
            var c: [String: Any] = ["id": id, "object": "chat.completion.chunk", "created": created, "model": served.id,
                                    "system_fingerprint": NSNull(),
                                    "choices": [["index": 0, "delta": delta, "finish_reason": finish, "logprobs": NSNull()] as [String: Any]]]
            if let usage { c["usage"] = usage; c["choices"] = [Any]() }
            return c
        }
        guard options.stream else {
            let result = try await Self.collect(submission)
            return json(["id": id, "object": "chat.completion", "created": created, "model": served.id, "system_fingerprint": NSNull(),
                         "choices": [["index": 0, "message": ["role": "assistant", "content": result.text],
                                      "finish_reason": Self.finishReason(result.finishReason), "logprobs": NSNull()] as [String: Any]],
                         "usage": Self.usage([result])])
        }
        let includeUsage = options.includeUsage
        return sse { write in
            try await write(chunk(["role": "assistant", "content": ""]))
            for try await event in submission {
                switch event {
                case let .text(piece):
                    try await write(chunk(["content": piece]))
                case let .finished(result):
                    try await write(chunk([:], finish: Self.finishReason(result.finishReason)))
                    if includeUsage { try await write(chunk([:], usage: Self.usage([result]))) }
                }
            }
        } onEnd: { submission.cancel() }
    }

    func completions(_ request: JSONBody) async throws -> Response {
        var body = request
        let served = try model(try body.string("model"))
        let prompts = try completionPrompts(&body, model: served)
        let options = try generationOptions(&body)
        if let echo = try body.bool("echo"), echo {
            throw ServerError.invalidRequest(message: "'echo' is not supported", param: "echo")
        }
        if let b = try body.int("best_of"), b != 1 {
            throw ServerError.invalidRequest(message: "'best_of' must be 1", param: "best_of")
        }
        try body.checkNoUnknownFields()
        var submissions: [BatchScheduler.Submission] = []
        do {
            for (i, p) in prompts.enumerated() {
                var o = options
                o.sampling.seed &+= UInt64(i)
                submissions.append(try submit(p, o, to: served, param: "prompt"))
            }
        } catch {
            for s in submissions { s.cancel() }
            throw error
        }
        let submitted = submissions
        let id = "cmpl-" + Self.randomID()
        let created = Int(Date().timeIntervalSince1970)
        @Sendable func object(_ choices: [[String: Any]], usage: Any? = nil, chunk: Bool) -> [String: Any] {
            var o: [String: Any] = ["id": id, "object": "text_completion", "created": created, "model": served.id,
                                    "system_fingerprint": NSNull(), "choices": choices]
            if let usage { o["usage"] = usage } else if !chunk { o["usage"] = NSNull() }
            return o
        }
        @Sendable func choice(_ index: Int, _ text: String, _ finish: Any) -> [String: Any] {
            ["index": index, "text": text, "finish_reason": finish, "logprobs": NSNull()]
        }
        guard options.stream else {
            let results = try await withThrowingTaskGroup(of: (Int, GenerationResult).self) { group in
                for (i, s) in submitted.enumerated() { group.addTask { (i, try await Self.collect(s)) } }
                var results = [GenerationResult?](repeating: nil, count: submitted.count)
                for try await (i, r) in group { results[i] = r }
                return results.map { $0! }
            }
            return json(object(results.enumerated().map { choice($0, $1.text, Self.finishReason($1.finishReason)) },
                               usage: Self.usage(results), chunk: false))
        }
        let includeUsage = options.includeUsage
        return sse { write in
            var finished: [GenerationResult] = []
            for try await (index, event) in Self.merge(submitted) {
                switch event {
                case let .text(piece):
                    try await write(object([choice(index, piece, NSNull())], chunk: true))
                case let .finished(result):
                    finished.append(result)
                    try await write(object([choice(index, "", Self.finishReason(result.finishReason))], chunk: true))
                }
            }
            if includeUsage { try await write(object([], usage: Self.usage(finished), chunk: true)) }
        } onEnd: { for s in submitted { s.cancel() } }
    }

    // MARK: Helpers

    private func submit(_ prompt: [Int], _ options: GenerationOptions, to served: ServedModel, param: String) throws -> BatchScheduler.Submission {
        let request = GenerationRequest(prompt: prompt, maxTokens: options.maxTokens, sampling: options.sampling,
                                        stopStrings: options.stops, repetitionStop: options.repetitionStop)
        do {
            return try served.scheduler.submit(request)
        } catch let ModelError.contextOverflow(tokens, contextLength) {
            throw ServerError.unprocessable(
                message: "the prompt (\(prompt.count) tokens) plus max_tokens (\(options.maxTokens)) is \(tokens) tokens; the model's context is \(contextLength)",
                param: param)
        }
    }

    /// Waits for a submission's result (the text pieces are in it).
    static func collect(_ submission: BatchScheduler.Submission) async throws -> GenerationResult {
        for try await event in submission { if case let .finished(r) = event { return r } }
        throw ServerError.internalError("generation ended without a result")
    }

    /// Interleaves several submissions' events, tagged with their index, as they come.
    static func merge(_ submissions: [BatchScheduler.Submission]) -> AsyncThrowingStream<(Int, BatchScheduler.Event), Error> {
        let (stream, continuation) = AsyncThrowingStream<(Int, BatchScheduler.Event), Error>.makeStream()
        let task = Task {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (i, s) in submissions.enumerated() {
                        group.addTask { for try await e in s { continuation.yield((i, e)) } }
                    }
                    try await group.waitForAll()
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// A server-sent-events response: each object as `data: {json}\n\n`, then `data: [DONE]`.
    /// An error after the headers went out is sent as a `data: {"error": …}` event. `onEnd` runs
    /// however the body ends (e.g. the client went away and a write failed).
    func sse(_ produce: @escaping @Sendable (_ write: @Sendable ([String: Any]) async throws -> Void) async throws -> Void,
             onEnd: @escaping @Sendable () -> Void) -> Response {
        Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                 body: ResponseBody { writer in
                     defer { onEnd() }
                     let channel = SSEChannel()
                     // The writer is inout and not Sendable; events go through a stream to it.
                     let producer = Task {
                         do {
                             try await produce { object in
                                 let data = (try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])) ?? Data()
                                 try channel.send("data: " + String(decoding: data, as: UTF8.self) + "\n\n")
                             }
                         } catch is CancellationError {
                         } catch {
                             let e = Self.errorObject(Self.serverError(error))
                             let data = (try? JSONSerialization.data(withJSONObject: e)) ?? Data()
                             try? channel.send("data: " + String(decoding: data, as: UTF8.self) + "\n\n")
                         }
                         try? channel.send("data: [DONE]\n\n")
                         channel.finish()
                     }
                     do {
                         for await text in channel.stream { try await writer.write(ByteBuffer(string: text)) }
                         try await writer.finish(nil)
                     } catch {
                         producer.cancel()
                         channel.close()
                         throw error
                     }
                 })
    }

    static func finishReason(_ reason: FinishReason) -> String {
        switch reason {
        case .endOfSequence, .stopString: "stop"
        case .length: "length"
        case .cancelled: "cancelled"
        case .repetition: "repetition"
        }
    }

    static func usage(_ results: [GenerationResult]) -> [String: Int] {
        let prompt = results.map(\.promptTokens).reduce(0, +), completion = results.map(\.tokens.count).reduce(0, +)
        return ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion]
    }

    static func randomID() -> String {
        (0..<24).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
    }
}

/// Text events from the producing task to the response writer; `send` fails once the writer
/// has gone (the client disconnected), which ends the producer.
final class SSEChannel: Sendable {
    let stream: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation
    private let closed = Locked(false)

    init() { (stream, continuation) = AsyncStream<String>.makeStream() }

    func send(_ text: String) throws {
        guard !closed.withLock({ $0 }) else { throw CancellationError() }
        continuation.yield(text)
    }

    func finish() { continuation.finish() }

    func close() {
        closed.withLock { $0 = true }
        continuation.finish()
    }
}
