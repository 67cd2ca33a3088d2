import Foundation

/// The parsers `scripts/fuzz` feeds with arbitrary bytes, one name each (the name of its seed
/// folder `Tests/Fixtures/fuzz/NAME`, of `SELFSPEC_FUZZ_TARGET` and of `selfspec-fuzz NAME`).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// `GGUFFile(path:)` (header, metadata, tensor table, data offsets), then what a caller does
    /// with a file that opened: a row of each tensor, `ModelConfig`, the tokenizer, the chat template.
    case gguf
    /// `SafetensorsFile(path:)` (header length, JSON header, shapes, offsets), then each tensor's floats.
    case safetensors
    /// `PubMedReader` on PubMed/MEDLINE XML.
    case pubmed
    /// `JATSReader` on PMC JATS XML.
    case jats
    /// The gzip stream under both XML readers (`ByteSource` of `PubMedReader`, `gzread` of `JATSReader`).
    case gzip
    /// `JSONLReader`: the corpus documents of `selfspec ingest`.
    case jsonlDocuments = "jsonl-docs"
    /// `DatasetLoader.load(path:)`: a training set, rendered and tokenized with SmolLM2's template.
    case jsonlDataset = "jsonl-dataset"
    /// `SeedLoader.parse` and the benchmark seed readers (`BenchmarkSeedSampler.read`, every format).
    case jsonlSeeds = "jsonl-seeds"
    /// SmolLM2's byte-level BPE: bytes in, ids out, `decode(encode(x)) == x`.
    case tokenizerBPE = "tokenizer-bpe"
    /// Gemma 3's SentencePiece: bytes in, ids out, `decode(encode(x)) == x` but for "▁".
    case tokenizerSPM = "tokenizer-spm"
    /// The server's body → typed request step (`RequestDecoding`) of every POST route.
    case serverJSON = "server-json"

    /// The model file a target loads once per process from the models folder, if any.
    var modelFile: String? {
        switch self {
        case .tokenizerBPE, .jsonlDataset: "SmolLM2-135M-Instruct.Q4_1.gguf"
        case .tokenizerSPM: "gemma-3-270m-q4_k_m.gguf"
        default: nil
        }
    }

    /// The extension of the scratch file a path-based reader is given.
    var fileExtension: String {
        switch self {
        case .gguf: "gguf"
        case .safetensors: "safetensors"
        case .pubmed, .jats: "xml"
        case .gzip: "xml.gz"
        case .jsonlDocuments, .jsonlDataset, .jsonlSeeds: "jsonl"
        case .tokenizerBPE, .tokenizerSPM, .serverJSON: "bin"
        }
    }
}

/// What one input did: the parser accepted it, or refused it with one of the project's typed
/// errors (the point of most inputs).
public enum FuzzOutcome: Equatable, Sendable {
    case accepted
    /// The first refusal's message.
    case refused(String)
}

/// A bug an input showed that is not a crash: an error of a type the parser must not throw (it
/// must give its module's typed error), or a broken invariant such as a failed round trip.
public struct FuzzFailure: Error, CustomStringConvertible, Sendable {
    public let target: FuzzTarget
    public let description: String
}
