import Foundation
import Generator
import Ingest
import LLM
import Tuner

// The experiment as a chain of stages, each writing under runs/NAME/ and a state file
// (StageState): corpus → data-RECIPE… → curate[-CONTROL] → tune[-CONTROL] → eval → report.
// A stage is skipped when its state says done with the same hash; a stage left running resumes
// where its code can (ingest skips finished files, generation continues its rounds, training its
// checkpoint); any other stage reruns from its start.

/// What the runner tells its caller (the CLI prints; the library does not).
public enum ExperimentEvent: Sendable {
    case stageStarted(stage: String, resuming: Bool)
    case stageSkipped(stage: String)
    case stageFinished(stage: String, seconds: Double)
    /// Work done inside a stage: `done` of `total` (nil: unknown) `unit`, and a short detail.
    case progress(stage: String, done: Int, total: Int?, unit: String, detail: String)
}

/// Runs an experiment configuration in its run folder.
public final class ExperimentRunner {
    public let config: ExperimentConfig
    /// The configuration file (recorded in the report).
    public let configPath: String
    /// `runs/NAME`.
    public let directory: URL
    /// Polled inside long stages; `true` (Ctrl-C) makes the stage save what it can and throw `.interrupted`.
    public let shouldStop: @Sendable () -> Bool
    let onEvent: (ExperimentEvent) -> Void
    let states: StateFiles
    /// Each stage's outcome in this invocation, in order (for the report).
    var ran: [(stage: String, skipped: Bool)] = []

    /// - Parameters:
    ///   - runsDirectory: the parent of the run folder (default `runs`).
    ///   - onEvent: progress reports, on the calling thread.
    public init(config: ExperimentConfig, configPath: String, runsDirectory: String = "runs",
                shouldStop: @escaping @Sendable () -> Bool = { false }, onEvent: @escaping (ExperimentEvent) -> Void = { _ in }) {
        self.config = config
        self.configPath = configPath
        self.directory = URL(fileURLWithPath: runsDirectory).appendingPathComponent(config.name)
        self.shouldStop = shouldStop
        self.onEvent = onEvent
        self.states = StateFiles(directory: directory.appendingPathComponent("state"))
    }

    // MARK: Paths

    var corpusPath: String { directory.appendingPathComponent("corpus.sqlite").path }
    func dataPath(_ recipe: String) -> URL { directory.appendingPathComponent("data/\(recipe).jsonl") }
    func dataStatsPath(_ recipe: String) -> URL { directory.appendingPathComponent("data/\(recipe).stats.json") }
    func curatedPath(_ adapter: String) -> URL { directory.appendingPathComponent("curate/\(adapter).jsonl") }
    func curateStatsPath(_ adapter: String) -> URL { directory.appendingPathComponent("curate/\(adapter).stats.json") }
    func tuneDirectory(_ adapter: String) -> URL { directory.appendingPathComponent("tune/\(adapter)") }
    var evalDirectory: URL { directory.appendingPathComponent("eval") }

    /// The adapters to train: the specialist first, then the controls, with their recipes and tune settings.
    var adapters: [(name: String, recipes: [String], tune: ExperimentConfig.Tune)] {
        var list: [(name: String, recipes: [String], tune: ExperimentConfig.Tune)] = [(name: "specialist", recipes: config.specialistRecipes, tune: config.tune)]
        for c in config.controls { list.append((name: c.name, recipes: c.recipes, tune: c.tune)) }
        return list
    }

    /// The stage names for an adapter (`curate`, `tune` for the specialist; `curate-NAME`, `tune-NAME` for a control).
    static func stageName(_ kind: String, adapter: String) -> String { adapter == "specialist" ? kind : "\(kind)-\(adapter)" }

    /// The evaluation files, NER folders resolved to their `devel.tsv`.
    var evalFiles: [(task: String, file: String, limit: Int?)] {
        config.orderedTasks.map { t in
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: t.spec.file, isDirectory: &isDir), isDir.boolValue {
                return (t.name, (t.spec.file as NSString).appendingPathComponent("devel.tsv"), t.spec.limit)
            }
            return (t.name, t.spec.file, t.spec.limit)
        }
    }

    // MARK: Running

    /// Runs (or resumes) every stage, then writes `report.json`, `report.md` and `report.html`.
    /// - Returns: the report.
    /// - Throws: `ExperimentError` (`.interrupted` after Ctrl-C: rerun to resume), and the
    ///   libraries' errors (ingest, generation, training, evaluation).
    public func run() throws -> ExperimentReport {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        ran = []
        let modelHash = StageState.hash([config.model, String(fileSize(config.model))])
        var corpusHash = "none"
        if !config.corpus.isEmpty {
            corpusHash = StageState.hash(["corpus"] + config.corpus)
            try stage("corpus", hash: corpusHash) { _ in try ingest() }
        }
        var dataHashes: [String: String] = [:]
        for recipe in config.data {
            let needsModel = recipe.recipe == "generate"
            let h = StageState.hash(["data", StageState.canonical(recipe), recipe.recipe == "dataset" ? "" : corpusHash,
                                     needsModel ? modelHash : "", recipe.path.map { String(fileSize($0)) } ?? ""])
            dataHashes[recipe.name] = h
            try stage("data-\(recipe.name)", hash: h) { resuming in try makeData(recipe, resuming: resuming) }
        }
        let evalSetHash = StageState.hash(evalFiles.map { "\($0.file) \(fileSize($0.file))" })
        var tuneHashes: [String] = []
        for adapter in adapters {
            let curateStage = Self.stageName("curate", adapter: adapter.name)
            let curateHash = StageState.hash(["curate", StageState.canonical(config.curate), evalSetHash]
                                             + adapter.recipes.map { "\($0)=\(dataHashes[$0]!)" })
            try stage(curateStage, hash: curateHash) { _ in try curate(adapter: adapter.name, recipes: adapter.recipes) }
            let tuneStage = Self.stageName("tune", adapter: adapter.name)
            let tuneHash = StageState.hash(["tune", StageState.canonical(adapter.tune), curateHash, modelHash])
            try stage(tuneStage, hash: tuneHash) { resuming in try train(adapter: adapter.name, settings: adapter.tune, resuming: resuming) }
            tuneHashes.append(tuneHash)
        }
        var evalSettings = config.eval
        evalSettings.tasks = [:]  // the files are hashed by evalSetHash; limits below
        let evalHash = StageState.hash(["eval", StageState.canonical(evalSettings), evalSetHash, modelHash,
                                        evalFiles.map { "\($0.task):\($0.limit ?? 0)" }.joined(separator: ",")] + tuneHashes)
        try stage("eval", hash: evalHash) { _ in try evaluate() }
        let report = try buildReport()
        try writeReport(report)
        return report
    }

    /// Runs `body` unless the stage's state says done with `hash`. `body` gets whether it resumes
    /// an interrupted attempt with the same hash.
    func stage(_ name: String, hash: String, _ body: (Bool) throws -> Void) throws {
        let previous = states.load(name)
        if let previous, previous.hash == hash, previous.status == "done" {
            ran.append((name, true))
            onEvent(.stageSkipped(stage: name))
            return
        }
        let resuming = previous?.hash == hash && previous?.status == "running"
        var state = StageState(stage: name, hash: hash, status: "running", seconds: resuming ? previous!.seconds : 0, finishedAt: nil)
        try states.save(state)
        onEvent(.stageStarted(stage: name, resuming: resuming))
        let start = Date()
        defer {
            // An interrupted or failed attempt still counts its time toward the stage.
            if state.status == "running" {
                state.seconds += Date().timeIntervalSince(start)
                try? states.save(state)
            }
        }
        try body(resuming)
        state.seconds += Date().timeIntervalSince(start)
        state.status = "done"
        state.finishedAt = ISO8601DateFormatter().string(from: Date())
        try states.save(state)
        ran.append((name, false))
        onEvent(.stageFinished(stage: name, seconds: state.seconds))
    }

    // MARK: Corpus

    func ingest() throws {
        let store = try CorpusStore(path: corpusPath)
        let ingester = try Ingester(store: store)
        do {
            _ = try ingester.ingest(paths: config.corpus, progress: { [onEvent] p in
                onEvent(.progress(stage: "corpus", done: p.documents, total: nil, unit: "documents",
                                  detail: (p.file as NSString).lastPathComponent))
            }, shouldStop: shouldStop)
        } catch let failure as IngestFailure {
            if case .interrupted = failure.error { throw ExperimentError.interrupted(stage: "corpus") }
            throw failure
        }
    }

    func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? -1
    }
}

/// The run folder's intermediate JSON files (stats, deltas): Swift's key names, so that dictionary
/// keys such as filter names survive the round trip (a snake_case strategy rewrites them on decoding).
func fileEncoder() -> JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return e
}

func fileDecoder() -> JSONDecoder {
    let d = JSONDecoder()
    d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return d
}

/// `report.json`: snake_case keys like the eval report it embeds (written, never read back).
func reportEncoder() -> JSONEncoder {
    let e = fileEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    return e
}
