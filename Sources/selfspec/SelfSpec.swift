import ArgumentParser

@main
struct SelfSpec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfspec",
        abstract: "Carve a biomedical expert out of a small language model, on one CPU machine.",
        discussion: """
        Pipeline: ingest PubMed/PMC/text into a SQLite corpus, index it, generate a grounded \
        instruction dataset with the base model, and tune a LoRA adapter on it.
        """,
        subcommands: [Ingest.self, Stats.self, Show.self, Embed.self, Search.self, Generate.self, Chat.self, Merge.self, SeedsCommand.self, Specialize.self, Bench.self, Tune.self, Serve.self, Ask.self, EvalCommand.self, ReportCommand.self]
    )
}

/// Options shared by commands that read or write a corpus.
struct CorpusOptions: ParsableArguments {
    @Option(name: .long, help: "The corpus SQLite file.")
    var db: String = "corpus.sqlite"
}

/// Output options shared by every command.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON on stdout instead of text.")
    var json = false

    @Flag(name: .long, help: "No progress line even on a terminal.")
    var quiet = false
}
