/// One text to continue, with its limits and sampling.
public struct GenerationRequest: Sendable {
    /// What to do with a prompt that leaves no room for `maxTokens` in the context.
    public enum Overflow: String, Sendable {
        /// Throw `ModelError.contextOverflow`.
        case error
        /// Drop the oldest prompt tokens (the model no longer sees the start).
        case truncatePrompt
    }

    /// Prompt token ids (already rendered with a chat template when chatting).
    public var prompt: [Int]
    /// Most tokens to generate.
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Generation stops when the text contains one of these (not included in the result).
    public var stopStrings: [String]
    /// Stop at the model's end-of-sequence / end-of-turn tokens.
    public var stopAtEndOfSequence: Bool
    public var overflow: Overflow
    /// Stop with `FinishReason.repetition` when the generated tokens start looping (nil: never).
    public var repetitionStop: RepetitionStop?
    /// Choose the first token among a few options instead of sampling it (nil: sample).
    public var firstTokenChoice: FirstTokenChoice?

    public init(prompt: [Int], maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                stopStrings: [String] = [], stopAtEndOfSequence: Bool = true, overflow: Overflow = .error,
                repetitionStop: RepetitionStop? = nil, firstTokenChoice: FirstTokenChoice? = nil) {
        self.repetitionStop = repetitionStop
        self.firstTokenChoice = firstTokenChoice
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopAtEndOfSequence = stopAtEndOfSequence
        self.overflow = overflow
    }

    /// The prompt that fits `contextLength` with room for `maxTokens`.
    /// - Throws: `ModelError.emptyPrompt`, `.contextOverflow` (policy `.error`, or when even
    ///   truncation cannot leave one prompt token), `SamplingError`.
    func fittedPrompt(contextLength: Int) throws -> [Int] {
        guard !prompt.isEmpty else { throw ModelError.emptyPrompt }
        guard maxTokens >= 0 else {
            throw SamplingError.invalidValue(name: "max-tokens", value: "\(maxTokens)", expected: ">= 0")
        }
        try sampling.validate()
        try repetitionStop?.validate()
        let needed = prompt.count + maxTokens
        guard needed > contextLength else { return prompt }
        let room = contextLength - maxTokens
        guard overflow == .truncatePrompt, room >= 1 else {
            throw ModelError.contextOverflow(tokens: needed, contextLength: contextLength)
        }
        return Array(prompt.suffix(room))
    }
}

/// Why generation ended.
public enum FinishReason: String, Sendable, Codable {
    /// The model produced an end-of-sequence / end-of-turn token.
    case endOfSequence = "eos"
    /// A stop string appeared.
    case stopString = "stop"
    /// `maxTokens` were generated.
    case length
    /// The caller asked to stop (e.g. Ctrl-C).
    case cancelled
    /// The text started looping (`GenerationRequest.repetitionStop`); the looped copies are
    /// part of the text.
    case repetition
}

/// What one request produced.
public struct GenerationResult: Sendable {
    /// Generated token ids (including a final end-of-sequence token, excluding nothing else).
    public var tokens: [Int]
    /// Generated text, up to (not including) a stop string; control tokens left out.
    public var text: String
    public var finishReason: FinishReason
    /// Prompt tokens the model saw (after any truncation).
    public var promptTokens: Int
    /// The stop string that ended generation, if any.
    public var stopString: String?
    /// The first-token choice made (`GenerationRequest.firstTokenChoice`), if any.
    public var choice: FirstTokenChoice.Outcome?
}

/// The state of one sequence being generated: its cache, sampler, decoder and stop matcher.
struct SequenceState {
    let request: GenerationRequest
    let prompt: [Int]
    let cache: KVCache
    var sampler: Sampler
    var decoder: StreamingDecoder
    var stops: StopMatcher
    let endTokens: Set<Int>
    var generated: [Int] = []
    var text = ""
    var finish: FinishReason?
    var stopString: String?
    var choice: FirstTokenChoice.Outcome?

    init(request: GenerationRequest, model: any CausalLanguageModel, tokenizer: any Tokenizer,
         precision: KVCache.Precision) throws {
        self.request = request
        prompt = try request.fittedPrompt(contextLength: model.config.contextLength)
        sampler = try Sampler(request.sampling)
        sampler.promptLength = prompt.count
        try request.firstTokenChoice?.validate(vocabularySize: model.config.vocabularySize)
        cache = model.makeCache(capacity: prompt.count + request.maxTokens, precision: precision)
        decoder = StreamingDecoder(tokenizer: tokenizer, skipSpecial: true)
        stops = StopMatcher(request.stopStrings)
        let special = tokenizer.specialTokens
        endTokens = request.stopAtEndOfSequence ? Set([special.eos, special.endOfTurn].compactMap { $0 }) : []
        if request.maxTokens == 0 { finish = .length }
    }

    var history: [Int] { prompt + generated }

    /// The next token from `logits`. Touches only this sequence's sampler, so different
    /// sequences can sample concurrently; ``accept(token:)`` then appends it.
    /// The first token is the chosen option's when the request has a ``FirstTokenChoice``.
    mutating func sample(logits: [Float]) -> Int {
        if generated.isEmpty, let options = request.firstTokenChoice {
            let outcome = options.choose(logits: logits)
            choice = outcome
            return options.options[outcome.chosen].emit
        }
        return sampler.next(logits: logits, history: history)
    }

    /// Appends a sampled `token` and updates the text.
    /// - Returns: the new text that can be shown (held-back bytes of a possible stop string or an
    ///   incomplete character are not shown yet).
    mutating func accept(token: Int) -> (token: Int, text: String) {
        generated.append(token)
        var piece = ""
        if endTokens.contains(token) {
            finish = .endOfSequence
        } else {
            piece = emit(decoder.append(token))
            if finish == nil, let rule = request.repetitionStop, rule.loop(in: generated) != nil { finish = .repetition }
            if finish == nil && generated.count >= request.maxTokens { finish = .length }
        }
        if finish != nil && finish != .stopString { piece += emit(decoder.finish(), final: true) }
        return (token, piece)
    }

    /// Passes decoded text through the stop matcher.
    private mutating func emit(_ piece: String, final: Bool = false) -> String {
        guard finish != .stopString else { return "" }
        var shown: String
        switch stops.append(piece) {
        case let .text(t): shown = t
        case let .stop(t, s):
            shown = t
            finish = .stopString
            stopString = s
        }
        if final && finish != .stopString { shown += stops.finish() }
        text += shown
        return shown
    }

    var result: GenerationResult {
        GenerationResult(tokens: generated, text: text, finishReason: finish ?? .cancelled, promptTokens: prompt.count,
                         stopString: stopString, choice: choice)
    }
}
