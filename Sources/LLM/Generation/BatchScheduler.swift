import Foundation

/// Continuous batching for requests that arrive at any time (a server's clients).
///
/// One generation thread owns the model. Each loop iteration it admits waiting requests into
/// free slots (their prompts prefilled together), runs one decode step for every active
/// sequence as a `(B, C)` matrix, and hands each request's new text to its own stream. A request
/// whose consumer stops listening (the stream is cancelled or dropped, e.g. the HTTP client
/// disconnected) is dropped before the next step and its slot freed.
///
/// Requests beyond `maxBatch` wait in a queue of at most `maxQueue`; `submit` throws
/// `SchedulerError.queueFull` when it is full, so callers can answer "busy" at once.
///
/// ```swift
/// let scheduler = BatchScheduler(generator: TextGenerator(model: model, tokenizer: tokenizer))
/// for try await event in try scheduler.submit(request) {
///     switch event {
///     case let .text(piece): print(piece, terminator: "")
///     case let .finished(result): print("\n", result.finishReason)
///     }
/// }
/// ```
public final class BatchScheduler: @unchecked Sendable {
    // @unchecked: the mutable queue state is guarded by `condition`; `active` is touched by the
    // generation thread only.

    /// Limits of the scheduler.
    public struct Options: Sendable {
        /// Most sequences decoded together (each holds a KV cache of prompt + max tokens).
        public var maxBatch: Int
        /// Most requests waiting for a slot; more are refused with `SchedulerError.queueFull`.
        public var maxQueue: Int

        public init(maxBatch: Int = 8, maxQueue: Int = 64) {
            self.maxBatch = max(1, maxBatch)
            self.maxQueue = max(0, maxQueue)
        }
    }

    /// What a request's stream yields: pieces of text as they are generated, then the result.
    public enum Event: Sendable {
        case text(String)
        case finished(GenerationResult)
    }

    /// One submitted request: iterate it for its events; `cancel()` drops it (as does ending the
    /// iteration early or cancelling the iterating task).
    public struct Submission: AsyncSequence, Sendable {
        public typealias Element = Event
        public let events: AsyncThrowingStream<Event, Error>
        let onCancel: @Sendable () -> Void

        public func makeAsyncIterator() -> AsyncThrowingStream<Event, Error>.AsyncIterator { events.makeAsyncIterator() }

        /// Drops the request before the next decode step (its stream ends as `cancelled`).
        public func cancel() { onCancel() }
    }

    /// A counter snapshot (for tests, logs and benchmarks).
    public struct Stats: Sendable, Equatable {
        /// Requests waiting for a slot.
        public var waiting: Int
        /// Sequences being generated.
        public var active: Int
        /// Requests finished so far (any reason, errors included).
        public var completed: Int
        /// Requests dropped because their consumer went away.
        public var dropped: Int
    }

    public let generator: TextGenerator
    public let options: Options

    private final class Ticket: @unchecked Sendable {
        let id: Int
        let request: GenerationRequest
        let continuation: AsyncThrowingStream<Event, Error>.Continuation
        init(id: Int, request: GenerationRequest, continuation: AsyncThrowingStream<Event, Error>.Continuation) {
            self.id = id
            self.request = request
            self.continuation = continuation
        }
    }

    private struct Active {
        let ticket: Ticket
        var state: SequenceState
        var last: Int
    }

    // MARK: State guarded by `condition`
    private let condition = NSCondition()
    private var waiting: [Ticket] = []
    private var cancelled: Set<Int> = []
    private var nextID = 0
    private var accepting = true
    private var cancelEverything = false
    private var stopped = false
    private var stats = Stats(waiting: 0, active: 0, completed: 0, dropped: 0)

    // MARK: State of the generation thread
    private var active: [Active] = []

    /// Starts the generation thread.
    public init(generator: TextGenerator, options: Options = .init()) {
        self.generator = generator
        self.options = options
        let thread = Thread { [self] in self.loop() }
        thread.name = "selfspec.batch-scheduler"
        thread.start()
    }

    // MARK: Submitting

    /// Queues `request` and returns the stream of its text and result.
    ///
    /// Ending the iteration early (or cancelling the consuming task) cancels the request: it is
    /// dropped before the next decode step.
    /// - Throws: `SchedulerError.queueFull`, `.shuttingDown`; and at once, before queueing,
    ///   what the request itself is wrong about: `ModelError.emptyPrompt`, `.contextOverflow`,
    ///   `SamplingError`.
    public func submit(_ request: GenerationRequest) throws -> Submission {
        _ = try request.fittedPrompt(contextLength: generator.model.config.contextLength)
        _ = try Sampler(request.sampling)
        condition.lock()
        defer { condition.unlock() }
        guard accepting else { throw SchedulerError.shuttingDown }
        let free = options.maxBatch - stats.active
        guard waiting.count < options.maxQueue + max(0, free) else { throw SchedulerError.queueFull(limit: options.maxQueue) }
        nextID += 1
        let id = nextID
        let (stream, continuation) = AsyncThrowingStream<Event, Error>.makeStream()
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.cancel(id) }
        }
        waiting.append(Ticket(id: id, request: request, continuation: continuation))
        stats.waiting = waiting.count
        condition.signal()
        return Submission(events: stream, onCancel: { [weak self] in self?.cancel(id) })
    }

    /// Current counts.
    public var snapshot: Stats {
        condition.lock()
        defer { condition.unlock() }
        return stats
    }

    /// Stops accepting requests. With `cancelInFlight` the active and waiting requests end now
    /// (finish reason `cancelled`); otherwise they run to completion. The thread exits once idle.
    public func shutdown(cancelInFlight: Bool) {
        condition.lock()
        accepting = false
        stopped = true
        if cancelInFlight { cancelEverything = true }
        condition.signal()
        condition.unlock()
    }

    /// Waits (polling every 20 ms) until no request is waiting or active.
    public func waitUntilIdle() async {
        while true {
            let s = snapshot
            if s.waiting == 0 && s.active == 0 { return }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    private func cancel(_ id: Int) {
        condition.lock()
        cancelled.insert(id)
        condition.signal()
        condition.unlock()
    }

    // MARK: The generation loop

    private func loop() {
        while true {
            condition.lock()
            while waiting.isEmpty && active.isEmpty && !stopped { condition.wait() }
            if stopped && (waiting.isEmpty && active.isEmpty) {
                condition.unlock()
                return
            }
            let dropIDs = cancelled
            cancelled.removeAll()
            let cancelAll = cancelEverything
            // Waiting requests whose consumers left never take a slot.
            let droppedWaiting = waiting.filter { dropIDs.contains($0.id) }
            waiting.removeAll { dropIDs.contains($0.id) }
            var admitted: [Ticket] = []
            if cancelAll {
                admitted = waiting
                waiting.removeAll()
            } else {
                while active.count + admitted.count < options.maxBatch, !waiting.isEmpty {
                    admitted.append(waiting.removeFirst())
                }
            }
            stats.waiting = waiting.count
            stats.active = active.count + admitted.count  // counted as taken before they run
            condition.unlock()

            if cancelAll {
                for t in droppedWaiting { finish(t, with: cancelledResult(t.request), dropped: true) }
                for t in admitted { finish(t, with: cancelledResult(t.request)) }
                for a in active { var s = a.state; s.finish = .cancelled; finish(a.ticket, with: s.result) }
                active.removeAll()
                publishActive()
                continue
            }
            for t in droppedWaiting { finish(t, with: cancelledResult(t.request), dropped: true) }
            dropCancelled(dropIDs)
            admit(admitted)
            publishActive()
            if !active.isEmpty { decodeStep() }
            publishActive()
        }
    }

    /// Ends the active sequences whose consumers went away.
    private func dropCancelled(_ ids: Set<Int>) {
        guard !ids.isEmpty else { return }
        var kept: [Active] = []
        for a in active {
            if ids.contains(a.ticket.id) {
                var s = a.state
                s.finish = .cancelled
                finish(a.ticket, with: s.result, dropped: true)
            } else {
                kept.append(a)
            }
        }
        active = kept
    }

    /// Prefills the admitted prompts together and samples their first tokens.
    private func admit(_ tickets: [Ticket]) {
        var states: [(Ticket, SequenceState)] = []
        for t in tickets {
            do {
                let state = try SequenceState(request: t.request, model: generator.model, tokenizer: generator.tokenizer,
                                              precision: generator.cachePrecision)
                if state.finish != nil { finish(t, with: state.result); continue }
                states.append((t, state))
            } catch {
                fail(t, error)
            }
        }
        guard !states.isEmpty else { return }
        let model = generator.model
        let v = model.config.vocabularySize
        var logits: [[Float]?]
        if let all = try? model.forward(states.map { .init(cache: $0.1.cache, tokens: $0.1.prompt) }) {
            logits = states.indices.map { Array(all[($0 * v)..<(($0 + 1) * v)]) }
        } else {
            // Some prompt is invalid (nothing was cached): one at a time, so only it fails.
            logits = states.map { t, s in
                do { return try model.forward([.init(cache: s.cache, tokens: s.prompt)]) } catch {
                    fail(t, error)
                    return nil
                }
            }
        }
        for (n, (t, state)) in states.enumerated() {
            guard let l = logits[n] else { continue }
            var s = state
            let (token, piece) = s.accept(logits: l)
            if !piece.isEmpty { t.continuation.yield(.text(piece)) }
            if s.finish != nil { finish(t, with: s.result); continue }
            active.append(Active(ticket: t, state: s, last: token))
        }
    }

    /// One decode step over every active sequence.
    private func decodeStep() {
        let model = generator.model
        let v = model.config.vocabularySize
        let logits: [Float]
        do {
            logits = try model.forward(active.map { .init(cache: $0.state.cache, tokens: [$0.last]) })
        } catch {
            for a in active { fail(a.ticket, error) }
            active.removeAll()
            return
        }
        var still: [Active] = []
        for (n, var a) in active.enumerated() {
            let (token, piece) = a.state.accept(logits: Array(logits[(n * v)..<((n + 1) * v)]))
            if !piece.isEmpty { a.ticket.continuation.yield(.text(piece)) }
            if a.state.finish != nil {
                finish(a.ticket, with: a.state.result)
            } else {
                a.last = token
                still.append(a)
            }
        }
        active = still
    }

    // MARK: Helpers

    private func cancelledResult(_ request: GenerationRequest) -> GenerationResult {
        GenerationResult(tokens: [], text: "", finishReason: .cancelled, promptTokens: request.prompt.count, stopString: nil)
    }

    private func finish(_ ticket: Ticket, with result: GenerationResult, dropped: Bool = false) {
        ticket.continuation.yield(.finished(result))
        ticket.continuation.finish()
        count(dropped: dropped)
    }

    private func fail(_ ticket: Ticket, _ error: Error) {
        ticket.continuation.finish(throwing: error)
        count(dropped: false)
    }

    private func count(dropped: Bool) {
        condition.lock()
        stats.completed += 1
        if dropped { stats.dropped += 1 }
        condition.unlock()
    }

    private func publishActive() {
        condition.lock()
        stats.active = active.count
        condition.unlock()
    }
}

/// Why the scheduler refused a request.
public enum SchedulerError: Error, LocalizedError, Equatable, Sendable {
    /// `maxQueue` requests are already waiting for a slot.
    case queueFull(limit: Int)
    /// `shutdown` was called.
    case shuttingDown

    public var errorDescription: String? {
        switch self {
        case let .queueFull(limit): "the request queue is full (\(limit) waiting)"
        case .shuttingDown: "the scheduler is shutting down"
        }
    }
}
