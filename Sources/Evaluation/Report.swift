import Foundation

/// The result of `selfspec eval`: every model on every task with intervals, and each specialized
/// model against the base, under every scoring convention of each task. Written as `report.json`
/// (schema `selfspec-eval/2`, snake_case keys; see `EvalReport.encoder`) and rendered as markdown.
public struct EvalReport: Codable, Sendable, Equatable {
    public var schema = "selfspec-eval/2"
    /// A gain counts as significant below this p-value.
    public static let significance = 0.05
    public var settings: Settings
    /// The base model first, then each adapter.
    public var models: [ModelInfo]
    public var tasks: [TaskReport]

    public struct Settings: Codable, Sendable, Equatable {
        public var shots: Int
        public var seed: UInt64
        public var limit: Int?
        /// Items of the seeded order dropped before `limit` (absent when none).
        public var skip: Int?
        public var bootstrapResamples: Int
        public var confidenceLevel: Double
        /// The scoring conventions, the NER matching and the tests used, in words.
        public var scoring: String
    }

    public struct ModelInfo: Codable, Sendable, Equatable {
        /// `base`, or the adapter's name (its folder or file name).
        public var name: String
        public var model: String
        public var adapter: String?
        /// `chatml`, `completion`, …
        public var promptFormat: String

        public init(name: String, model: String, adapter: String?, promptFormat: String) {
            self.name = name
            self.model = model
            self.adapter = adapter
            self.promptFormat = promptFormat
        }
    }

    public struct TaskReport: Codable, Sendable, Equatable {
        public var task: String
        public var file: String
        public var n: Int
        public var primaryMetric: String
        /// The convention the summary leads with (`EvalTask.primaryScoring`).
        public var primaryScoring: String
        /// One per model and convention: the base's conventions first.
        public var results: [ModelResult]
        public var comparisons: [Comparison]
        /// Label tasks: always answering one label, the majority class of the items first.
        public var baselines: [Baseline]
    }

    public struct ModelResult: Codable, Sendable, Equatable {
        public var model: String
        /// `labels`, `surface`, `calibrated` or `generate`.
        public var scoring: String
        public var n: Int
        public var metrics: [MetricValue]
        /// Label tasks: how often each label was predicted (`unparsed` for generated answers naming none).
        public var labelCounts: [String: Int]?
        /// Generated answers that could not be read (see `ScoredRun.parseFailures`).
        public var parseFailures: Int?
        /// The whole task for this model (every convention comes from the same run).
        public var seconds: Double
        public var itemsPerSecond: Double
    }

    /// A model that always answers `label`.
    public struct Baseline: Codable, Sendable, Equatable {
        public var label: String
        /// Whether `label` is the most frequent gold label of the items.
        public var majority: Bool
        public var metrics: [String: Double]
    }

    public struct MetricValue: Codable, Sendable, Equatable {
        public var name: String
        public var value: Double
        public var ciLow: Double
        public var ciHigh: Double
    }

    /// One adapter against the base on one metric under one convention: `delta = adapter − base`.
    public struct Comparison: Codable, Sendable, Equatable {
        public var model: String
        public var baseline: String
        public var scoring: String
        public var metric: String
        public var delta: Double
        public var pValue: Double
        /// `mcnemar_exact` or `paired_bootstrap`.
        public var test: String
        /// Whether the adapter's gain on this metric is significant (positive Δ, p below
        /// `significance`) under at least two conventions (under the only one, for NER) and no
        /// convention shows a significant loss. The same for every convention's row of a model and metric.
        public var robust: Bool

        /// Whether this row is itself a significant gain (positive Δ, p below `significance`).
        public var isSignificantGain: Bool { delta > 0 && pValue < EvalReport.significance }
    }

    /// snake_case keys, sorted, pretty-printed.
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}

// MARK: - Building

extension EvalReport {
    /// Builds the report from every model's runs (`runs[m][t]`: model m on task t, the same
    /// items in the same order for every model; model 0 is the base).
    public static func build(models: [ModelInfo], datasets: [TaskDataset], runs: [[TaskRun]], settings: EvalSettings,
                             limit: Int?, skip: Int = 0, resamples: Int = Statistics.defaultResamples) -> EvalReport {
        var tasks: [TaskReport] = []
        for (t, dataset) in datasets.enumerated() {
            let task = dataset.task
            var results: [ModelResult] = [], comparisons: [Comparison] = []
            for m in models.indices {
                let run = runs[m][t]
                for scored in run.scored {
                    let metrics = task.metrics.map { metric -> MetricValue in
                        let o = scored.outcomes
                        let ci = Statistics.bootstrapInterval(o, metric: metric, resamples: resamples, seed: settings.seed)
                        return MetricValue(name: metric.rawValue, value: o.metric(metric), ciLow: ci.low, ciHigh: ci.high)
                    }
                    results.append(ModelResult(model: models[m].name, scoring: scored.scoring.rawValue, n: scored.outcomes.count,
                                               metrics: metrics, labelCounts: scored.labelCounts, parseFailures: scored.parseFailures,
                                               seconds: run.seconds, itemsPerSecond: run.itemsPerSecond))
                }
                guard m > 0 else { continue }
                var rows: [Comparison] = []
                for scored in run.scored {
                    guard let base = runs[0][t].outcomes(scored.scoring) else { continue }
                    let other = scored.outcomes
                    for metric in task.metrics {
                        let delta = other.metric(metric) - base.metric(metric)
                        var p: Double, test: String
                        if metric == .accuracy, let a = base.correct, let b = other.correct {
                            (p, test) = (Statistics.mcNemar(base: a, other: b).p, "mcnemar_exact")
                        } else {
                            p = Statistics.pairedBootstrap(base: base, other: other, metric: metric, resamples: resamples, seed: settings.seed)
                            test = "paired_bootstrap"
                        }
                        rows.append(Comparison(model: models[m].name, baseline: models[0].name, scoring: scored.scoring.rawValue,
                                               metric: metric.rawValue, delta: delta, pValue: p, test: test, robust: false))
                    }
                }
                let needed = min(2, run.scored.count)
                for metric in task.metrics {
                    let same = rows.filter { $0.metric == metric.rawValue }
                    let wins = same.filter { $0.delta > 0 && $0.pValue < significance }.count
                    let losses = same.filter { $0.delta < 0 && $0.pValue < significance }.count
                    for i in rows.indices where rows[i].metric == metric.rawValue { rows[i].robust = wins >= needed && losses == 0 }
                }
                comparisons += rows
            }
            tasks.append(TaskReport(task: task.rawValue, file: dataset.file, n: dataset.count, primaryMetric: task.primaryMetric.rawValue,
                                    primaryScoring: task.primaryScoring.rawValue, results: results, comparisons: comparisons,
                                    baselines: baselines(dataset)))
        }
        let scoring = "label tasks, from one prefill per item: labels = argmax of each label's exact-text log-probability; "
            + "surface = probability summed over each label's surface forms (case, leading space, (B), option text); "
            + "calibrated = labels divided by the probabilities after the content-free input N/A; "
            + "generate = greedy answer parsed into a label (unparseable = wrong); ner: greedy generation, mentions matched "
            + "to exact token spans; 95% percentile bootstrap intervals; paired tests: exact McNemar (accuracy), paired "
            + "bootstrap (F1 metrics); robust = significant gain under at least two conventions and significant loss under none"
        return EvalReport(settings: Settings(shots: settings.shots, seed: settings.seed, limit: limit, skip: skip > 0 ? skip : nil, bootstrapResamples: resamples,
                                             confidenceLevel: 0.95, scoring: scoring),
                          models: models, tasks: tasks)
    }

    /// Always answering each label, the majority class first (ties: label order); none for NER.
    static func baselines(_ dataset: TaskDataset) -> [Baseline] {
        guard case let .labels(items) = dataset.items, let labels = items.max(by: { $0.labels.count < $1.labels.count })?.labels else {
            return []
        }
        let gold = items.map(\.gold)
        let counts = labels.indices.map { l in gold.filter { $0 == l }.count }
        let majority = counts.indices.max { counts[$0] < counts[$1] || (counts[$0] == counts[$1] && $0 > $1) } ?? 0
        let order = [majority] + labels.indices.filter { $0 != majority }
        return order.map { l in
            let outcomes = ItemOutcomes.labels(gold: gold, predicted: Array(repeating: l, count: gold.count), labelCount: labels.count)
            let metrics = Dictionary(uniqueKeysWithValues: dataset.task.metrics.map { ($0.rawValue, outcomes.metric($0)) })
            return Baseline(label: labels[l], majority: l == majority, metrics: metrics)
        }
    }
}

// MARK: - Markdown

extension EvalReport {
    /// A markdown table: one row per task and metric, one column per model (value and 95% CI;
    /// for adapters also the difference to the base and its p-value).
    public func markdown() -> String {
        var out = "| task | scoring | metric | n |" + models.map { " \($0.name) |" }.joined() + "\n"
        out += "| --- | --- | --- | ---: |" + String(repeating: " --- |", count: models.count) + "\n"
        for t in tasks {
            let scorings = t.results.filter { $0.model == models.first?.name }.map(\.scoring)
            for scoring in scorings {
                let rows = t.results.filter { $0.scoring == scoring }
                guard let first = rows.first else { continue }
                let mark = scoring == t.primaryScoring ? " (primary)" : ""
                for (k, metric) in first.metrics.enumerated() {
                    var row = "| \(t.task) | \(scoring)\(mark) | \(metric.name) | \(first.n) |"
                    for r in rows {
                        let v = r.metrics[k]
                        var cell = " \(Self.f(v.value)) [\(Self.f(v.ciLow)), \(Self.f(v.ciHigh))]"
                        if let c = t.comparisons.first(where: { $0.model == r.model && $0.scoring == scoring && $0.metric == metric.name }) {
                            cell += String(format: " Δ %+.3f p=%.3g", c.delta, c.pValue) + (c.robust && c.isSignificantGain ? " robust" : "")
                        }
                        row += cell + " |"
                    }
                    out += row + "\n"
                }
            }
        }
        for t in tasks {
            var lines: [String] = []
            for r in t.results {
                var parts: [String] = []
                if let counts = r.labelCounts {
                    parts.append(counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                        .map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                }
                if let failures = r.parseFailures { parts.append("\(failures) unparsed") }
                if !parts.isEmpty { lines.append("- \(r.model) \(r.scoring): " + parts.joined(separator: "; ")) }
            }
            if !t.baselines.isEmpty {
                lines.append("- baselines: " + t.baselines.map { b in
                    (b.majority ? "majority (\(b.label))" : "always \(b.label)") + " "
                        + t.baselines[0].metrics.keys.sorted().map { "\($0) \(Self.f(b.metrics[$0] ?? .nan))" }.joined(separator: " ")
                }.joined(separator: "; "))
            }
            if !lines.isEmpty { out += "\n\(t.task) predictions:\n" + lines.joined(separator: "\n") + "\n" }
        }
        out += "\nThroughput (items/s):"
        for t in tasks {
            let primary = t.results.filter { $0.scoring == t.primaryScoring }
            out += " \(t.task) " + primary.map { String(format: "%.2f", $0.itemsPerSecond) }.joined(separator: "/")
        }
        out += "\n\n95% percentile-bootstrap intervals (\(settings.bootstrapResamples) resamples, seed \(settings.seed)); "
        out += "Δ = adapter − base; p: exact McNemar for accuracy, paired bootstrap for F1; robust (shown on the gaining rows): "
        out += "a significant gain (p < \(Self.significance)) under at least two conventions and a significant loss under none. \(settings.shots)-shot.\n"
        return out
    }

    static func f(_ x: Double) -> String { x.isNaN ? "–" : String(format: "%.3f", x) }
}
