import Evaluation
import Foundation
import Tuner

/// `runs/NAME/report.json` (schema `selfspec-experiment/1`, snake_case keys): the stages with
/// their hashes and times, the data statistics per recipe and filter, each adapter's training
/// curve, and one table per task (every model's metric with its 95% CI under every convention,
/// each adapter's paired delta with CI and p-value). The full evaluation report
/// (`selfspec-eval/2`) is embedded under `eval`.
public struct ExperimentReport: Codable, Sendable, Equatable {
    public var schema = "selfspec-experiment/1"
    public var name: String
    public var config: String
    public var model: String
    public var generatedAt: String
    public var stages: [Stage]
    public var data: [RecipeStats]
    public var curate: [CurateStats]
    public var training: [Training]
    public var tasks: [TaskTable]
    public var eval: EvalReport

    public struct Stage: Codable, Sendable, Equatable {
        public var stage: String
        public var hash: String
        /// `ran` (this invocation did the work) or `skipped` (done earlier with the same settings).
        public var status: String
        /// The stage's wall-clock seconds (every attempt, including an interrupted one).
        public var seconds: Double
        public var finishedAt: String?
    }

    public struct Training: Codable, Sendable, Equatable {
        public var adapter: String
        public var steps: Int
        public var info: TrainingInfo?
        public var finalLoss: Float?
        public var finalValidationLoss: Float?
        public var curve: [Point]
        /// The exported adapter (GGUF LoRA; PEFT in the folder's peft/).
        public var adapterPath: String
    }

    public struct Point: Codable, Sendable, Equatable {
        public var step: Int
        public var loss: Float
        public var validationLoss: Float?
        public var learningRate: Float
    }

    /// One task: its primary metric and convention, and a row per convention and metric.
    public struct TaskTable: Codable, Sendable, Equatable {
        public var task: String
        public var file: String
        public var n: Int
        public var primaryMetric: String
        public var primaryScoring: String
        public var rows: [Row]
    }

    public struct Row: Codable, Sendable, Equatable {
        public var scoring: String
        public var metric: String
        /// Every model, the base first.
        public var values: [Value]
        /// Every adapter against the base.
        public var deltas: [Delta]
        /// Label tasks: the best this metric gets from always answering one label. A model that
        /// collapses onto one answer reaches at most this, so a gain counts only above it.
        public var bestConstant: Constant?
    }

    public struct Constant: Codable, Sendable, Equatable {
        public var label: String
        public var value: Double
    }

    public struct Value: Codable, Sendable, Equatable {
        public var model: String
        public var value: Double
        public var ciLow: Double
        public var ciHigh: Double
    }

    public struct Delta: Codable, Sendable, Equatable {
        public var model: String
        public var delta: Double
        public var ciLow: Double
        public var ciHigh: Double
        public var pValue: Double
        public var test: String
        public var robust: Bool
    }
}

extension ExperimentRunner {
    // MARK: Building

    /// Assembles the report from the run folder (state files, stats, logs, eval outputs).
    func buildReport() throws -> ExperimentReport {
        let dec = fileDecoder()
        func read<T: Decodable>(_ type: T.Type, _ url: URL, decoder: JSONDecoder? = nil) throws -> T {
            guard let data = FileManager.default.contents(atPath: url.path) else { throw ExperimentError.missingFile(path: url.path, key: nil) }
            return try (decoder ?? dec).decode(T.self, from: data)
        }
        let stages = ran.map { r -> ExperimentReport.Stage in
            let s = states.load(r.stage)
            return .init(stage: r.stage, hash: s?.hash ?? "", status: r.skipped ? "skipped" : "ran", seconds: s?.seconds ?? 0,
                         finishedAt: s?.finishedAt)
        }
        let data = try config.data.map { try read(RecipeStats.self, dataStatsPath($0.name)) }
        let curate = try adapters.map { try read(CurateStats.self, curateStatsPath($0.name)) }
        let training = adapters.map { a -> ExperimentReport.Training in
            let dir = tuneDirectory(a.name)
            var curve: [ExperimentReport.Point] = []
            if let log = FileManager.default.contents(atPath: dir.appendingPathComponent("log.jsonl").path) {
                for line in log.split(separator: 0x0A) {
                    guard let r = try? JSONDecoder().decode(StepRecord.self, from: Data(line)) else { continue }
                    // A resumed run repeats no step, but keep the last record of a step in any case.
                    curve.removeAll { $0.step == r.step }
                    curve.append(.init(step: r.step, loss: r.loss, validationLoss: r.validationLoss, learningRate: r.learningRate))
                }
            }
            return .init(adapter: a.name, steps: a.tune.steps, info: try? read(TrainingInfo.self, dir.appendingPathComponent("info.json")),
                         finalLoss: curve.last?.loss, finalValidationLoss: curve.last(where: { $0.validationLoss != nil })?.validationLoss,
                         curve: curve, adapterPath: dir.appendingPathComponent("adapter.gguf").path)
        }
        let eval = try read(EvalReport.self, evalDirectory.appendingPathComponent("report.json"), decoder: EvalReport.decoder())
        let deltas = try read([DeltaInterval].self, evalDirectory.appendingPathComponent("deltas.json"))
        return ExperimentReport(name: config.name, config: configPath, model: config.model,
                                generatedAt: ISO8601DateFormatter().string(from: Date()), stages: stages, data: data, curate: curate,
                                training: training, tasks: Self.tables(eval, deltas: deltas), eval: eval)
    }

    static func tables(_ eval: EvalReport, deltas: [DeltaInterval]) -> [ExperimentReport.TaskTable] {
        eval.tasks.map { t in
            let base = eval.models.first?.name ?? "base"
            let scorings = t.results.filter { $0.model == base }.map(\.scoring)
            var rows: [ExperimentReport.Row] = []
            for scoring in scorings {
                let results = t.results.filter { $0.scoring == scoring }
                for metric in results.first?.metrics.map(\.name) ?? [] {
                    let values = results.compactMap { r in
                        r.metrics.first { $0.name == metric }.map { ExperimentReport.Value(model: r.model, value: $0.value, ciLow: $0.ciLow, ciHigh: $0.ciHigh) }
                    }
                    let ds = t.comparisons.filter { $0.scoring == scoring && $0.metric == metric }.map { c in
                        let ci = deltas.first { $0.task == t.task && $0.model == c.model && $0.scoring == scoring && $0.metric == metric }
                        return ExperimentReport.Delta(model: c.model, delta: c.delta, ciLow: ci?.ciLow ?? .nan, ciHigh: ci?.ciHigh ?? .nan,
                                                      pValue: c.pValue, test: c.test, robust: c.robust)
                    }
                    let constant = t.baselines.compactMap { b in b.metrics[metric].map { ExperimentReport.Constant(label: b.label, value: $0) } }
                        .max { $0.value < $1.value }
                    rows.append(.init(scoring: scoring, metric: metric, values: values, deltas: ds, bestConstant: constant))
                }
            }
            return .init(task: t.task, file: t.file, n: t.n, primaryMetric: t.primaryMetric, primaryScoring: t.primaryScoring, rows: rows)
        }
    }

    // MARK: Writing

    func writeReport(_ report: ExperimentReport) throws {
        try reportEncoder().encode(report).write(to: directory.appendingPathComponent("report.json"), options: .atomic)
        try Data(report.markdown().utf8).write(to: directory.appendingPathComponent("report.md"), options: .atomic)
        try Data(report.html().utf8).write(to: directory.appendingPathComponent("report.html"), options: .atomic)
    }
}

// MARK: - Markdown and HTML

extension ExperimentReport {
    static func f(_ x: Double) -> String { x.isNaN ? "–" : String(format: "%.3f", x) }
    static func seconds(_ s: Double) -> String { s < 90 ? String(format: "%.1f s", s) : String(format: "%.1f min", s / 60) }

    /// The report's sections as (title, header, rows) tables, shared by markdown and HTML.
    func sections() -> [(title: String, header: [String], rows: [[String]], note: String?)] {
        var out: [(title: String, header: [String], rows: [[String]], note: String?)] = []
        out.append(("Stages", ["stage", "status", "time", "hash"],
                    stages.map { [$0.stage, $0.status, Self.seconds($0.seconds), $0.hash] },
                    "Total: " + Self.seconds(stages.reduce(0) { $0 + $1.seconds }) + " (skipped stages show the time of the run that did them)."))
        out.append(("Data", ["recipe", "kind", "candidates", "examples", "by task"],
                    data.map { d in [d.recipe, d.kind, "\(d.candidates)" + (d.generatorTarget.map { " (target \($0))" } ?? ""), "\(d.examples)",
                                     d.byTask.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")] },
                    data.contains { $0.generatorFiltered != nil }
                        ? "Generator filters: " + data.compactMap { d in d.generatorFiltered.map { f in
                            d.recipe + " " + f.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") } }.joined(separator: "; ")
                        : nil))
        for c in curate {
            out.append(("Curation: \(c.adapter)", ["recipe", "input", "kept", "filtered"],
                        c.recipes.map { r in [r.recipe, "\(r.input)", "\(r.kept)",
                                              r.filtered.isEmpty ? "–" : r.filtered.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")] },
                        "Kept \(c.kept); contamination: \(c.ngram)-grams of " + (c.contaminationFiles.isEmpty ? "no file" : c.contaminationFiles.joined(separator: ", "))))
        }
        for t in training {
            let every = max(1, t.curve.count / 12)
            let rows = t.curve.enumerated().filter { $0.offset % every == 0 || $0.offset == t.curve.count - 1 }.map { _, p in
                ["\(p.step)", String(format: "%.4f", p.loss), p.validationLoss.map { String(format: "%.4f", $0) } ?? "", String(format: "%.2e", p.learningRate)]
            }
            let info = t.info.map { "\($0.trainExamples) training / \($0.validationExamples) held-out examples, \($0.truncated) truncated, \($0.skipped) skipped; " } ?? ""
            out.append(("Training: \(t.adapter)", ["step", "loss", "validation loss", "lr"], rows, info + "adapter \(t.adapterPath)"))
        }
        for t in tasks {
            let models = t.rows.first?.values.map(\.model) ?? []
            let adapters = t.rows.first?.deltas.map(\.model) ?? []
            let constants = t.rows.contains { $0.bestConstant != nil }
            let header = ["scoring", "metric"] + models.map { "\($0) [95% CI]" } + adapters.map { "Δ \($0) − base [95% CI] (p)" }
                + (constants ? ["best single label"] + adapters.map { "\($0) − best single label [95% CI]" } : [])
            let rows = t.rows.map { r -> [String] in
                let mark = r.scoring == t.primaryScoring ? " (primary)" : ""
                var cells = [r.scoring + mark, r.metric] + r.values.map { "\(Self.f($0.value)) [\(Self.f($0.ciLow)), \(Self.f($0.ciHigh))]" }
                    + r.deltas.map { String(format: "%+.3f", $0.delta) + " [\(Self.f($0.ciLow)), \(Self.f($0.ciHigh))] (\(String(format: "%.3g", $0.pValue)))" + ($0.robust && $0.delta > 0 && $0.pValue < EvalReport.significance ? " robust" : "") }
                guard constants else { return cells }
                // The constant is fixed on these items, so the interval is the adapter's own shifted.
                cells.append(r.bestConstant.map { "\(Self.f($0.value)) (\($0.label))" } ?? "–")
                for a in adapters {
                    guard let c = r.bestConstant, let v = r.values.first(where: { $0.model == a }) else { cells.append("–"); continue }
                    cells.append(String(format: "%+.3f", v.value - c.value) + " [\(Self.f(v.ciLow - c.value)), \(Self.f(v.ciHigh - c.value))]")
                }
                return cells
            }
            out.append(("Task: \(t.task) (n = \(t.n), primary metric \(t.primaryMetric))", header, rows,
                        "Items from \(t.file)." + predictionCounts(t.task)))
        }
        return out
    }

    /// Label tasks: how often each model predicted each label, per convention ("labels: base yes 86,
    /// no 14 → specialist yes 91, no 9"), the shift a gain can hide.
    func predictionCounts(_ task: String) -> String {
        guard let t = eval.tasks.first(where: { $0.task == task }) else { return "" }
        let scorings = t.results.filter { $0.model == eval.models.first?.name }.map(\.scoring)
        let parts = scorings.compactMap { scoring -> String? in
            let models = t.results.filter { $0.scoring == scoring }.compactMap { r in
                r.labelCounts.map { counts in
                    r.model + " " + counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                        .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                }
            }
            return models.isEmpty ? nil : "\(scoring): " + models.joined(separator: " → ")
        }
        let majority = t.baselines.first { $0.majority }.map { b in
            " Always answering the majority label (\(b.label)): " + b.metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(Self.f($0.value))" }.joined(separator: ", ") + "."
        } ?? ""
        return (parts.isEmpty ? "" : " Predictions: " + parts.joined(separator: "; ") + ".") + majority
    }

    public func markdown() -> String {
        var s = "# Experiment \(name)\n\nConfiguration `\(config)`, model `\(model)`, report \(generatedAt).\n"
        for sec in sections() {
            s += "\n## \(sec.title)\n\n| " + sec.header.joined(separator: " | ") + " |\n|" + String(repeating: " --- |", count: sec.header.count) + "\n"
            for r in sec.rows { s += "| " + r.joined(separator: " | ") + " |\n" }
            if let note = sec.note { s += "\n\(note)\n" }
        }
        s += "\nΔ = adapter − base on the same items; 95% intervals: percentile bootstrap (\(eval.settings.bootstrapResamples) resamples, "
        s += "paired for Δ); p: exact McNemar for accuracy, paired bootstrap for F1; robust (shown on the gaining rows): a significant gain "
        s += "(p < \(EvalReport.significance)) under at least two conventions and a significant loss under none. Conventions: \(eval.settings.scoring).\n"
        return s
    }

    public func html() -> String {
        func esc(_ x: String) -> String {
            x.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var s = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Experiment \(esc(name))</title><style>"
        s += "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#eee}"
        s += "</style></head><body><h1>Experiment \(esc(name))</h1><p>Configuration <code>\(esc(config))</code>, model <code>\(esc(model))</code>, \(esc(generatedAt)).</p>"
        for t in training where t.curve.count > 1 { s += "<h2>Loss curve: \(esc(t.adapter))</h2>" + curveSVG(t.curve) }
        for sec in sections() {
            s += "<h2>\(esc(sec.title))</h2><table><tr>" + sec.header.map { "<th>\(esc($0))</th>" }.joined() + "</tr>"
            for r in sec.rows { s += "<tr>" + r.map { "<td>\(esc($0))</td>" }.joined() + "</tr>" }
            s += "</table>" + (sec.note.map { "<p>\(esc($0))</p>" } ?? "")
        }
        return s + "<p>\(esc(eval.settings.scoring))</p></body></html>\n"
    }

    /// Training loss (blue) and validation loss (orange points) against the step.
    func curveSVG(_ curve: [Point]) -> String {
        let w = 480.0, h = 200.0, pad = 30.0
        let losses = curve.map { Double($0.loss) } + curve.compactMap { $0.validationLoss.map(Double.init) }
        let lo = losses.min() ?? 0, hi = max(losses.max() ?? 1, lo + 1e-6)
        let maxStep = Double(curve.map(\.step).max() ?? 1)
        func x(_ step: Int) -> Double { pad + (w - 2 * pad) * Double(step) / max(maxStep, 1) }
        func y(_ v: Double) -> Double { h - pad - (h - 2 * pad) * (v - lo) / (hi - lo) }
        let line = curve.map { String(format: "%.1f,%.1f", x($0.step), y(Double($0.loss))) }.joined(separator: " ")
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\">"
        s += "<polyline fill=\"none\" stroke=\"steelblue\" stroke-width=\"1.5\" points=\"\(line)\"/>"
        for p in curve { if let v = p.validationLoss { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"darkorange\"/>", x(p.step), y(Double(v))) } }
        s += String(format: "<text x=\"2\" y=\"%.0f\" font-size=\"10\">%.2f</text><text x=\"2\" y=\"%.0f\" font-size=\"10\">%.2f</text>", pad, hi, h - pad, lo)
        s += String(format: "<text x=\"%.0f\" y=\"%.0f\" font-size=\"10\">step ", w - pad - 30, h - 8) + "\(Int(maxStep))</text>"
        return s + "</svg>"
    }
}
