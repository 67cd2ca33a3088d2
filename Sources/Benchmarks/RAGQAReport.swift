import Evaluation
import Foundation

/// The aggregate of `selfspec eval --rag-qa`: one row per model (base, then each adapter) with
/// 95% percentile-bootstrap intervals over items, and paired tests of each adapter against the
/// base (exact McNemar for the per-item yes/no metrics, paired bootstrap for the ratios and
/// ROUGE-L).
///
/// Definitions (n items):
/// - recall@k: share of items whose gold PMID is among the k retrieved passages' documents.
/// - citation precision: cited documents that are the gold one / all documents cited, summed
///   over items (answers citing nothing add nothing); citation recall: share of items whose
///   answer cites the gold document.
/// - correctness: share of items whose committed decision equals the gold label (`unclear`
///   counts as wrong); `unclear` and `explicit` are shares of items.
/// - unsupported: share of answers with at least one figure not in the cited passages.
/// - loops: share of answers stopped by the repetition stop or cut at max tokens while repeating.
/// - ROUGE-L: mean F to the long answer over items that have one.
/// - latency p50/p95: seconds per question (retrieval + generation); tokens/s: generated tokens
///   over generation seconds, all items together.
public struct RAGQAReport: Codable, Sendable {
    /// A value and its 95% bootstrap interval.
    public struct Interval: Codable, Sendable, Equatable {
        public var value: Double, low: Double, high: Double
    }

    public struct ModelRow: Codable, Sendable {
        public var name: String
        public var model: String
        public var adapter: String?
        public var items: Int
        public var recallAtK: Interval
        public var citationPrecision: Interval
        public var citationRecall: Interval
        /// Share of answers citing at least one shown passage.
        public var citingShare: Double
        public var invalidCitations: Int
        public var correctness: Interval
        public var unclearShare: Double
        public var explicitShare: Double
        /// Answers per committed decision (yes, no, maybe, unclear).
        public var decisions: [String: Int]
        public var unsupportedShare: Interval
        public var loopRate: Interval
        /// Answers ended by finish reason (stop, length, repetition).
        public var finishReasons: [String: Int]
        public var rougeL: Interval
        public var latencyP50: Double
        public var latencyP95: Double
        public var tokensPerSecond: Double
        public var meanTokens: Double
        public var seconds: Double
    }

    /// A paired test of an adapter against the base on one metric.
    public struct Comparison: Codable, Sendable {
        public var model: String
        public var metric: String
        public var base: Double
        public var other: Double
        public var difference: Double
        public var p: Double
        public var test: String
    }

    public var file: String
    public var db: String
    public var items: Int
    public var k: Int
    public var mode: String
    /// Everything else the answers depend on (model, adapters, sampling, passage budget, context,
    /// instructions), as the run states it; nil in reports written before it was recorded.
    public var settings: String?
    /// Items whose gold PMID the corpus does not hold (they are evaluated; they cannot be retrieved).
    public var missingFromCorpus: [Int]
    /// The most frequent gold label and its share (the correctness of always answering it).
    public var majorityLabel: String
    public var majorityShare: Double
    public var resamples: Int
    public var seed: UInt64
    public var models: [ModelRow]
    public var comparisons: [Comparison]

    // MARK: Building

    /// One metric: its name, its value over the items at some indices (for the bootstrap), and
    /// the per-item flag it is the share of (nil for ratios and means: paired bootstrap, not McNemar).
    struct Statistic {
        var name: String
        var value: ([Int]) -> Double
        var flag: ((RAGQAOutcome) -> Bool)?
        /// Whether the statistic has no value over these items (precision with nothing cited).
        var undefined: ([Int]) -> Bool = { _ in false }
    }

    /// The metrics with intervals, in report order.
    static func statistics(_ o: [RAGQAOutcome]) -> [Statistic] {
        func share(_ name: String, _ flag: @escaping (RAGQAOutcome) -> Bool) -> Statistic {
            Statistic(name: name, value: { idx in idx.isEmpty ? 0 : Double(idx.filter { flag(o[$0]) }.count) / Double(idx.count) },
                      flag: flag)
        }
        let precision = Statistic(name: "citation precision", value: { idx in
            let cited = idx.reduce(0) { $0 + o[$1].citedDocuments }
            return cited == 0 ? 0 : Double(idx.filter { o[$0].citedGold }.count) / Double(cited)
        }, undefined: { idx in idx.allSatisfy { o[$0].citedDocuments == 0 } })
        let rouge = Statistic(name: "ROUGE-L", value: { idx in
            let v = idx.compactMap { o[$0].rougeL }
            return v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count)
        })
        return [share("recall@k") { $0.retrievedRank != nil }, precision, share("citation recall", \.citedGold),
                share("correctness", \.correct), share("unsupported figures") { !$0.unsupported.isEmpty },
                share("loops", \.loop), rouge]
    }

    /// Aggregates the outcomes of each model on the same items.
    /// - Parameters:
    ///   - runs: per model, the outcomes in item order (base first).
    ///   - names, models, adapters: per model.
    public static func build(file: String, db: String, k: Int, mode: String, items: [RAGQAEvaluation.Item],
                             missingFromCorpus: [Int], names: [String], models: [String], adapters: [String?],
                             runs: [[RAGQAOutcome]], seconds: [Double], resamples: Int, seed: UInt64,
                             settings: String? = nil) -> RAGQAReport {
        let labels = EvalDataLoader.pubmedQALabels
        let counts = labels.indices.map { l in items.filter { $0.gold == l }.count }
        let majority = counts.indices.max { counts[$0] < counts[$1] } ?? 0
        var rows: [ModelRow] = []
        for (m, o) in runs.enumerated() {
            let stats = statistics(o)
            func interval(_ i: Int) -> Interval {
                let all = Array(o.indices)
                // A statistic without a value (precision over no citation at all) is NaN, printed "n/a", not 0.
                if stats[i].undefined(all) {
                    return Interval(value: .nan, low: .nan, high: .nan)
                }
                let ci = Statistics.bootstrapInterval(count: o.count, resamples: resamples, seed: seed, statistic: stats[i].value)
                return Interval(value: round4(stats[i].value(all)), low: round4(ci.low), high: round4(ci.high))
            }
            let latencies = o.map(\.seconds)
            let genSeconds = o.reduce(0) { $0 + $1.generationSeconds }, tokens = o.reduce(0) { $0 + $1.tokens }
            var decisions: [String: Int] = [:], finishes: [String: Int] = [:]
            for x in o { decisions[x.decision, default: 0] += 1; finishes[x.finishReason, default: 0] += 1 }
            let n = Double(max(o.count, 1))
            rows.append(ModelRow(
                name: names[m], model: models[m], adapter: adapters[m], items: o.count,
                recallAtK: interval(0), citationPrecision: interval(1), citationRecall: interval(2),
                citingShare: round4(Double(o.filter { $0.citedDocuments > 0 }.count) / n),
                invalidCitations: o.reduce(0) { $0 + $1.invalidCitations }, correctness: interval(3),
                unclearShare: round4(Double(decisions["unclear", default: 0]) / n),
                explicitShare: round4(Double(o.filter(\.explicit).count) / n), decisions: decisions,
                unsupportedShare: interval(4), loopRate: interval(5), finishReasons: finishes, rougeL: interval(6),
                latencyP50: round4(Statistics.percentile(latencies, 0.5)), latencyP95: round4(Statistics.percentile(latencies, 0.95)),
                tokensPerSecond: genSeconds > 0 ? round4(Double(tokens) / genSeconds) : 0,
                meanTokens: round4(Double(tokens) / n), seconds: round4(seconds[m])))
        }
        return RAGQAReport(file: file, db: db, items: items.count, k: k, mode: mode, settings: settings, missingFromCorpus: missingFromCorpus,
                           majorityLabel: labels[majority], majorityShare: round4(Double(counts[majority]) / Double(max(items.count, 1))),
                           resamples: resamples, seed: seed, models: rows,
                           comparisons: compare(runs: runs, names: names, resamples: resamples, seed: seed))
    }

    /// Each adapter against the base on every metric.
    static func compare(runs: [[RAGQAOutcome]], names: [String], resamples: Int, seed: UInt64) -> [Comparison] {
        guard let base = runs.first else { return [] }
        let baseStats = statistics(base)
        var out: [Comparison] = []
        for m in runs.indices.dropFirst() where runs[m].count == base.count {
            let all = Array(base.indices)
            for (b, s) in zip(baseStats, statistics(runs[m])) {
                let p = s.flag.map { flag in Statistics.mcNemar(base: base.map(flag), other: runs[m].map(flag)).p }
                    ?? Statistics.pairedBootstrap(count: base.count, resamples: resamples, seed: seed) { s.value($0) - b.value($0) }
                out.append(Comparison(model: names[m], metric: s.name, base: round4(b.value(all)), other: round4(s.value(all)),
                                      difference: round4(s.value(all) - b.value(all)), p: round4(p),
                                      test: s.flag == nil ? "paired bootstrap" : "exact McNemar"))
            }
        }
        return out
    }

    static func round4(_ x: Double) -> Double { x.isFinite ? (x * 10000).rounded() / 10000 : x }

    // MARK: Output

    public static func encoder() -> JSONEncoder {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return enc
    }

    /// Reads what ``encoder()`` writes (NaN as "nan").
    public static func decoder() -> JSONDecoder {
        let dec = JSONDecoder()
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return dec
    }

    /// The report as Markdown: a table with a row per metric and a column per model.
    public func markdown() -> String {
        func ci(_ x: Interval) -> String {
            x.value.isNaN ? "n/a (no passage cited)" : String(format: "%.3f [%.3f, %.3f]", x.value, x.low, x.high)
        }
        func pct(_ x: Double) -> String { String(format: "%.3f", x) }
        var lines = ["## RAG QA: \(items) items of \(file), corpus \(db), \(mode) k = \(k)", ""]
        if let settings { lines += ["Settings: \(settings)", ""] }
        if !missingFromCorpus.isEmpty {
            lines.append("**\(missingFromCorpus.count) item PMIDs are not in the corpus** (they cannot be retrieved): "
                         + missingFromCorpus.prefix(10).map(String.init).joined(separator: ", ") + (missingFromCorpus.count > 10 ? ", …" : ""))
            lines.append("")
        }
        lines.append("| metric | " + models.map(\.name).joined(separator: " | ") + " |")
        lines.append("|---|" + String(repeating: "---|", count: models.count))
        func row(_ name: String, _ f: (ModelRow) -> String) { lines.append("| \(name) | " + models.map(f).joined(separator: " | ") + " |") }
        row("retrieval recall@\(k) of the gold PMID") { ci($0.recallAtK) }
        row("citation precision (gold / cited documents)") { ci($0.citationPrecision) }
        row("citation recall (answers citing the gold PMID)") { ci($0.citationRecall) }
        row("answers citing any passage") { pct($0.citingShare) }
        row("invalid citations (count)") { "\($0.invalidCitations)" }
        row(String(format: "correctness yes/no/maybe (majority '%@' %.3f)", majorityLabel, majorityShare)) { ci($0.correctness) }
        row("decisions yes / no / maybe / unclear") { r in
            ["yes", "no", "maybe", "unclear"].map { "\(r.decisions[$0, default: 0])" }.joined(separator: " / ")
        }
        row("explicit yes/no/maybe") { pct($0.explicitShare) }
        row("answers with unsupported figures") { ci($0.unsupportedShare) }
        row("loops (repetition stop, or max tokens while repeating)") { ci($0.loopRate) }
        row("finish reasons") { r in r.finishReasons.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") }
        row("ROUGE-L to the long answer") { ci($0.rougeL) }
        row("latency p50 / p95 (s)") { String(format: "%.2f / %.2f", $0.latencyP50, $0.latencyP95) }
        row("tokens/s (generation) · mean tokens") { String(format: "%.1f · %.0f", $0.tokensPerSecond, $0.meanTokens) }
        row("wall time (s)") { String(format: "%.0f", $0.seconds) }
        lines.append("")
        lines.append("95% percentile-bootstrap intervals over items (\(resamples) resamples, seed \(seed)).")
        if !comparisons.isEmpty {
            lines += ["", "| adapter | metric | base | adapter | difference | p | test |", "|---|---|---|---|---|---|---|"]
            for c in comparisons {
                lines.append(String(format: "| %@ | %@ | %.3f | %.3f | %+.3f | %.4f | %@ |", c.model, c.metric, c.base, c.other,
                                    c.difference, c.p, c.test))
            }
        }
        return lines.joined(separator: "\n")
    }
}
