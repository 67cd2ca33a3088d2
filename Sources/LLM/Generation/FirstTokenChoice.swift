import Foundation

/// A choice among a few answers made at the first generated token (Yes / No / Maybe), instead of
/// sampling it.
///
/// Each option's probability is the model's probability mass on the first tokens of the ways it
/// may be written (`tokens`), read from the same prefill that starts generation. The option with
/// the highest `log P(option) - logPrior` is chosen and its `emit` token becomes the first token;
/// generation then continues as usual. With `logPrior` from a content-free prompt this is
/// contextual calibration (Zhao et al. 2021, "Calibrate Before Use"); with zeros, the model's own
/// choice restricted to the options.
public struct FirstTokenChoice: Sendable, Equatable {
    public struct Option: Sendable, Equatable {
        /// First tokens whose probabilities add up to the option's (no token in two options).
        public var tokens: [Int]
        /// The token generated when the option is chosen.
        public var emit: Int
        /// Subtracted from the option's log-probability before choosing (0: none).
        public var logPrior: Double

        public init(tokens: [Int], emit: Int, logPrior: Double = 0) {
            self.tokens = tokens
            self.emit = emit
            self.logPrior = logPrior
        }
    }

    public var options: [Option]

    public init(options: [Option]) { self.options = options }

    /// A choice among `words` (e.g. yes, no, maybe): each word's probability is that of its
    /// one-token forms, lowercase, capitalized and uppercase, with and without a leading space (a
    /// form of several tokens is left out: its first piece, "Y" of "YES", begins other words too;
    /// a token two words share is left out of both); the capitalized word is what is generated.
    /// - Throws: `SamplingError` when a capitalized word is not one token of its own.
    public static func words(_ words: [String], tokenizer: any Tokenizer) throws -> FirstTokenChoice {
        let forms = words.map { word in
            [word.lowercased(), word.capitalized, word.uppercased()].flatMap { [$0, " " + $0] }.compactMap { form -> Int? in
                let t = tokenizer.encode(form)
                return t.count == 1 ? t[0] : nil
            }
        }
        var options: [Option] = []
        for (i, word) in words.enumerated() {
            let others = Set(forms.indices.filter { $0 != i }.flatMap { forms[$0] })
            var own: [Int] = []
            for t in forms[i] where !others.contains(t) && !own.contains(t) { own.append(t) }
            guard let emit = tokenizer.encode(word.capitalized).first, own.contains(emit) else {
                throw SamplingError.invalidValue(name: "first-token-choice", value: "\"\(word.capitalized)\"",
                                                 expected: "a word this model's tokenizer writes as one token of its own")
            }
            options.append(Option(tokens: own, emit: emit))
        }
        return FirstTokenChoice(options: options)
    }

    /// What was chosen, and the raw log-probability of every option (before the prior).
    public struct Outcome: Sendable, Equatable {
        public var chosen: Int
        public var logProbs: [Double]
    }

    /// Each option's log-probability under `logits` (softmax over the whole vocabulary).
    public func logProbs(logits: [Float]) -> [Double] {
        let m = Double(logits.max() ?? 0)
        var total = 0.0
        for l in logits { total += exp(Double(l) - m) }
        let logZ = m + log(total)
        return options.map { o in
            let mass = o.tokens.reduce(0.0) { $0 + (logits.indices.contains($1) ? exp(Double(logits[$1]) - logZ) : 0) }
            return mass > 0 ? log(mass) : -.infinity
        }
    }

    /// The option chosen under `logits`.
    public func choose(logits: [Float]) -> Outcome {
        let lp = logProbs(logits: logits)
        var best = 0
        for i in options.indices where lp[i] - options[i].logPrior > lp[best] - options[best].logPrior { best = i }
        return Outcome(chosen: best, logProbs: lp)
    }

    /// - Throws: `SamplingError` when there is no option, or a token is outside the vocabulary
    ///   or in two options.
    func validate(vocabularySize: Int) throws {
        guard !options.isEmpty else {
            throw SamplingError.invalidValue(name: "first-token-choice", value: "no options", expected: "at least one option")
        }
        var seen = Set<Int>()
        for o in options {
            for t in o.tokens + [o.emit] where !(0..<vocabularySize).contains(t) {
                throw SamplingError.invalidValue(name: "first-token-choice", value: "token \(t)", expected: "0..<\(vocabularySize)")
            }
            for t in o.tokens where !seen.insert(t).inserted {
                throw SamplingError.invalidValue(name: "first-token-choice", value: "token \(t) in two options", expected: "disjoint options")
            }
            guard o.logPrior.isFinite else {
                throw SamplingError.invalidValue(name: "first-token-choice", value: "prior \(o.logPrior)", expected: "a finite log-probability")
            }
        }
    }
}
