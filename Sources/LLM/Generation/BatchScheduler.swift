import Foundation

/// Continuous batching for requests that arrive at any time (a server's clients).
///
/// One generation thread drives a `BatchEngine` (the engine `TextGenerator.generateBatch` uses
/// too). Each loop iteration it admits waiting requests into free slots (their prompts
/// prefilled together), runs one decode step for every active sequence, and hands each
/// request's new text to its own stream. A request whose consumer stops listening (the stream
/// is cancelled or dropped, e.g. the HTTP client disconnected) is dropped before the next step
/// and its slot freed. Requests are admitted in arrival order; every active sequence gets one
/// token per step.
///
/// Requests beyond `maxBatch` wait in a queue of at most `maxQueue`; `submit` throws
/// `SchedulerError.queueFull` when it is full, so callers can answer "busy" at once. (Prompts
/// arrive one by one, so no shared prefix is prefilled once here.)
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
    // @unchecked: the mutable queue state is guarded by `condition`; `engine` and `running` are
    // touched by the generation thread only.

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
    private let engine: BatchEngine
    /// The tickets of the requests in the engine, by id.
    private var running: [Int: Ticket] = [:]

    /// Starts the generation thread.
    public init(generator: TextGenerator, options: Options = .init()) {
        self.generator = generator
        self.options = options
        engine = BatchEngine(generator: generator, maxBatch: options.maxBatch)
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
            while waiting.isEmpty && running.isEmpty && !stopped { condition.wait() }
            if stopped && waiting.isEmpty && running.isEmpty {
                condition.unlock()
                return
            }
            let dropIDs = cancelled
            cancelled.removeAll()
            let cancelAll = cancelEverything
            // Waiting requests whose consumers left never take a slot.
            let droppedWaiting = waiting.filter { dropIDs.contains($0.id) }
            waiting.removeAll { dropIDs.contains($0.id) }
            // Counted before the lock is released, so no one sees the queue idle with them uncounted.
            stats.completed += droppedWaiting.count
            stats.dropped += droppedWaiting.count
            let admitted = cancelAll ? waiting : Array(waiting.prefix(max(0, options.maxBatch - running.count)))
            waiting.removeFirst(admitted.count)
            stats.waiting = waiting.count
            stats.active = running.count + admitted.count  // counted as taken before they run
            condition.unlock()

            for t in droppedWaiting { end(t, with: cancelledResult(t.request)) }
            if cancelAll {
                for t in admitted { finish(t, with: cancelledResult(t.request)) }
                engine.cancel(where: { _ in true }, report: { deliver($0, $1) })
            } else {
                engine.cancel(where: { dropIDs.contains($0) }, report: { deliver($0, $1, dropped: true) })
                for t in admitted { running[t.id] = t }
                engine.admit(admitted.map { ($0.id, $0.request) }, report: { deliver($0, $1) })
                publishActive()
                engine.step(report: { deliver($0, $1) })
            }
            publishActive()
        }
    }

    /// Hands an engine event to its request's stream (`dropped`: counted as dropped).
    private func deliver(_ id: Int, _ event: BatchEngine.Event, dropped: Bool = false) {
        guard let ticket = running[id] else { return }
        switch event {
        case let .text(piece): ticket.continuation.yield(.text(piece))
        case let .finished(result):
            running[id] = nil
            switch result {
            case let .success(r): finish(ticket, with: r, dropped: dropped)
            case let .failure(error): fail(ticket, error)
            }
        }
    }

    // MARK: Helpers

    private func cancelledResult(_ request: GenerationRequest) -> GenerationResult {
        GenerationResult(tokens: [], text: "", finishReason: .cancelled, promptTokens: request.prompt.count, stopString: nil)
    }

    private func finish(_ ticket: Ticket, with result: GenerationResult, dropped: Bool = false) {
        end(ticket, with: result)
        count(dropped: dropped)
    }

    /// Ends `ticket`'s stream with `result` (without counting it).
    private func end(_ ticket: Ticket, with result: GenerationResult) {
        ticket.continuation.yield(.finished(result))
        ticket.continuation.finish()
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
        stats.active = running.count
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
