/// When generation counts as looping: the generated tokens end with the same span of tokens
/// written back to back several times.
///
/// The rule, checked after every generated token: for some period `p` in `1...maxPeriod`, the
/// last `p · c` tokens are `c` copies of one span of `p` tokens, with `c ≥ repeats` and
/// `p · c ≥ minTokens`. So a sentence of 20 tokens loops once it has been written `repeats`
/// times in a row, while a short span (one token, "1, 1, 1") must run for `minTokens` tokens
/// before it counts: lists and ellipses are not cut. Only generated tokens are looked at (never
/// the prompt), and the match is exact on token ids, which is what greedy decoding produces once
/// it is caught in a loop; sampled text that drifts between copies is not caught.
///
/// Off by default in `GenerationRequest` (OpenAI semantics); `selfspec ask` and `chat` turn
/// ``default`` on, a setting chosen on PubMedQA dev questions (BENCHMARKS.md, "Loops").
public struct RepetitionStop: Sendable, Equatable, Codable {
    /// Copies of the span, counting the first, that make a loop (at least 2).
    public var repeats: Int
    /// Tokens the repeated run must cover, all copies together (at least 1).
    public var minTokens: Int
    /// The longest span looked for, in tokens (at least 1).
    public var maxPeriod: Int

    /// - Parameters:
    ///   - repeats: copies of the span, counting the first, that make a loop (≥ 2).
    ///   - minTokens: tokens the whole run must cover (≥ 1).
    ///   - maxPeriod: the longest span looked for, in tokens (≥ 1).
    public init(repeats: Int = 2, minTokens: Int = 32, maxPeriod: Int = 128) {
        self.repeats = repeats
        self.minTokens = minTokens
        self.maxPeriod = maxPeriod
    }

    /// The setting `ask` and `chat` use: a span of up to 128 tokens (about 5 sentences) written
    /// twice in a row, at least 32 tokens in all (a span shorter than 16 tokens must come back
    /// more often: a token 32 times, "mechanical injury, " 11 times). On 40 PubMedQA dev
    /// questions it stopped 17 of SmolLM2's 40 greedy answers, every one a verbatim loop, and no
    /// answer that ended by itself (BENCHMARKS.md, "Loops").
    public static let `default` = RepetitionStop()

    enum CodingKeys: String, CodingKey { case repeats, minTokens = "min_tokens", maxPeriod = "max_period" }

    /// - Throws: `SamplingError.invalidValue` naming the value out of range.
    public func validate() throws {
        if repeats < 2 { throw SamplingError.invalidValue(name: "repetition repeats", value: "\(repeats)", expected: ">= 2") }
        if minTokens < 1 { throw SamplingError.invalidValue(name: "repetition min-tokens", value: "\(minTokens)", expected: ">= 1") }
        if maxPeriod < 1 { throw SamplingError.invalidValue(name: "repetition max-period", value: "\(maxPeriod)", expected: ">= 1") }
    }

    /// The loop `tokens` end with, if any: the shortest period that makes one.
    /// - Returns: the period `p` and the number of copies `c` (the last `p · c` tokens), or nil.
    public func loop(in tokens: [Int]) -> (period: Int, copies: Int)? {
        let n = tokens.count
        let longest = min(maxPeriod, n / max(repeats, 1))
        guard n >= minTokens, longest >= 1 else { return nil }
        for p in 1...longest {
            // Tokens that agree with the token p places before them, counted back from the end.
            var run = 0
            while run < n - p, tokens[n - 1 - run] == tokens[n - 1 - run - p] { run += 1 }
            let copies = (run + p) / p
            if copies >= repeats && copies * p >= minTokens { return (p, copies) }
        }
        return nil
    }
}
