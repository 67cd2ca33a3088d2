import Tensor

/// Generates text with any `CausalLanguageModel`: one stream at a time with tokens as they come
/// (`generate`), or many requests with continuous batching (`generateBatch`).
///
/// Continuous batching: up to `maxBatch` sequences are in flight, each with its own `KVCache`.
/// A decode step stacks one token of every active sequence into a `(B, C)` matrix, so each
/// weight is read once per step for all of them; a sequence that finishes frees its slot for
/// the next waiting requests (prefilled together on admission) before the next step. A prompt
/// prefix that all requests share is prefilled once and copied into each sequence's cache.
public final class TextGenerator: @unchecked Sendable {
    // @unchecked: immutable; the model and tokenizer are shareable.

    /// What the streaming callback asks for next.
    public enum Action: Sendable {
        case more
        case stop
    }

    public let model: any CausalLanguageModel
    public let tokenizer: any Tokenizer
    /// Element type of the caches this generator makes (f16: half the memory).
    public let cachePrecision: KVCache.Precision

    public init(model: any CausalLanguageModel, tokenizer: any Tokenizer, cachePrecision: KVCache.Precision = .f16) {
        self.model = model
        self.tokenizer = tokenizer
        self.cachePrecision = cachePrecision
    }

    // MARK: One stream

    /// Generates one continuation, handing out text as it is produced.
    ///
    /// - Parameters:
    ///   - request: prompt, limits, sampling and stop strings.
    ///   - onText: receives each new piece of text (complete UTF-8 characters, stop strings
    ///     held back); returning `.stop` ends generation with `FinishReason.cancelled`.
    /// - Returns: the tokens, text and why generation ended.
    /// - Throws: `ModelError` (empty prompt, context overflow), `SamplingError`.
    public func generate(_ request: GenerationRequest, onText: (String) -> Action = { _ in .more }) throws -> GenerationResult {
        var state = try SequenceState(request: request, model: model, tokenizer: tokenizer, precision: cachePrecision)
        guard state.finish == nil else { return state.result }
        var logits = try model.forward([.init(cache: state.cache, tokens: state.prompt)])
        while true {
            let (token, text) = state.accept(logits: logits)
            if !text.isEmpty, onText(text) == .stop, state.finish == nil { state.finish = .cancelled }
            if state.finish != nil { return state.result }
            logits = try model.forward([.init(cache: state.cache, tokens: [token])])
        }
    }

    // MARK: Many streams

    /// Generates a continuation for every request, `maxBatch` at a time with continuous batching.
    ///
    /// - Parameters:
    ///   - requests: the requests, admitted in order.
    ///   - maxBatch: most sequences in flight (memory: each holds a cache of prompt + max tokens).
    ///   - shouldStop: polled before admitting waiting requests and before each decode step;
    ///     `true` ends every active sequence as `.cancelled` and skips the waiting ones.
    ///   - onFinish: called as each request finishes (in finishing order) with its index and
    ///     result, or the error that request gave (an invalid request does not stop the others).
    public func generateBatch(_ requests: [GenerationRequest], maxBatch: Int = 32,
                              shouldStop: () -> Bool = { false },
                              onFinish: (Int, Result<GenerationResult, Error>) -> Void) throws {
        var waiting = requests.indices.makeIterator()
        var active = [(index: Int, state: SequenceState, last: Int)]()
        var cancelled = false
        // The tokens every prompt starts with (instructions, a template's system turn): prefilled
        // once, on first use, and copied into each new sequence's cache.
        var shared = requests.count > 1 ? Self.commonPrefix(requests.map(\.prompt)) : []
        if shared.count < Self.minSharedPrefix { shared = [] }
        var sharedCache: KVCache?
        func suffix(_ state: SequenceState) -> [Int] {
            guard !shared.isEmpty, state.prompt.count > shared.count, state.prompt.starts(with: shared) else { return state.prompt }
            if sharedCache == nil {
                let c = model.makeCache(capacity: shared.count, precision: cachePrecision)
                guard (try? model.forward([.init(cache: c, tokens: shared)])) != nil else { shared = []; return state.prompt }
                sharedCache = c
            }
            state.cache.copy(from: sharedCache!)
            return Array(state.prompt[shared.count...])
        }
        while true {
            // Admit waiting requests into free slots: their prompts prefilled together in one
            // step (one pass over the weights), then their first tokens.
            var admitted = [(index: Int, state: SequenceState)]()
            if !cancelled && shouldStop() { cancelled = true }  // no new prompts once stopped
            while !cancelled && active.count + admitted.count < max(1, maxBatch), let i = waiting.next() {
                do {
                    let state = try SequenceState(request: requests[i], model: model, tokenizer: tokenizer,
                                                  precision: cachePrecision)
                    if state.finish != nil { onFinish(i, .success(state.result)); continue }
                    admitted.append((i, state))
                } catch {
                    onFinish(i, .failure(error))
                }
            }
            if !admitted.isEmpty {
                let v = model.config.vocabularySize
                var logits: [[Float]?]
                let tokens = admitted.map { suffix($0.state) }
                if let all = try? model.forward(zip(admitted, tokens).map { .init(cache: $0.state.cache, tokens: $1) }) {
                    logits = admitted.indices.map { Array(all[($0 * v)..<(($0 + 1) * v)]) }
                } else {
                    // Some prompt is invalid (nothing was cached): one at a time, so only it fails.
                    logits = zip(admitted, tokens).map { a, tokens in
                        do { return try model.forward([.init(cache: a.state.cache, tokens: tokens)]) } catch {
                            onFinish(a.index, .failure(error))
                            return nil
                        }
                    }
                }
                for (n, var a) in admitted.enumerated() {
                    guard let l = logits[n] else { continue }
                    let (token, _) = a.state.accept(logits: l)
                    if a.state.finish != nil { onFinish(a.index, .success(a.state.result)); continue }
                    active.append((a.index, a.state, token))
                }
            }
            if active.isEmpty { return }
            if shouldStop() {
                cancelled = true
                for var a in active {
                    a.state.finish = .cancelled
                    onFinish(a.index, .success(a.state.result))
                }
                return
            }
            // One decode step for every active sequence.
            let logits = try model.forward(active.map { .init(cache: $0.state.cache, tokens: [$0.last]) })
            let v = model.config.vocabularySize
            // Each sequence samples with its own sampler and random state: on all cores.
            var states = active.map(\.state), tokens = [Int](repeating: 0, count: active.count)
            states.withUnsafeMutableBufferPointer { states in
                tokens.withUnsafeMutableBufferPointer { tokens in
                    let box = UncheckedSendable((states, tokens))
                    Parallel.forEach(0..<box.value.0.count, chunks: box.value.0.count >= 4 ? Parallel.coreCount : 1) { range in
                        let (states, tokens) = box.value
                        for n in range { tokens[n] = states[n].sample(logits: Array(logits[(n * v)..<((n + 1) * v)])) }
                    }
                }
            }
            var still = [(index: Int, state: SequenceState, last: Int)]()
            for (n, var a) in active.enumerated() {
                a.state = states[n]
                let (token, _) = a.state.accept(token: tokens[n])
                if a.state.finish != nil {
                    onFinish(a.index, .success(a.state.result))
                } else {
                    a.last = token
                    still.append(a)
                }
            }
            active = still
        }
    }

    /// Shortest shared prompt prefix worth prefilling once (shorter ones save little).
    static let minSharedPrefix = 16

    /// The longest prefix all `prompts` share.
    static func commonPrefix(_ prompts: [[Int]]) -> [Int] {
        guard var prefix = prompts.first else { return [] }
        for p in prompts.dropFirst() {
            let n = zip(prefix, p).prefix { $0 == $1 }.count
            prefix.removeLast(prefix.count - n)
        }
        return prefix
    }
}
