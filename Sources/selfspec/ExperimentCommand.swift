import ArgumentParser
import Experiment
import Foundation

/// `selfspec specialize experiment FILE`: the whole experiment from a committed configuration.
struct SpecializeExperiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Run an experiment configuration end to end: corpus, data recipes, curation, LoRA tuning, base vs specialist evaluation, report.",
        discussion: """
        FILE is a JSON configuration (experiments/README.md documents every key). Stages write under RUNS/NAME/: \
        corpus.sqlite, data/, curate/, tune/, eval/, state/ (one state file per stage with the hash of its settings) \
        and report.json, report.md, report.html. Resumable: after Ctrl-C, the same command skips the finished stages \
        whose settings are unchanged and continues the interrupted one (ingest by file, generation by round, training \
        from its checkpoint); changing a stage's settings reruns it and the stages after it.
        """)

    @Argument(help: "The experiment configuration (JSON), e.g. experiments/smoke.json.")
    var file: String
    @Option(help: "The folder of run folders.")
    var runs = "runs"
    @OptionGroup var output: OutputOptions

    func run() throws {
        Terminal.trapInterrupts()
        let config: ExperimentConfig
        do { config = try ExperimentConfig.load(path: file) } catch let e as ExperimentError {
            Terminal.error(e.localizedDescription)
            throw ExitCode(2)
        }
        let line = ProgressLine(enabled: !output.quiet && !output.json)
        let chatty = !output.quiet && !output.json
        let runner = ExperimentRunner(config: config, configPath: file, runsDirectory: runs,
                                      shouldStop: { interruptRequested.load(ordering: .relaxed) }) { event in
            switch event {
            case let .stageStarted(stage, resuming):
                line.finish()
                if chatty { Terminal.note("\(stage): \(resuming ? "resuming" : "running")") }
            case let .stageSkipped(stage):
                if chatty { Terminal.note("\(stage): done earlier with the same settings, skipped") }
            case let .stageFinished(stage, seconds):
                line.finish()
                if chatty { Terminal.note("\(stage): done in \(ProgressLine.duration(seconds))") }
            case let .progress(stage, done, total, unit, detail):
                line.update(label: "\(stage) \(detail):", fraction: total.map { Double(done) / Double(max($0, 1)) }, count: done, unit: unit)
            }
        }
        let report: ExperimentReport
        do { report = try runner.run() } catch let e as ExperimentError {
            line.finish()
            Terminal.error(e.localizedDescription)
            if case .interrupted = e { throw ExitCode(130) }
            throw ExitCode.failure
        }
        line.finish()
        if output.json {
            print(try String(contentsOf: runner.directory.appendingPathComponent("report.json"), encoding: .utf8))
            return
        }
        if !output.quiet { print(report.markdown()) }
        print("report: \(runner.directory.path)/report.{json,md,html}")
    }
}
