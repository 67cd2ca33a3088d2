import Foundation

// MARK: - Settings and results

/// Decoding settings for one batch of prompts.
public struct SamplingSettings: Codable, Sendable, Equatable {
    public var temperature: Double
    public var topP: Double
    public var maxTokens: Int
    /// Per-request seed for backends that honour one (request `i` of a batch gets `seed + i`).
    public var seed: UInt64?
    public var stop: [String]

    public init(temperature: Double, topP: Double = 1, maxTokens: Int, seed: UInt64? = nil, stop: [String] = []) {
        self.temperature = temperature; self.topP = topP; self.maxTokens = maxTokens; self.seed = seed; self.stop = stop
    }

    /// Stage 1 (the paper, after self-instruct): temperature 1.0, top-p 0.98.
    public static let brainstorm = SamplingSettings(temperature: 1.0, topP: 0.98, maxTokens: 384)
    /// Stage 2: greedy.
    public static let respond = SamplingSettings(temperature: 0, topP: 1, maxTokens: 320)
}

/// Why a completion ended.
public enum FinishReason: String, Codable, Sendable {
    case stop, length, error
}

/// One generated text, or the error that replaced it (reported per example, never fatal).
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
/// The local engine plugs in here: `modelIdentifier` = the GGUF path, `modelSHA256` =
/// ``SHA256/hexDigest(ofFile:)`` of it, `usesChat` = whether the prompts are wrapped in the model's
/// chat template; `complete` renders each prompt (one user turn), decodes the batch together with
/// `settings` (temperature 0 = greedy; `stop` strings end a sequence), and reports
/// `.length` when `maxTokens` ran out, `.stop` otherwise, `.failed` for a prompt that does not fit
/// the context (a per-example error, not a crash).
public protocol GenerationBackend: Sendable {
    /// Names the model in every example: the model file's SHA-256 for a local model, or
    /// "openai:<model>@<base URL>" for an endpoint.
    var modelIdentifier: String { get }
    /// The SHA-256 of the model file when known.
    var modelSHA256: String? { get }
    /// Whether prompts are sent as chat messages (the backend applies the template).
    var usesChat: Bool { get }
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
