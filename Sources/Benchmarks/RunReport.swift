import Evaluation
import Foundation
import Generator
import Ingest
import Tuner

/// The run report of the main job: what each stage of a run folder produced, as one HTML page
/// with inline SVG charts (opens in any browser, no scripts, no network) and as terminal text.
///
/// A run folder (`scripts/demo`'s layout) may hold: `corpus.sqlite`, `data/stats.json`,
/// `tune/config.json` + `tune/log.jsonl`, `eval/report.json`, `ask.json` and `ragqa/report.json`
/// (`eval --rag-qa --report RUN/ragqa`). Missing stages are reported as not run.
public struct RunReport {
    struct Corpus { var stats: CorpusStats; var embedded: Int }
    struct Training { var records: [StepRecord]; var options: TrainOptions? }
    struct Answer: Decodable {
        struct Source: Decodable { var pmid: Int?; var title: String? }
        struct Passage: Decodable { var number: Int; var pmid: Int?; var title: String? }
        var question: String
        var answer: String
        /// The documents the answer cites (checked against the passages shown).
        var sources: [Source]?
        /// The numbered passages the prompt showed.
        var passages: [Passage]?
        var invalid_citations: Int?
        var adapter: String?
    }

    /// The run folder.
    public let directory: String
    var corpus: Corpus?
    var dataset: DatasetStats?
    var training: Training?
    var evaluation: EvalReport?
    var answer: Answer?
    var ragQA: RAGQAReport?

    /// Reads whatever stages `directory` holds.
    /// - Throws: `BenchmarkError.unreadable` naming a file that exists but cannot be read; the
    ///   corpus store's errors for a corpus that cannot be opened.
    public init(directory: String) throws {
        self.directory = directory
        let fm = FileManager.default
        func path(_ p: String) -> String { (directory as NSString).appendingPathComponent(p) }
        func data(_ p: String) throws -> Data? {
            guard fm.fileExists(atPath: path(p)) else { return nil }
            guard let d = fm.contents(atPath: path(p)) else { throw BenchmarkError.unreadable(file: path(p), reason: "cannot read") }
            return d
        }
        func decode<T: Decodable>(_ type: T.Type, _ p: String, _ decoder: JSONDecoder = JSONDecoder()) throws -> T? {
            guard let d = try data(p) else { return nil }
            do { return try decoder.decode(T.self, from: d) } catch { throw BenchmarkError.unreadable(file: path(p), reason: "\(error)") }
        }
        if fm.fileExists(atPath: path("corpus.sqlite")) {
            let store = try CorpusStore(path: path("corpus.sqlite"))
            let embedded = (try? store.db.scalarInt("SELECT count(*) FROM vectors")) ?? 0
            corpus = Corpus(stats: try store.stats(top: 5), embedded: embedded)
        }
        dataset = try decode(DatasetStats.self, "data/stats.json")
        if let log = try data("tune/log.jsonl") {
            let records = try String(decoding: log, as: UTF8.self).split(separator: "\n").enumerated().map { i, line in
                do { return try JSONDecoder().decode(StepRecord.self, from: Data(line.utf8)) } catch {
                    throw BenchmarkError.unreadable(file: path("tune/log.jsonl") + ":\(i + 1)", reason: "\(error)")
                }
            }
            training = Training(records: records, options: try decode(TrainOptions.self, "tune/config.json"))
        }
        evaluation = try decode(EvalReport.self, "eval/report.json", EvalReport.decoder())
        answer = try decode(Answer.self, "ask.json")
        ragQA = try decode(RAGQAReport.self, "ragqa/report.json", RAGQAReport.decoder())
    }

    // MARK: Terminal

    /// The same facts as the HTML page, as plain lines.
    public func summaryLines() -> [String] {
        var out: [String] = []
        if let c = corpus {
            out.append("corpus: \(c.stats.documents) documents, \(c.stats.passages) passages, \(c.embedded) embedded")
        } else { out.append("corpus: not ingested") }
        if let d = dataset {
            out.append(String(format: "dataset: %d examples from %d candidates (%.0f%% of instructions kept, %.0f%% of responses kept), %.1f examples/min",
                              d.examples, d.candidates, d.instructionKeptRatio * 100, d.responseKeptRatio * 100,
                              Double(d.examples) / max(d.seconds / 60, 1e-9)))
            if !d.examplesByTask.isEmpty { out.append("  by task: " + sortedCounts(d.examplesByTask).map { "\($0.0) \($0.1)" }.joined(separator: ", ")) }
            if !d.filtered.isEmpty { out.append("  filtered: " + sortedCounts(d.filtered).map { "\($0.0) \($0.1)" }.joined(separator: ", ")) }
        } else { out.append("dataset: not generated") }
        if let t = training, let first = t.records.first, let last = t.records.last {
            let val = t.records.compactMap(\.validationLoss).last.map { String(format: ", validation %.3f", $0) } ?? ""
            out.append(String(format: "training: %d steps, loss %.3f → %.3f%@", last.step, first.loss, last.loss, val))
        } else { out.append("training: not run") }
        if let e = evaluation {
            for task in e.tasks {
                for r in task.results where r.scoring == task.primaryScoring {
                    guard let m = r.metrics.first(where: { $0.name == task.primaryMetric }) else { continue }
                    out.append(String(format: "eval %@ (%d items, %@) %@: %@ %.3f [%.3f, %.3f]", task.task, r.n, r.scoring, r.model,
                                      m.name, m.value, m.ciLow, m.ciHigh))
                }
                for c in task.comparisons where c.scoring == task.primaryScoring {
                    out.append(String(format: "  %@ vs %@: Δ%@ %+.3f, p = %.3g (%@)%@", c.model, c.baseline, c.metric, c.delta, c.pValue,
                                      c.test, c.robust ? ", robust" : ""))
                }
            }
        } else { out.append("evaluation: not run") }
        if let a = answer {
            out.append("ask: \(a.question)")
            out.append("  " + a.answer.replacingOccurrences(of: "\n", with: "\n  "))
            if let sources = a.sources, !sources.isEmpty {
                out.append("  sources: " + sources.map { "PMID \($0.pmid.map(String.init) ?? "?")" }.joined(separator: ", "))
            } else if a.passages != nil {
                out.append("  sources: none cited")
            }
        }
        if let r = ragQA {
            for m in r.models {
                let precision = m.citationPrecision.value.isNaN ? "n/a" : String(format: "%.3f", m.citationPrecision.value)
                out.append(String(format: "rag-qa %@ (%d items, %@ k = %d): recall@k %.3f, citation precision %@, recall %.3f, correctness %.3f (majority %.3f), unclear %.3f, unsupported figures %.3f, loops %.3f, ROUGE-L %.3f",
                                  m.name, m.items, r.mode, r.k, m.recallAtK.value, precision, m.citationRecall.value,
                                  m.correctness.value, r.majorityShare, m.unclearShare, m.unsupportedShare.value, m.loopRate.value, m.rougeL.value))
            }
        }
        return out
    }

    // MARK: HTML

    /// A self-contained HTML page.
    public func html() -> String {
        var body = "<h1>SelfSpec run report</h1>\n<p class=\"muted\">\(escape(directory)) · \(ISO8601DateFormatter().string(from: Date()))</p>\n"
        body += "<h2>1. Corpus</h2>\n"
        if let c = corpus {
            body += "<p>\(c.stats.documents) documents, \(c.stats.passages) passages, \(c.embedded) embedded for dense search.</p>\n"
            if !c.stats.topJournals.isEmpty {
                body += "<p>Top journals: " + c.stats.topJournals.map { "\(escape($0.name)) (\($0.count))" }.joined(separator: ", ") + "</p>\n"
            }
        } else { body += "<p class=\"muted\">Not ingested.</p>\n" }

        body += "<h2>2. Self-specialization dataset</h2>\n"
        if let d = dataset {
            body += String(format: "<p>%d examples; %d brainstormed candidates, %d instructions kept (%.0f%%), %d responses requested, %d kept (%.0f%%); %.1f examples/min.</p>\n",
                           d.examples, d.candidates, d.instructionsKept, d.instructionKeptRatio * 100, d.responsesRequested,
                           d.examples, d.responseKeptRatio * 100, Double(d.examples) / max(d.seconds / 60, 1e-9))
            if !d.examplesByTask.isEmpty {
                body += "<h3>Examples by task family</h3>\n" + Charts.bars(sortedCounts(d.examplesByTask).map { ($0.0, Double($0.1)) }, color: "#1f77b4")
            }
            if !d.filtered.isEmpty {
                body += "<h3>Dropped by filter</h3>\n" + Charts.bars(sortedCounts(d.filtered).map { ($0.0, Double($0.1)) }, color: "#d62728")
            }
            let hist = d.rougeLHistogram.enumerated().map { (String(format: "%.1f–%.1f", Double($0.offset) / 10, Double($0.offset + 1) / 10), Double($0.element)) }
            body += "<h3>ROUGE-L of each candidate to its nearest earlier instruction</h3>\n" + Charts.bars(hist, color: "#7f7f7f")
        } else { body += "<p class=\"muted\">Not generated.</p>\n" }

        body += "<h2>3. LoRA training</h2>\n"
        if let t = training, let last = t.records.last {
            if let o = t.options {
                body += "<p>Rank \(o.lora.rank), alpha \(Int(o.lora.alpha)), targets \(o.lora.targets.map(\.rawValue).joined(separator: ",")), \(o.steps) steps, batch \(o.batchSize)×\(o.gradAccumulation), peak lr \(o.learningRate).</p>\n"
            }
            let tps = t.records.map(\.tokensPerSecond).reduce(0, +) / Double(t.records.count)
            body += String(format: "<p>Loss %.3f at step 1, %.3f at step %d; %.0f tokens/s on average.</p>\n", t.records[0].loss, last.loss, last.step, tps)
            body += lossCurveSVG(t.records)
        } else { body += "<p class=\"muted\">Not run.</p>\n" }

        body += "<h2>4. Base vs specialized</h2>\n"
        if let e = evaluation {
            body += "<p>\(e.settings.shots)-shot, \(escape(e.settings.scoring)); \(Int(e.settings.confidenceLevel * 100))% bootstrap intervals (\(e.settings.bootstrapResamples) resamples, seed \(e.settings.seed)).</p>\n"
            for task in e.tasks {
                body += "<h3>\(escape(task.task)) (\(task.n) items, \(escape(task.file)))</h3>\n<table><tr><th>model</th><th>scoring</th>"
                let names = task.results.first?.metrics.map(\.name) ?? []
                body += names.map { "<th>\(escape($0))</th>" }.joined() + "<th>items/s</th></tr>\n"
                for r in task.results {
                    body += "<tr><td>\(escape(r.model))</td><td>\(escape(r.scoring))</td>" + r.metrics.map {
                        String(format: "<td>%.3f <span class=\"muted\">[%.3f, %.3f]</span></td>", $0.value, $0.ciLow, $0.ciHigh)
                    }.joined() + String(format: "<td>%.1f</td></tr>\n", r.itemsPerSecond)
                }
                body += "</table>\n"
                for c in task.comparisons where c.scoring == task.primaryScoring {
                    body += String(format: "<p>%@ vs %@ (%@): Δ %@ = %+.3f, p = %.3g (%@)%@.</p>\n", escape(c.model), escape(c.baseline),
                                   escape(c.scoring), escape(c.metric), c.delta, c.pValue, escape(c.test), c.robust ? ", robust" : "")
                }
                let points = task.results.filter { $0.scoring == task.primaryScoring }.compactMap { r in
                    r.metrics.first { $0.name == task.primaryMetric }.map { (r.model, $0.value, $0.ciLow, $0.ciHigh) }
                }
                body += Charts.intervals(points, metric: task.primaryMetric)
            }
        } else { body += "<p class=\"muted\">Not run.</p>\n" }

        body += "<h2>5. The specialist answers</h2>\n"
        if let a = answer {
            body += "<p><b>\(escape(a.question))</b></p>\n<blockquote>\(escape(a.answer).replacingOccurrences(of: "\n", with: "<br>"))</blockquote>\n"
            func link(_ pmid: Int?) -> String {
                pmid.map { "<a href=\"https://pubmed.ncbi.nlm.nih.gov/\($0)/\">PMID \($0)</a>" } ?? "?"
            }
            if let sources = a.sources, !sources.isEmpty {
                body += "<p>Cited sources:</p>\n<ul>" + sources.map { "<li>\(link($0.pmid)) \(escape($0.title ?? ""))</li>" }.joined() + "</ul>\n"
            } else if a.passages != nil {
                body += "<p>Cited sources: none (the answer cites no passage by number or PMID).</p>\n"
            }
            if let invalid = a.invalid_citations, invalid > 0 {
                body += "<p>\(invalid) citation(s) of passages that were not shown were removed.</p>\n"
            }
            if let passages = a.passages, !passages.isEmpty {
                body += "<p class=\"muted\">Passages shown to the model:</p>\n<ol>" + passages.map {
                    "<li value=\"\($0.number)\">\(link($0.pmid)) \(escape($0.title ?? ""))</li>"
                }.joined() + "</ol>\n"
            }
        } else { body += "<p class=\"muted\">Not run.</p>\n" }

        if let r = ragQA {
            body += "<h2>6. Answers measured (eval --rag-qa)</h2>\n<pre>\(escape(r.markdown()))</pre>\n"
        }

        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>SelfSpec run report</title>
        <style>body{font-family:sans-serif;max-width:900px;margin:2em auto;padding:0 1em;color:#222}
        table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
        .muted{color:#777}blockquote{border-left:4px solid #1f77b4;margin:1em 0;padding:.5em 1em;background:#f5f8fb}</style>
        </head><body>
        \(body)</body></html>

        """
    }

    private func sortedCounts(_ d: [String: Int]) -> [(String, Int)] {
        d.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

/// HTML-escapes text.
func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

// MARK: - Charts

/// Small inline SVG charts.
enum Charts {
    /// Horizontal bars, one per (label, value), scaled to the largest value.
    static func bars(_ items: [(String, Double)], color: String, width: Int = 640) -> String {
        let row = 20, left = 170, right = 60, height = items.count * row + 10
        let top = max(items.map(\.1).max() ?? 1, 1e-9)
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        for (i, item) in items.enumerated() {
            let y = 5 + i * row, w = Double(width - left - right) * item.1 / top
            svg += "<text x=\"\(left - 6)\" y=\"\(y + 14)\" text-anchor=\"end\">\(escape(item.0))</text>"
            svg += String(format: "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%@\"/>", left, y + 3, w, row - 6, color)
            svg += String(format: "<text x=\"%.1f\" y=\"%d\">%@</text>\n", Double(left) + w + 4, y + 14, format(item.1))
        }
        return svg + "</svg>\n"
    }

    /// One point with its confidence interval per model, on a 0–1 axis.
    static func intervals(_ points: [(String, Double, Double, Double)], metric: String, width: Int = 640) -> String {
        let row = 26, left = 170, right = 30, height = points.count * row + 30
        func x(_ v: Double) -> Double { Double(left) + Double(width - left - right) * min(max(v, 0), 1) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        for t in stride(from: 0.0, through: 1.0, by: 0.25) {
            svg += String(format: "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.2f</text>\n",
                          x(t), x(t), height - 20, x(t), height - 6, t)
        }
        for (i, p) in points.enumerated() {
            let y = Double(10 + i * row + row / 2)
            svg += "<text x=\"\(left - 6)\" y=\"\(Int(y) + 4)\" text-anchor=\"end\">\(escape(p.0))</text>"
            svg += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1f77b4\" stroke-width=\"2\"/>", x(p.2), y, x(p.3), y)
            svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%@\"/>\n", x(p.1), y, i == 0 ? "#7f7f7f" : "#ff7f0e")
        }
        svg += "<text x=\"\(left)\" y=\"\(height - 22)\" fill=\"#777\">\(escape(metric)) with 95% interval</text>\n"
        return svg + "</svg>\n"
    }

    private static func format(_ v: Double) -> String {
        v == v.rounded() ? String(Int(v)) : String(format: "%.3f", v)
    }
}
