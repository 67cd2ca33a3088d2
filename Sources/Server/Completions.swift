import Foundation
import Hummingbird
import LLM

/// `POST /v1/chat/completions` and `POST /v1/completions`.
extension OpenAIServer {
    // MARK: Routes

    func chatCompletions(_ request: JSONBody) async throws -> Response {
        var body = request
        let served = try model(try body.string("model"))
        let request = try ChatCompletionRequest(&body, limits: configuration)
        var options = request.options
        if let eot = served.template.endOfTurn, !options.stops.contains(eot) { options.stops.append(eot) }
        let prompt = try served.encode(messages: request.messages)
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
        let request = try CompletionRequest(&body, limits: configuration)
        let options = request.options
        let prompts = request.prompts.map { prompt in
            switch prompt {
            case let .text(s): served.encode(prompt: s)
            case let .tokens(t): t
            }
        }
        let tokenizer = served.tokenizer
        for p in prompts where p.isEmpty || (p.count == 1 && p[0] == tokenizer.specialTokens.bos && tokenizer.specialTokens.addBOSByDefault) {
            throw ServerError.unprocessable(message: "a prompt is empty", param: "prompt")
        }
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
