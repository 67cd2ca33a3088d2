/// Generates text with any `CausalLanguageModel`: one stream at a time with tokens as they come
/// (`generate`), or many requests with continuous batching (`generateBatch`; `BatchScheduler`
/// for requests that arrive at any time). All of them run on one `BatchEngine`.
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
        let engine = BatchEngine(generator: self, maxBatch: 1)
        var outcome: Result<GenerationResult, Error>?, stop = false
        func report(_: Int, _ event: BatchEngine.Event) {
            switch event {
            case let .text(piece): if onText(piece) == .stop { stop = true }
            case let .finished(result): outcome = result
            }
        }
        engine.admit([(0, request)], report: report)
        while outcome == nil {
            if stop { engine.cancel(where: { _ in true }, report: report) } else { engine.step(report: report) }
        }
        return try outcome!.get()
    }

    // MARK: Many streams

    /// Generates a continuation for every request, `maxBatch` at a time with continuous
    /// batching (`BatchEngine`): a sequence that finishes frees its slot for the next waiting
    /// request before the next step. A prompt prefix that all requests share is prefilled once.
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
                              onFinish: (Int, Result<GenerationResult, Error>) -> Void) {
        var shared = requests.count > 1 ? Self.commonPrefix(requests.map(\.prompt)) : []
        if shared.count < Self.minSharedPrefix { shared = [] }
        let engine = BatchEngine(generator: self, maxBatch: maxBatch, sharedPrefix: shared)
        let report: BatchEngine.Report = { i, event in if case let .finished(result) = event { onFinish(i, result) } }
        var next = requests.startIndex
        while true {
            if shouldStop() { break }
            let admitted = next..<min(requests.endIndex, next + engine.freeSlots)
            engine.admit(admitted.map { ($0, requests[$0]) }, report: report)
            next = admitted.upperBound
            if engine.activeIDs.isEmpty && next == requests.endIndex { return }
            if shouldStop() { break }
            engine.step(report: report)
        }
        engine.cancel(where: { _ in true }, report: report)
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
