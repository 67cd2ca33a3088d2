import Foundation
import LLM

// MARK: - Settings and results

/// Decoding settings for one batch of prompts.
public struct SamplingSettings: Codable, Sendable, Equatable {
    public var temperature: Double
    public var topP: Double
    public var maxTokens: Int
    /// Per-request seed for backends that honour one (request `i` of a batch gets `seed + i`).
    public var seed: UInt64?
    public var stop: [String]
    /// Whether the local engine wraps each prompt in the model's chat template (one user turn);
    /// false sends it as a plain completion prompt, which the model continues. An
    /// OpenAI-compatible backend ignores it (its `chat` configuration picks the endpoint).
    public var chat: Bool
    /// End a looping completion with ``FinishReason/repetition`` (nil: off). The local engine
    /// checks it on every token; an OpenAI-compatible backend sends it as `repetition_stop`
    /// (SelfSpec's server understands it; set it only for such a server).
    public var repetitionStop: RepetitionStop?

    public init(temperature: Double, topP: Double = 1, maxTokens: Int, seed: UInt64? = nil, stop: [String] = [], chat: Bool = true,
                repetitionStop: RepetitionStop? = nil) {
        self.temperature = temperature; self.topP = topP; self.maxTokens = maxTokens; self.seed = seed; self.stop = stop
        self.chat = chat
        self.repetitionStop = repetitionStop
    }

    /// Stage 1, as SelfSpec runs it by default: a plain completion prompt (self-instruct's form)
    /// sampled at temperature 0.5, top-p 0.9. With the 135M-270M models SelfSpec runs locally,
    /// the paper's 1.0 / 0.98 (``paperBrainstorm``; its main base model is MPT-30B) gives almost
    /// only word salad: in blind ratings (BENCHMARKS.md) 0-2 of 24 brainstormed tasks were
    /// coherent at 1.0, 7 (SmolLM2) and 12 (Gemma 3) at 0.5.
    public static let brainstorm = SamplingSettings(temperature: 0.5, topP: 0.9, maxTokens: 384, chat: false)
    /// Stage 1 as the paper samples it (after self-instruct): temperature 1.0, top-p 0.98.
    public static let paperBrainstorm = SamplingSettings(temperature: 1.0, topP: 0.98, maxTokens: 384, chat: false)
    /// Stage 2: greedy.
    public static let respond = SamplingSettings(temperature: 0, topP: 1, maxTokens: 320)
}

/// Why a completion ended.
public enum FinishReason: String, Codable, Sendable {
    case stop, length, error
    /// The text started looping (`SamplingSettings.repetitionStop`).
    case repetition
}

/// One generated text, or the error that replaced it (reported per example; the pipeline stops
/// only when every request of a stage fails 3 rounds in a row).
public struct Completion: Sendable, Equatable {
    public var text: String
    public var finishReason: FinishReason
    public var error: String?

    public init(text: String, finishReason: FinishReason, error: String? = nil) {
        self.text = text; self.finishReason = finishReason; self.error = error
    }

    public static func failed(_ message: String) -> Completion { Completion(text: "", finishReason: .error, error: message) }

    /// A completion the backend stopped on request (Ctrl-C): the pipeline drops its round.
    public static let cancelled = Completion.failed(Completion.cancelledMessage)
    static let cancelledMessage = "cancelled"
    public var wasCancelled: Bool { finishReason == .error && error == Completion.cancelledMessage }
}

// MARK: - Backend

/// Something that turns prompts into completions: the local engine (batched, in-process) or an
/// OpenAI-compatible server. Synchronous: a call returns when the whole batch is done, and
/// implementations use their own parallelism inside (batched decoding, concurrent requests).
///
/// The local engine plugs in here: `modelIdentifier` = the GGUF file's SHA-256 (plus the adapter
/// and ` weights=bfloat16` when used), `modelSHA256` = ``SHA256/hexDigest(ofFile:)`` of it,
/// `usesChat(for:)` = whether the model has a chat template and `settings.chat`; `complete` renders each
/// prompt (one user turn when `settings.chat`, else plain text), decodes the batch together with
/// `settings` (temperature 0 = greedy; `stop` strings end a sequence), and reports
/// `.length` when `maxTokens` ran out, `.repetition` when `settings.repetitionStop` saw a loop, `.stop` otherwise, `.failed` for a prompt that does not fit
/// the context (a per-example error, not a crash), ``Completion/cancelled`` for prompts a Ctrl-C
/// stopped.
public protocol GenerationBackend: Sendable {
    /// Names the model in every example: the model file's SHA-256 for a local model (with
    /// ` adapter=PATH adapter_sha256=HASH` and ` weights=bfloat16` when used), or
    /// "openai:<model>@<base URL>" for an endpoint.
    var modelIdentifier: String { get }
    /// The SHA-256 of the model file when known.
    var modelSHA256: String? { get }
    /// Whether a batch with `settings` goes out as chat messages: for the local engine when the
    /// model has a template and `settings.chat`; for an endpoint, when it is the chat endpoint.
    func usesChat(for settings: SamplingSettings) -> Bool
    /// Completions for `prompts`, in order; a failed prompt gives ``Completion/failed(_:)``.
    func complete(_ prompts: [String], settings: SamplingSettings) -> [Completion]
}

/// Counts tokens for prompt budgets. The default approximates a BPE tokenizer (about 4 characters
/// or 0.75 words a token, whichever is larger); pass the model tokenizer's `encode(_:).count`
/// when it is loaded.
public typealias TokenCounter = @Sendable (String) -> Int

public let approximateTokenCount: TokenCounter = { text in
    max((text.utf8.count + 3) / 4, (RougeVocabulary.words(text).count * 4 + 2) / 3)
}
