import Foundation
import Tensor

/// How the next token is chosen from the logits. Defaults give greedy decoding.
///
/// Applied in this order (as llama.cpp's default chain, with temperature before the filters so
/// that top-p and min-p see the distribution that is sampled):
/// 1. repetition penalty (logit / p if positive, * p if negative) and frequency penalty
///    (`- f * count`) for tokens among the last `penaltyLastN` of the history; then DRY
///    (`dryMultiplier`) over the generated tokens;
/// 2. `temperature == 0`: the arg-max (first on ties); otherwise divide by the temperature;
/// 3. keep the `topK` largest (0: all); 4. softmax; 5. keep the smallest prefix whose mass reaches
///    `topP`; 6. drop tokens whose probability is below `minP` times the largest;
/// 7. renormalise and draw with the seeded generator.
public struct SamplingParameters: Sendable, Equatable, Codable {
    /// 0 means greedy.
    public var temperature: Float = 0
    /// 0 keeps every token.
    public var topK: Int = 0
    public var topP: Float = 1
    public var minP: Float = 0
    /// 1 is off; 1.1 is a common mild value.
    public var repetitionPenalty: Float = 1
    /// 0 is off.
    public var frequencyPenalty: Float = 0
    /// How many of the latest tokens the penalties look at.
    public var penaltyLastN: Int = 64
    /// DRY, "don't repeat yourself" (the sampler of koboldcpp and llama.cpp): a token that would
    /// continue a sequence of L ≥ `dryAllowedLength` tokens the generated text already holds,
    /// where that sequence was followed by this token before, loses
    /// `dryMultiplier · dryBase^(L − dryAllowedLength)` from its logit. A loop is a long repeated
    /// sequence, so its next token is pushed down harder the longer the repeat, while single
    /// repeated words and figures (which the repetition penalty pushes down alike) are left alone.
    /// Only the generated tokens count (the last 1,024), not the prompt: quoting a passage is not
    /// penalised. 0 is off; 0.8 is the usual value.
    public var dryMultiplier: Float = 0
    public var dryBase: Float = 1.75
    public var dryAllowedLength: Int = 2
    /// Seed of the generator; the same seed, logits and parameters give the same tokens.
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0, repetitionPenalty: Float = 1,
                frequencyPenalty: Float = 0, penaltyLastN: Int = 64, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.frequencyPenalty = frequencyPenalty
        self.penaltyLastN = penaltyLastN
        self.seed = seed
    }

    /// - Throws: `SamplingError.invalidValue` naming the first value out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ name: String, _ value: Any, _ expected: String) throws {
            if !ok { throw SamplingError.invalidValue(name: name, value: "\(value)", expected: expected) }
        }
        try check(temperature.isFinite && temperature >= 0, "temperature", temperature, ">= 0")
        try check(topK >= 0, "top-k", topK, ">= 0 (0 = off)")
        try check(topP > 0 && topP <= 1, "top-p", topP, "in (0, 1]")
        try check(minP >= 0 && minP <= 1, "min-p", minP, "in [0, 1]")
        try check(repetitionPenalty.isFinite && repetitionPenalty > 0, "repeat-penalty", repetitionPenalty, "> 0 (1 = off)")
        try check(frequencyPenalty.isFinite, "frequency-penalty", frequencyPenalty, "a finite number")
        try check(penaltyLastN >= 0, "penalty-last-n", penaltyLastN, ">= 0")
        try check(dryMultiplier.isFinite && dryMultiplier >= 0, "dry-multiplier", dryMultiplier, ">= 0 (0 = off)")
        try check(dryBase.isFinite && dryBase >= 1, "dry-base", dryBase, ">= 1")
        try check(dryAllowedLength >= 1, "dry-allowed-length", dryAllowedLength, ">= 1")
    }
}

/// A sampling value out of range.
public enum SamplingError: LocalizedError, Equatable, Sendable {
    case invalidValue(name: String, value: String, expected: String)

    public var errorDescription: String? {
        switch self {
        case let .invalidValue(name, value, expected): return "invalid \(name) \(value): expected \(expected)"
        }
    }
}

/// Chooses the next token from a row of logits; swappable (greedy, sampled, constrained...).
public protocol TokenSampler {
    /// - Parameters:
    ///   - logits: `(V)` logits of the next token.
    ///   - history: the tokens so far (prompt and generated), for the penalties.
    /// - Returns: the chosen token id.
    mutating func next(logits: [Float], history: [Int]) -> Int
}

/// The standard sampler: penalties, temperature, top-k, top-p, min-p, seeded draw.
public struct Sampler: TokenSampler, Sendable {
    public let parameters: SamplingParameters
    private var random: Xoshiro256
    /// How many tokens at the start of the history are the prompt (DRY looks only after them);
    /// set by the generation engine.
    public var promptLength = 0

    /// - Throws: `SamplingError` for invalid parameters.
    public init(_ parameters: SamplingParameters = SamplingParameters()) throws {
        try parameters.validate()
        self.parameters = parameters
        random = Xoshiro256(seed: parameters.seed)
    }

    public mutating func next(logits: [Float], history: [Int]) -> Int {
        let candidates = distribution(logits: logits, history: history)
        guard candidates.count > 1 else { return candidates[0].id }
        let u = Float(random.nextUnitDouble())
        var cumulative: Float = 0
        for c in candidates {
            cumulative += c.probability
            if u < cumulative { return c.id }
        }
        return candidates[candidates.count - 1].id
    }

    /// The tokens that can be drawn and their probabilities (summing to 1), most likely first;
    /// a single token with probability 1 when greedy.
    public func distribution(logits: [Float], history: [Int]) -> [(id: Int, probability: Float)] {
        let p = parameters
        var logits = logits
        applyPenalties(&logits, history: history)
        if p.dryMultiplier > 0 {
            Self.applyDRY(&logits, generated: history[min(max(promptLength, 0), history.count)...].suffix(Self.dryWindow), parameters: p)
        }
        if p.temperature == 0 || p.topK == 1 {
            var best = 0
            for i in logits.indices where logits[i] > logits[best] { best = i }
            return [(best, 1)]
        }
        // The candidates, most likely first (ties by id): only the head of the vocabulary that
        // top-k, top-p or min-p can keep is sorted (see `head`), not all V tokens per step.
        let maxLogit = logits.max()!
        let weights = logits.map { Double(exp(($0 - maxLogit) / p.temperature)) }
        let order: [Int]
        var probs: [Double]
        if p.topK > 0 && p.topK < logits.count {
            order = Array(Self.head(logits, maxLogit: maxLogit, temperature: p.temperature) { count, _, _ in count >= p.topK }.prefix(p.topK))
            probs = order.map { weights[$0] }
            let total = probs.reduce(0, +)
            probs = probs.map { $0 / total }
        } else {
            let total = weights.reduce(0, +)
            // Margins keep the choice of the head safe from the order of float summation.
            let topP = Double(p.topP), minP = Double(p.minP)
            order = Self.head(logits, maxLogit: maxLogit, temperature: p.temperature, weights: weights) { _, mass, cutWeight in
                (topP < 1 && mass / total >= topP + 1e-9) || (minP > 0 && cutWeight < minP / 2)
            }
            probs = order.map { weights[$0] / total }
        }
        var keep = probs.count
        if p.topP < 1 {
            var mass = 0.0
            for (i, q) in probs.enumerated() {
                mass += q
                if mass >= Double(p.topP) { keep = i + 1; break }
            }
        }
        if p.minP > 0 {
            let threshold = Double(p.minP) * probs[0]
            keep = min(keep, max(1, probs.prefix(keep).firstIndex { $0 < threshold } ?? keep))
        }
        let kept = probs.prefix(keep).reduce(0, +)
        return (0..<keep).map { (order[$0], Float(probs[$0] / kept)) }
    }

    /// Width of a head bin in logits, in units of the temperature: a quarter of a nat of weight.
    static let binWidth: Float = 0.25
    /// Bins scanned before falling back to sorting everything (a logit gap of 32 temperatures).
    static let binCount = 128

    /// The most likely tokens, sorted by logit (ties by id): logits are binned by their distance
    /// below the largest (``binWidth`` temperatures per bin) and the head is the first bins
    /// whose token count, weight (`weights`, when given) and bound on the relative weight of
    /// every token left out satisfy `enough(count, mass, cutWeight)`; all tokens, sorted, when
    /// no prefix of ``binCount`` bins does. The head holds every token above a logit threshold,
    /// so it is a prefix of the full sort's order, and only it is sorted.
    static func head(_ logits: [Float], maxLogit: Float, temperature: Float, weights: [Double]? = nil,
                     enough: (_ count: Int, _ mass: Double, _ cutWeight: Double) -> Bool) -> [Int] {
        let before: (Int, Int) -> Bool = { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let width = binWidth * temperature, last = binCount
        // Bins only grow as the logit falls (non-finite and far logits go to the last bin).
        func bin(_ x: Float) -> Int {
            let d = (maxLogit - x) / width
            return d < Float(last) ? Int(d) : last
        }
        var counts = [Int](repeating: 0, count: last + 1), masses = [Double](repeating: 0, count: last + 1)
        for i in logits.indices {
            let b = bin(logits[i])
            counts[b] += 1
            if let weights { masses[b] += weights[i] }
        }
        var count = 0, mass = 0.0
        for b in 0..<last {
            count += counts[b]
            mass += masses[b]
            if count == logits.count { break }
            if count > 0 && enough(count, mass, Double(exp(-Float(b + 1) * binWidth))) {
                return logits.indices.filter { bin(logits[$0]) <= b }.sorted(by: before)
            }
        }
        return logits.indices.sorted(by: before)
    }

    /// The most generated tokens DRY looks back over, and the longest repeat it measures.
    static let dryWindow = 1024, dryLongestRepeat = 64

    /// DRY (see ``SamplingParameters/dryMultiplier``): for every earlier position of the last
    /// token, the length L of the sequence ending there that equals the one ending now; the token
    /// that followed it gets the penalty for the longest such L.
    static func applyDRY(_ logits: inout [Float], generated: ArraySlice<Int>, parameters p: SamplingParameters) {
        let g = Array(generated), n = g.count
        guard n >= p.dryAllowedLength, let last = g.last else { return }
        var longest: [Int: Int] = [:]
        for j in stride(from: n - 2, through: 0, by: -1) where g[j] == last {
            var length = 1
            while length <= j && length < dryLongestRepeat && g[j - length] == g[n - 1 - length] { length += 1 }
            let follower = g[j + 1]
            if length > longest[follower, default: 0] { longest[follower] = length }
        }
        for (t, length) in longest where length >= p.dryAllowedLength && logits.indices.contains(t) {
            logits[t] -= p.dryMultiplier * pow(p.dryBase, Float(length - p.dryAllowedLength))
        }
    }

    private func applyPenalties(_ logits: inout [Float], history: [Int]) {
        let p = parameters
        guard p.repetitionPenalty != 1 || p.frequencyPenalty != 0, p.penaltyLastN > 0 else { return }
        var counts = [Int: Int]()
        for t in history.suffix(p.penaltyLastN) where logits.indices.contains(t) { counts[t, default: 0] += 1 }
        for (t, n) in counts {
            if p.repetitionPenalty != 1 {
                logits[t] = logits[t] > 0 ? logits[t] / p.repetitionPenalty : logits[t] * p.repetitionPenalty
            }
            logits[t] -= p.frequencyPenalty * Float(n)
        }
    }
}

