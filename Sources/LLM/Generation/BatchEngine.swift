import Tensor

/// Continuous batching over one model: the sequences in flight, the admission of new ones and
/// one decode step for all of them. The one engine behind `TextGenerator.generateBatch` (a fixed
/// list of requests) and `BatchScheduler` (requests arriving at any time).
///
/// Admitted prompts are prefilled together in one forward pass (one pass over the weights); a
/// decode step stacks one token of every active sequence into a `(B, C)` matrix, and each
/// sequence then samples with its own sampler and random state, on all cores. A sequence that
/// finishes (or is cancelled) leaves `active` at once, so its slot is free before the next step.
/// A prompt prefix that all requests share (`sharedPrefix`) is prefilled once, on first use,
/// and copied into each new sequence's cache.
///
/// Not thread-safe: one thread drives it. Everything a request produces goes to the `report`
/// closure of the call that produced it, as the request's id and an `Event`.
final class BatchEngine {
    /// What a request produced.
    enum Event {
        /// New text (complete UTF-8 characters; a possible stop string held back).
        case text(String)
        /// The request ended: its result, or the error that request gave (it alone fails).
        case finished(Result<GenerationResult, Error>)
    }

    typealias Report = (_ id: Int, _ event: Event) -> Void

    private struct Sequence {
        let id: Int
        var state: SequenceState
        /// The token to feed in the next decode step.
        var last: Int
    }

    let generator: TextGenerator
    /// Most sequences in flight (memory: each holds a cache of prompt + max tokens).
    let maxBatch: Int
    private var active: [Sequence] = []
    /// Tokens every prompt starts with (instructions, a template's system turn), and their cache
    /// once prefilled.
    private var shared: [Int]
    private var sharedCache: KVCache?

    /// - Parameter sharedPrefix: tokens the prompts start with, prefilled once (empty: none).
    init(generator: TextGenerator, maxBatch: Int, sharedPrefix: [Int] = []) {
        self.generator = generator
        self.maxBatch = max(1, maxBatch)
        shared = sharedPrefix
    }

    /// Ids of the sequences in flight, in admission order.
    var activeIDs: [Int] { active.map(\.id) }
    /// Slots left for `admit`.
    var freeSlots: Int { max(0, maxBatch - active.count) }

    // MARK: Admission

    /// Starts `requests`: their prompts prefilled together, then their first tokens sampled.
    /// The caller admits at most `freeSlots`.
    func admit(_ requests: [(id: Int, request: GenerationRequest)], report: Report) {
        let model = generator.model
        var admitted: [Sequence] = []
        for (id, request) in requests {
            do {
                let state = try SequenceState(request: request, model: model, tokenizer: generator.tokenizer,
                                              precision: generator.cachePrecision)
                if state.finish != nil { report(id, .finished(.success(state.result))); continue }
                admitted.append(Sequence(id: id, state: state, last: 0))
            } catch {
                report(id, .finished(.failure(error)))
            }
        }
        guard !admitted.isEmpty else { return }
        let v = model.config.vocabularySize
        let tokens = admitted.map { suffix($0.state) }
        var logits: [[Float]?]
        if let all = try? model.forward(zip(admitted, tokens).map { .init(cache: $0.state.cache, tokens: $1) }) {
            logits = admitted.indices.map { Array(all[($0 * v)..<(($0 + 1) * v)]) }
        } else {
            // Some prompt is invalid (nothing was cached): one at a time, so only it fails.
            logits = zip(admitted, tokens).map { s, tokens in
                do { return try model.forward([.init(cache: s.state.cache, tokens: tokens)]) } catch {
                    report(s.id, .finished(.failure(error)))
                    return nil
                }
            }
        }
        for (n, var s) in admitted.enumerated() {
            guard let l = logits[n] else { continue }
            let token = s.state.sample(logits: l)
            accept(&s, token: token, report: report)
        }
    }

    /// The prompt tokens still to prefill after copying in the shared prefix's cache.
    private func suffix(_ state: SequenceState) -> [Int] {
        guard !shared.isEmpty, state.prompt.count > shared.count, state.prompt.starts(with: shared) else { return state.prompt }
        if sharedCache == nil {
            let cache = generator.model.makeCache(capacity: shared.count, precision: generator.cachePrecision)
            guard (try? generator.model.forward([.init(cache: cache, tokens: shared)])) != nil else {
                shared = []
                return state.prompt
            }
            sharedCache = cache
        }
        state.cache.copy(from: sharedCache!)
        return Array(state.prompt[shared.count...])
    }

    // MARK: Decoding

    /// One decode step for every active sequence. If the forward pass fails, every active
    /// sequence fails with its error.
    func step(report: Report) {
        guard !active.isEmpty else { return }
        let model = generator.model
        let logits: [Float]
        do {
            logits = try model.forward(active.map { .init(cache: $0.state.cache, tokens: [$0.last]) })
        } catch {
            for s in active { report(s.id, .finished(.failure(error))) }
            active.removeAll()
            return
        }
        let v = model.config.vocabularySize
        var sequences = active, tokens = [Int](repeating: 0, count: active.count)
        active.removeAll(keepingCapacity: true)
        // Sampling touches only each sequence's own sampler: the sequences sample concurrently.
        sequences.withUnsafeMutableBufferPointer { sequences in
            tokens.withUnsafeMutableBufferPointer { tokens in
                let box = UncheckedSendable((sequences, tokens))
                Parallel.forEach(0..<box.value.0.count, chunks: box.value.0.count >= 4 ? Parallel.coreCount : 1) { range in
                    let (sequences, tokens) = box.value
                    for n in range { tokens[n] = sequences[n].state.sample(logits: Array(logits[(n * v)..<((n + 1) * v)])) }
                }
            }
        }
        for (n, var s) in sequences.enumerated() { accept(&s, token: tokens[n], report: report) }
    }

    /// Appends a sampled token to `s`, reports its text, and keeps `s` active unless it finished.
    private func accept(_ s: inout Sequence, token: Int, report: Report) {
        let (token, piece) = s.state.accept(token: token)
        if !piece.isEmpty { report(s.id, .text(piece)) }
        if s.state.finish != nil {
            report(s.id, .finished(.success(s.state.result)))
        } else {
            s.last = token
            active.append(s)
        }
    }

    // MARK: Cancelling

    /// Ends the active sequences whose ids satisfy `shouldCancel` (finish reason `cancelled`,
    /// with what they generated so far); their slots are free at once.
    func cancel(where shouldCancel: (Int) -> Bool, report: Report) {
        let all = active
        active.removeAll(keepingCapacity: true)
        for var s in all {
            guard shouldCancel(s.id) else { active.append(s); continue }
            s.state.finish = .cancelled
            report(s.id, .finished(.success(s.state.result)))
        }
    }
}
