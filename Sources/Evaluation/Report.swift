import Foundation

/// The result of `selfspec eval`: every model on every task with intervals, and each specialized
/// model against the base. Written as `report.json` (schema `selfspec-eval/1`, snake_case keys;
/// see `EvalReport.encoder`) and rendered as markdown.
public struct EvalReport: Codable, Sendable, Equatable {
    public var schema = "selfspec-eval/1"
    public var settings: Settings
    /// The base model first, then each adapter.
    public var models: [ModelInfo]
    public var tasks: [TaskReport]

    public struct Settings: Codable, Sendable, Equatable {
        public var shots: Int
        public var seed: UInt64
        public var limit: Int?
        public var bootstrapResamples: Int
        public var confidenceLevel: Double
        /// Entity-level exact spans; accuracy by option log-probability; the tests used.
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
        public var results: [ModelResult]
        public var comparisons: [Comparison]
    }

    public struct ModelResult: Codable, Sendable, Equatable {
        public var model: String
        public var n: Int
        public var metrics: [MetricValue]
        public var seconds: Double
        public var itemsPerSecond: Double
    }

    public struct MetricValue: Codable, Sendable, Equatable {
        public var name: String
        public var value: Double
        public var ciLow: Double
        public var ciHigh: Double
    }

    /// One adapter against the base on one metric: `delta = adapter − base`.
    public struct Comparison: Codable, Sendable, Equatable {
        public var model: String
        public var baseline: String
        public var metric: String
        public var delta: Double
        public var pValue: Double
        /// `mcnemar_exact` or `paired_bootstrap`.
        public var test: String
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
                             limit: Int?, resamples: Int = Statistics.defaultResamples) -> EvalReport {
        var tasks: [TaskReport] = []
        for (t, dataset) in datasets.enumerated() {
            let task = dataset.task
            let results = models.indices.map { m -> ModelResult in
                let run = runs[m][t]
                let metrics = task.metrics.map { metric -> MetricValue in
                    let ci = Statistics.bootstrapInterval(run.outcomes, metric: metric, resamples: resamples, seed: settings.seed)
                    return MetricValue(name: metric.rawValue, value: run.outcomes.metric(metric), ciLow: ci.low, ciHigh: ci.high)
                }
                return ModelResult(model: models[m].name, n: run.outcomes.count, metrics: metrics, seconds: run.seconds,
                                   itemsPerSecond: run.itemsPerSecond)
            }
            var comparisons: [Comparison] = []
            for m in models.indices.dropFirst() {
                let base = runs[0][t].outcomes, other = runs[m][t].outcomes
                for metric in task.metrics {
                    let delta = other.metric(metric) - base.metric(metric)
                    if metric == .accuracy, let a = base.correct, let b = other.correct {
                        comparisons.append(Comparison(model: models[m].name, baseline: models[0].name, metric: metric.rawValue,
                                                      delta: delta, pValue: Statistics.mcNemar(base: a, other: b).p,
                                                      test: "mcnemar_exact"))
                    } else {
                        let p = Statistics.pairedBootstrap(base: base, other: other, metric: metric, resamples: resamples,
                                                           seed: settings.seed)
                        comparisons.append(Comparison(model: models[m].name, baseline: models[0].name, metric: metric.rawValue,
                                                      delta: delta, pValue: p, test: "paired_bootstrap"))
                    }
                }
            }
            tasks.append(TaskReport(task: task.rawValue, file: dataset.file, n: dataset.count,
                                    primaryMetric: task.primaryMetric.rawValue, results: results, comparisons: comparisons))
        }
        let scoring = "label tasks: argmax of the summed log-probability of each option's tokens; ner: greedy generation, "
            + "mentions matched to exact token spans; 95% percentile bootstrap intervals; paired tests: exact McNemar "
            + "(accuracy), paired bootstrap (F1 metrics)"
        return EvalReport(settings: Settings(shots: settings.shots, seed: settings.seed, limit: limit, bootstrapResamples: resamples,
                                             confidenceLevel: 0.95, scoring: scoring),
                          models: models, tasks: tasks)
    }
}

// MARK: - Markdown

extension EvalReport {
    /// A markdown table: one row per task and metric, one column per model (value and 95% CI;
    /// for adapters also the difference to the base and its p-value).
    public func markdown() -> String {
        var out = "| task | metric | n |" + models.map { " \($0.name) |" }.joined() + "\n"
        out += "| --- | --- | ---: |" + String(repeating: " --- |", count: models.count) + "\n"
        for t in tasks {
            guard let first = t.results.first else { continue }
            for (k, metric) in first.metrics.enumerated() {
                var row = "| \(t.task) | \(metric.name) | \(t.n) |"
                for r in t.results {
                    let v = r.metrics[k]
                    var cell = " \(Self.f(v.value)) [\(Self.f(v.ciLow)), \(Self.f(v.ciHigh))]"
                    if let c = t.comparisons.first(where: { $0.model == r.model && $0.metric == metric.name }) {
                        cell += String(format: " Δ %+.3f p=%.3g", c.delta, c.pValue)
                    }
                    row += cell + " |"
                }
                out += row + "\n"
            }
        }
        out += "\nThroughput (items/s):"
        for t in tasks {
            out += " \(t.task) " + t.results.map { String(format: "%.2f", $0.itemsPerSecond) }.joined(separator: "/")
        }
        out += "\n\n95% percentile-bootstrap intervals (\(settings.bootstrapResamples) resamples, seed \(settings.seed)); "
        out += "Δ = adapter − base; p: exact McNemar for accuracy, paired bootstrap for F1. "
        out += "\(settings.shots)-shot.\n"
        return out
    }

    static func f(_ x: Double) -> String { x.isNaN ? "–" : String(format: "%.3f", x) }
}
