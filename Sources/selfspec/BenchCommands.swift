import ArgumentParser
import Foundation
import Ingest

/// Benchmarks that the scripts in Benchmarks/ run beside their peers (see BENCHMARKS.md).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure SelfSpec's engines (the scripts in Benchmarks/ compare them with their peers).",
        subcommands: [BenchParse.self, BenchEmbed.self, BenchExact.self, BenchHNSW.self, BenchScale.self, BenchPubMedQA.self, BenchLLM.self])
}

struct BenchParse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Parse a PubMed file without storing anything (the reader alone), and report articles/s and peak RSS.")

    @Argument(help: "A PubMed/MEDLINE .xml or .xml.gz file.")
    var file: String

    @Flag(help: "Print JSON.")
    var json = false

    struct Result: Encodable { var engine: String; var articles: Int; var seconds: Double; var articlesPerSecond: Double; var peakRSSMB: Double }

    func run() throws {
        let start = Date()
        var n = 0
        try PubMedReader().read(file: file) { if case .document = $0 { n += 1 } }
        let dt = Date().timeIntervalSince(start)
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let r = Result(engine: "selfspec PubMedReader", articles: n, seconds: (dt * 1000).rounded() / 1000,
                       articlesPerSecond: (Double(n) / dt).rounded(), peakRSSMB: Double(usage.ru_maxrss) / 1024)
        if json { try Terminal.printJSON(r) } else {
            print("\(n) articles in \(String(format: "%.2f", dt)) s = \(Int(r.articlesPerSecond)) articles/s, peak RSS \(Int(r.peakRSSMB)) MB")
        }
    }
}
