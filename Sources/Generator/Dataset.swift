import Foundation

// MARK: - Records

/// How an example was generated, stored with it: the response's decoding (`temperature`,
/// `top_p`, `max_tokens`, `prompt`), its grounding and demonstrations, and how its instruction
/// was brainstormed. The fields after `round` came later: files written before lack them (nil).
public struct ExampleSettings: Codable, Sendable, Equatable {
    public var temperature: Double
    public var topP: Double
    public var maxTokens: Int
    /// `dense`, `bm25`, `hybrid`, or `none` for the ungrounded variant.
    public var retrieval: String
    public var k: Int
    public var seed: UInt64
    public var round: Int
    /// How the response prompt was sent: `chat` (the model's chat template or the chat endpoint)
    /// or `completion` (plain text).
    public var prompt: String?
    /// Seed demonstrations in the response prompt.
    public var demonstrations: Int?
    /// Stage 1's decoding; nil (and not written) for an instruction given with `--instructions`.
    public var brainstorm: BrainstormSettings?

    /// How the instruction was brainstormed.
    public struct BrainstormSettings: Codable, Sendable, Equatable {
        public var temperature: Double
        public var topP: Double
        public var maxTokens: Int
        /// `chat` or `completion`, as for the response.
        public var prompt: String

        enum CodingKeys: String, CodingKey { case temperature, topP = "top_p", maxTokens = "max_tokens", prompt }
    }

    enum CodingKeys: String, CodingKey {
        case temperature, topP = "top_p", maxTokens = "max_tokens", retrieval, k, seed, round, prompt, demonstrations, brainstorm
    }
}

/// One line of `examples.jsonl`.
public struct Example: Codable, Sendable, Equatable {
    public var instruction: String
    public var input: String
    public var output: String
    /// The nearest seed's task family (see `TaskLabeller`); nil when no seed shares a word with the instruction.
    public var task: String?
    public var passages: [PassageRef]
    /// SHA-256 of the model file (nil for an HTTP endpoint, see `model`).
    public var modelSHA256: String?
    public var model: String
    public var settings: ExampleSettings

    enum CodingKeys: String, CodingKey { case instruction, input, output, task, passages, modelSHA256 = "model_sha256", model, settings }

    /// Every key is written, unknown values as null, so each line has the same fields (within
    /// `settings`, `brainstorm` is left out for given instructions, as in the whole run).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(instruction, forKey: .instruction)
        try c.encode(input, forKey: .input)
        try c.encode(output, forKey: .output)
        try c.encode(task, forKey: .task)
        try c.encode(passages, forKey: .passages)
        try c.encode(modelSHA256, forKey: .modelSHA256)
        try c.encode(model, forKey: .model)
        try c.encode(settings, forKey: .settings)
    }
}

// MARK: - Statistics

/// Counters of a run, saved in `stats.json` and with the progress (so a resumed run goes on counting).
public struct DatasetStats: Codable, Sendable, Equatable {
    public var rounds = 0
    public var brainstormPrompts = 0
    /// (instruction, input) pairs parsed from brainstorm output.
    public var candidates = 0
    public var instructionsKept = 0
    public var responsesRequested = 0
    public var examples = 0
    /// Dropped items per ``FilterReason`` raw value.
    public var filtered: [String: Int] = [:]
    /// Best ROUGE-L of each candidate that reached the ROUGE-L check, in 10 bins [0, 0.1) … [0.9, 1].
    public var rougeLHistogram = [Int](repeating: 0, count: 10)
    /// First word of each kept instruction.
    public var leadingVerbs: [String: Int] = [:]
    /// Kept examples per task family (the nearest seed's `task`, see `TaskLabeller`).
    public var examplesByTask: [String: Int] = [:]
    public var seconds = 0.0
    /// Wall-clock seconds per stage: `brainstorm` (stage 1 generation), `retrieve`, `respond`
    /// (stage 2 generation); filters take the rest of ``seconds``.
    public var stageSeconds: [String: Double] = [:]

    public init() {}

    /// Decodes stats files of every version (`examplesByTask` came later: absent means empty).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rounds = try c.decode(Int.self, forKey: .rounds)
        brainstormPrompts = try c.decode(Int.self, forKey: .brainstormPrompts)
        candidates = try c.decode(Int.self, forKey: .candidates)
        instructionsKept = try c.decode(Int.self, forKey: .instructionsKept)
        responsesRequested = try c.decode(Int.self, forKey: .responsesRequested)
        examples = try c.decode(Int.self, forKey: .examples)
        filtered = try c.decode([String: Int].self, forKey: .filtered)
        rougeLHistogram = try c.decode([Int].self, forKey: .rougeLHistogram)
        leadingVerbs = try c.decode([String: Int].self, forKey: .leadingVerbs)
        examplesByTask = try c.decodeIfPresent([String: Int].self, forKey: .examplesByTask) ?? [:]
        stageSeconds = try c.decodeIfPresent([String: Double].self, forKey: .stageSeconds) ?? [:]
        seconds = try c.decode(Double.self, forKey: .seconds)
    }

    mutating func count(_ reason: FilterReason) { filtered[reason.rawValue, default: 0] += 1 }

    mutating func recordRouge(_ score: Double) { rougeLHistogram[min(9, max(0, Int(score * 10)))] += 1 }

    /// The `n` most common leading verbs, most frequent first (ties alphabetical).
    public func topVerbs(_ n: Int = 10) -> [(verb: String, count: Int)] {
        leadingVerbs.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(n).map { ($0.key, $0.value) }
    }

    /// Instructions kept per minute of brainstorming, and examples kept per minute of responding
    /// (nil before the stage has run).
    public var instructionsPerMinute: Double? { stageSeconds["brainstorm"].map { Double(instructionsKept) / max($0 / 60, 1e-9) } }
    public var examplesPerMinute: Double? { stageSeconds["respond"].map { Double(examples) / max($0 / 60, 1e-9) } }

    /// Kept instructions / parsed candidates.
    public var instructionKeptRatio: Double { candidates == 0 ? 0 : Double(instructionsKept) / Double(candidates) }
    /// Kept examples / responses requested.
    public var responseKeptRatio: Double { responsesRequested == 0 ? 0 : Double(examples) / Double(responsesRequested) }
}

// MARK: - Store

/// The output directory of a run:
/// - `examples.jsonl` — the dataset, append-only;
/// - `instructions.jsonl` — every instruction that passed stage 1, append-only (rebuilds the ROUGE-L pool on resume);
/// - `progress.json` — settings, next round, file sizes and stats, rewritten atomically after each round;
/// - `stats.json` — the statistics of the last finished round.
public final class DatasetStore {
    public struct Progress: Codable, Sendable, Equatable {
        public var settings: String
        public var nextRound: Int
        public var examplesBytes: UInt64
        public var instructionsBytes: UInt64
        public var stats: DatasetStats
    }

    public let directory: String
    public private(set) var progress: Progress
    private let examples: FileHandle
    private let instructions: FileHandle
    private let encoder: JSONEncoder

    var examplesPath: String { (directory as NSString).appendingPathComponent("examples.jsonl") }
    var instructionsPath: String { (directory as NSString).appendingPathComponent("instructions.jsonl") }
    var progressPath: String { (directory as NSString).appendingPathComponent("progress.json") }
    var statsPath: String { (directory as NSString).appendingPathComponent("stats.json") }

    /// Opens `directory` for a new run, or (with `resume`) continues the run stored there.
    /// - Parameter settings: a description of the run's settings; a resumed run must match it.
    /// - Throws: ``GeneratorError/resumeConflict(dir:reason:)`` when a run exists and `resume` is
    ///   false, when there is nothing to resume, or when the settings differ.
    public init(directory: String, settings: String, resume: Bool) throws {
        self.directory = directory
        let fm = FileManager.default
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw GeneratorError.unreadable(file: directory, reason: "cannot create: \((error as NSError).localizedDescription)")
        }
        let progressFile = (directory as NSString).appendingPathComponent("progress.json")
        let exists = fm.fileExists(atPath: progressFile)
        if resume {
            guard exists, let data = fm.contents(atPath: progressFile),
                  let p = try? JSONDecoder().decode(Progress.self, from: data) else {
                throw GeneratorError.resumeConflict(dir: directory, reason: exists ? "progress.json is unreadable" : "no progress.json (nothing to resume)")
            }
            guard p.settings == settings else {
                throw GeneratorError.resumeConflict(dir: directory, reason: "the run there used other settings:\n  stored:  \(p.settings)\n  now:     \(settings)")
            }
            progress = p
        } else {
            if exists { throw GeneratorError.resumeConflict(dir: directory, reason: "a run already exists there; pass --resume to continue it or choose another directory") }
            progress = Progress(settings: settings, nextRound: 0, examplesBytes: 0, instructionsBytes: 0, stats: DatasetStats())
        }
        examples = try DatasetStore.openAppend((directory as NSString).appendingPathComponent("examples.jsonl"), keep: progress.examplesBytes)
        instructions = try DatasetStore.openAppend((directory as NSString).appendingPathComponent("instructions.jsonl"), keep: progress.instructionsBytes)
        // A new run is resumable from the start: stopped in its first round, `--resume` redoes it.
        if !resume { try saveProgress() }
    }

    deinit { try? examples.close(); try? instructions.close() }

    /// Opens for appending after cutting the file to `keep` bytes (what the last saved round wrote).
    static func openAppend(_ path: String, keep: UInt64) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forUpdatingAtPath: path) else { throw GeneratorError.unreadable(file: path, reason: "cannot open for writing") }
        do {
            try h.truncate(atOffset: keep)
            try h.seekToEnd()
        } catch { throw GeneratorError.unreadable(file: path, reason: "cannot truncate to \(keep) bytes: \(error)") }
        return h
    }

    /// The instructions kept by earlier rounds (for the ROUGE-L pool of a resumed run).
    public func keptInstructions() throws -> [InstructionCandidate] {
        guard let data = FileManager.default.contents(atPath: instructionsPath) else { return [] }
        return try data.prefix(Int(progress.instructionsBytes)).split(separator: UInt8(ascii: "\n")).map {
            try JSONDecoder().decode(InstructionCandidate.self, from: Data($0))
        }
    }

    /// Appends one round's output, then records it in `progress.json` (atomically): a run killed
    /// before that point redoes the round.
    public func commitRound(instructions kept: [InstructionCandidate], examples new: [Example], stats: DatasetStats) throws {
        do {
            for c in kept { instructions.write(try encoder.encode(c) + Data("\n".utf8)) }
            for e in new { examples.write(try encoder.encode(e) + Data("\n".utf8)) }
            progress.instructionsBytes = try instructions.offset()
            progress.examplesBytes = try examples.offset()
            try examples.synchronize()
            progress.nextRound += 1
            progress.stats = stats
        } catch let e as GeneratorError { throw e } catch {
            throw GeneratorError.unreadable(file: directory, reason: "cannot write the round: \(error)")
        }
        try saveProgress()
    }

    /// Writes `progress.json` and `stats.json` (each atomically).
    private func saveProgress() throws {
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try pretty.encode(progress).write(to: URL(fileURLWithPath: progressPath), options: .atomic)
            try pretty.encode(progress.stats).write(to: URL(fileURLWithPath: statsPath), options: .atomic)
        } catch {
            throw GeneratorError.unreadable(file: directory, reason: "cannot write progress.json: \(error)")
        }
    }
}
