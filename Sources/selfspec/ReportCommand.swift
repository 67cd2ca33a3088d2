import ArgumentParser
import Benchmarks
import Foundation

/// `selfspec report --run DIR`: the run report of a main-job folder, as HTML and on the terminal.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the run report of a run folder (corpus, dataset, training, evaluation, an answer) as an HTML page with SVG charts, and print it.")

    @Option(name: .customLong("run"), help: "The run folder (scripts/demo's layout: corpus.sqlite, data/, tune/, eval/, ask.json).")
    var folder: String = "runs/demo"
    @Option(help: "Where to write the page (default: RUN/report.html).")
    var out: String?
    @Flag(help: "Do not print the summary.") var quiet = false

    func run() throws {
        guard FileManager.default.fileExists(atPath: folder) else {
            Terminal.error("no run folder at \(folder); run the main job first (make demo)")
            throw ExitCode.failure
        }
        let report: RunReport
        do { report = try RunReport(directory: folder) } catch {
            Terminal.error("cannot read the run: \(error)")
            throw ExitCode.failure
        }
        let path = out ?? (folder as NSString).appendingPathComponent("report.html")
        do {
            try Data(report.html().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            Terminal.error("cannot write \(path): \(error.localizedDescription)")
            throw ExitCode.failure
        }
        if !quiet { for line in report.summaryLines() { print(line) } }
        print("report: \(path)")
    }
}
