import ArgumentParser
import Foundation
import Ingest

// MARK: - ingest

struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ingest PubMed/MEDLINE XML (.xml, .xml.gz), PMC JATS (.nxml), text/Markdown and JSONL into a corpus.",
        discussion: """
        PATH may be a file, a directory (searched recursively) or a quoted glob. Re-ingesting is safe: \
        a record for a stored PMID replaces it, DeleteCitation removes PMIDs, files already ingested \
        unchanged are skipped (use --force to re-read them). Ctrl-C commits what was read; run the \
        same command again to resume.
        """)

    @Argument(help: "Files, directories or globs to ingest.")
    var paths: [String]

    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Maximum words per passage (title excluded); sized for a 256-token embedder.")
    var maxWords = 160

    @Option(help: "Words of overlap between consecutive passages (whole sentences).")
    var overlapWords = 32

    @Option(help: "Documents per transaction.")
    var batchSize = 4096

    @Flag(help: "Continue with the next file after a bad one; still reports every error.")
    var keepGoing = false

    @Flag(help: "Re-read files that were already ingested unchanged.")
    var force = false

    func validate() throws {
        if maxWords < 16 { throw ValidationError("--max-words must be at least 16") }
        if overlapWords < 0 || overlapWords * 2 >= maxWords { throw ValidationError("--overlap-words must be in 0..<max-words/2") }
        if batchSize < 1 { throw ValidationError("--batch-size must be positive") }
    }

    func run() throws {
        Terminal.trapInterrupts()
        var options = Ingester.Options()
        options.chunker = .init(maxWords: maxWords, overlapWords: overlapWords)
        options.batchSize = batchSize
        options.keepGoing = keepGoing
        options.force = force
        let store = try CorpusStore(path: corpus.db)
        let ingester = try Ingester(store: store, options: options)
        let line = ProgressLine(enabled: !output.quiet)
        let report: Ingester.Report
        do {
            report = try ingester.ingest(paths: paths, progress: { p in
                let fraction = p.bytesTotal > 0 ? Double(p.bytesDone) / Double(p.bytesTotal) : nil
                let file = p.filesTotal > 1 ? "[\(p.filesDone + 1)/\(p.filesTotal)] " : ""
                line.update(label: "ingest \(file)\((p.file as NSString).lastPathComponent):", fraction: fraction,
                            count: p.documents, unit: "docs")
            }, shouldStop: { interruptRequested.load(ordering: .relaxed) })
        } catch let failure as IngestFailure {
            line.finish()
            printReport(failure.report)
            if case .interrupted = failure.error {
                Terminal.error(failure.error.description)
                throw ExitCode(130)
            }
            Terminal.error(failure.error.description)
            if case .storeFailed = failure.error {} else if !keepGoing {
                Terminal.note("hint: fix the file or pass --keep-going; what was read before the error is committed, and re-running skips finished files.")
            }
            throw ExitCode.failure
        }
        line.finish()
        printReport(report)
        if report.filesFailed > 0 { throw ExitCode.failure }
    }

    private func printReport(_ r: Ingester.Report) {
        if output.json {
            try? Terminal.printJSON(r)
            return
        }
        let rate = r.seconds > 0 ? Double(r.documentsRead) / r.seconds : 0
        print("""
        ingested \(r.files) file(s) in \(String(format: "%.2f", r.seconds)) s (\(Int(rate)) docs/s)\
        \(r.filesSkippedUnchanged > 0 ? ", \(r.filesSkippedUnchanged) unchanged file(s) skipped" : "")
          documents read   \(r.documentsRead)  (new \(r.inserted), replaced \(r.replaced), unchanged \(r.unchanged), older version skipped \(r.olderVersionSkipped))
          passages written \(r.passages)
          without text     \(r.withoutText)  (stored, not searchable: no abstract/body)
          deleted          \(r.deleted)  (DeleteCitation)
        """)
        if r.duplicatesInFile > 0 { print("  duplicates       \(r.duplicatesInFile)  (same PMID twice in a file; the later record wins)") }
        if !r.messages.isEmpty {
            FileHandle.standardError.write(Data((r.messages.map { "  ! " + $0 }.joined(separator: "\n") + "\n").utf8))
        }
    }
}

// MARK: - stats

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show corpus statistics: documents, passages, years, top journals and MeSH terms.")

    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Length of each top list.")
    var top = 10

    func run() throws {
        let store = try openExisting(corpus.db, readOnly: true)
        let s = try store.stats(top: top)
        if output.json { try Terminal.printJSON(s); return }
        print("corpus \(corpus.db) (schema v\(s.schemaVersion), \(s.files) file(s) ingested)")
        print("  documents \(s.documents)  passages \(s.passages)  without passages \(s.documentsWithoutPassages)  MeSH headings \(s.meshTerms)")
        print("  by source: " + s.bySource.map { "\($0.name) \($0.count)" }.joined(separator: ", "))
        if !s.years.isEmpty { print("  years (latest \(top)): " + s.years.map { "\($0.name): \($0.count)" }.joined(separator: ", ")) }
        func list(_ title: String, _ items: [CorpusStats.Count]) {
            guard !items.isEmpty else { return }
            print("  \(title):")
            for i in items { print("    \(String(i.count).padding(toLength: 7, withPad: " ", startingAt: 0)) \(i.name)") }
        }
        list("top journals", s.topJournals)
        list("top MeSH terms", s.topMesh)
    }
}

// MARK: - show

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one stored document (by PMID or other id) with its metadata and passages.")

    @Argument(help: "The PMID (or JSONL id, PMC id, text file name).")
    var id: String

    @OptionGroup var corpus: CorpusOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let store = try openExisting(corpus.db, readOnly: true)
        guard let s = try store.document(key: id) else {
            Terminal.error("no document \(id) in \(corpus.db)")
            throw ExitCode.failure
        }
        let d = s.document
        if output.json {
            try Terminal.printJSON(ShowJSON(s))
            return
        }
        print("\(d.pmid.map { "PMID \($0)" } ?? d.key)\(d.version > 1 ? " v\(d.version)" : "")  [\(d.source.rawValue)]  \(d.file):\(d.line)")
        print("title:    \(d.title)")
        if let j = d.journal { print("journal:  \(j)\(d.journalAbbrev.map { " (\($0))" } ?? "")\(d.year.map { ", \($0)" } ?? "")") }
        if let l = d.language { print("language: \(l)") }
        if !d.publicationTypes.isEmpty { print("types:    \(d.publicationTypes.joined(separator: "; "))") }
        if let doi = d.doi { print("doi:      \(doi)") }
        if let pmc = d.pmcid { print("pmc:      \(pmc)") }
        if !d.keywords.isEmpty { print("keywords: \(d.keywords.joined(separator: "; "))") }
        if !d.mesh.isEmpty {
            print("MeSH:")
            for m in d.mesh {
                print("  \(m.majorTopic ? "*" : " ") \(m.descriptor) [\(m.ui)]\(m.qualifiers.isEmpty ? "" : " / " + m.qualifiers.joined(separator: ", "))")
            }
        }
        print("passages (\(s.passages.count)):")
        for (id, p) in s.passages {
            print("  #\(id) [\(p.section)] \(p.start)..<\(p.end)\n    \(p.text)")
        }
    }
}

struct ShowJSON: Encodable {
    struct P: Encodable { var id: Int; var ordinal: Int; var section: String; var start: Int; var end: Int; var text: String }
    var key: String, source: String, pmid: Int?, version: Int, title: String, text: String
    var sections: [Section], journal: String?, journalAbbrev: String?, year: Int?, language: String?
    var publicationTypes: [String], mesh: [MeshHeading], keywords: [String], doi: String?, pmcid: String?
    var file: String, line: Int, passages: [P]
    init(_ s: StoredDocument) {
        let d = s.document
        key = d.key; source = d.source.rawValue; pmid = d.pmid; version = d.version; title = d.title; text = d.text
        sections = d.sections; journal = d.journal; journalAbbrev = d.journalAbbrev; year = d.year; language = d.language
        publicationTypes = d.publicationTypes; mesh = d.mesh; keywords = d.keywords; doi = d.doi; pmcid = d.pmcid
        file = d.file; line = d.line
        passages = s.passages.map { P(id: $0.id, ordinal: $0.passage.ordinal, section: $0.passage.section, start: $0.passage.start, end: $0.passage.end, text: $0.passage.text) }
    }
}

/// Opens a corpus that must already exist (read commands must not create empty files); read
/// commands open it `readOnly`, so they never change the file.
func openExisting(_ path: String, readOnly: Bool = false) throws -> CorpusStore {
    guard FileManager.default.fileExists(atPath: path) else {
        Terminal.error("no corpus at \(path); create one with: selfspec ingest PATH --db \(path)")
        throw ExitCode.failure
    }
    return try CorpusStore(path: path, readOnly: readOnly)
}
