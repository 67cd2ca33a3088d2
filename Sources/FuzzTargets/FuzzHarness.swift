import Evaluation
import Foundation
import Generator
import Ingest
import LLM
import Server
import Tensor
import Tuner
#if canImport(Glibc)
import Glibc
#endif

/// Feeds inputs to one ``FuzzTarget``: a path-based reader gets the bytes through one scratch
/// file per harness (in /dev/shm when there is one), a tokenizer target loads its tokenizer once.
///
/// ```swift
/// let harness = try FuzzHarness(target: .gguf, models: "models")
/// let outcome = try harness.run(bytes)   // .accepted or .refused(message); throws FuzzFailure
/// ```
/// The project's typed errors (`GGUFError`, `IngestError`, `ServerError`, …) are refusals, what a
/// hostile input should get; any other error, and a broken invariant, is a ``FuzzFailure``.
public final class FuzzHarness {
    public let target: FuzzTarget
    /// The scratch file path-based readers read (removed when the harness goes).
    public let scratchPath: String
    private let tokenizer: (any Tokenizer)?
    private let template: ChatTemplate?
    /// Bytes the tokenizer has no token for, which encoding drops (SmolLM2: 0x04, 0x13…).
    private let untokenizedBytes: Set<UInt8>

    /// - Parameters:
    ///   - target: the parser to feed.
    ///   - models: the folder holding the models `scripts/setup` downloads (`models/`).
    /// - Throws: `GGUFError`, `TokenizerError` or `ChatTemplateError` when a tokenizer target's
    ///   model cannot be loaded.
    public init(target: FuzzTarget, models: String) throws {
        self.target = target
        let shm = "/dev/shm"
        let folder = FileManager.default.isWritableFile(atPath: shm) ? shm : NSTemporaryDirectory()
        scratchPath = (folder as NSString).appendingPathComponent("selfspec-fuzz-\(getpid())-\(target.rawValue).\(target.fileExtension)")
        var tokenizer: (any Tokenizer)?
        if let name = target.modelFile {
            let file = try GGUFFile(path: (models as NSString).appendingPathComponent(name))
            tokenizer = try TokenizerFactory.make(metadata: file.metadata)
            template = try ChatTemplate(metadata: file.metadata)
        } else {
            template = nil
        }
        self.tokenizer = tokenizer
        var untokenized = Set<UInt8>()
        if let tokenizer {
            untokenized = Set(0...255)
            for id in 0..<tokenizer.vocabularySize where !tokenizer.isControl(id) {
                let bytes = tokenizer.bytes(of: id)
                if bytes.count == 1 { untokenized.remove(bytes[0]) }
            }
        }
        untokenizedBytes = untokenized
    }

    deinit { unlink(scratchPath) }

    /// Runs one input through the target.
    /// - Returns: whether the parser accepted the input or refused it (with the message).
    /// - Throws: ``FuzzFailure`` for an untyped error or a broken invariant.
    @discardableResult
    public func run(_ data: Data) throws -> FuzzOutcome {
        var refusals = [String]()
        /// Runs one step; a typed error is a refusal (its message is rendered), others a failure.
        func step(_ name: String, _ body: () throws -> Void) throws {
            do {
                try body()
            } catch let error as LocalizedError where Self.isTyped(error) {
                refusals.append("\(name): " + (error.errorDescription ?? "\(error)"))
            } catch let error as IngestError {
                refusals.append("\(name): \(error)")
            } catch let failure as FuzzFailure {
                throw failure
            } catch {
                throw FuzzFailure(target: target, description: "\(name): untyped error \(type(of: error)): \(error)")
            }
        }
        switch target {
        case .gguf: try gguf(data, step)
        case .safetensors: try safetensors(data, step)
        case .pubmed, .jats, .gzip, .jsonlDocuments:
            try scratch(data)
            for (name, reader) in documentReaders {
                try step(name) { try reader.read(file: scratchPath) { _ in } }
            }
        case .jsonlDataset:
            try scratch(data)
            let loader = DatasetLoader(tokenizer: tokenizer!, template: template!, maxLength: 256)
            try step("dataset") { _ = try loader.load(path: scratchPath) }
        case .jsonlSeeds:
            try step("seeds") { _ = try SeedLoader.parse(data, file: "input.jsonl") }
            try scratch(data)
            for format in BenchmarkFormat.allCases {
                try step(format.rawValue) { _ = try BenchmarkSeedSampler.read(path: scratchPath, format: format) }
            }
        case .tokenizerBPE, .tokenizerSPM:
            try checkRoundTrip(String(decoding: data, as: UTF8.self), tokenizer!)
        case .serverJSON:
            for route in RequestDecoding.Route.allCases {
                try step(route.rawValue) { try RequestDecoding.decode(data, route: route) }
            }
        }
        return refusals.first.map { .refused($0) } ?? .accepted
    }

    /// The `Ingest` readers of a document target.
    private var documentReaders: [(String, any DocumentReader)] {
        switch target {
        case .pubmed: [("pubmed", PubMedReader())]
        case .jats: [("jats", JATSReader())]
        case .gzip: [("pubmed", PubMedReader()), ("jats", JATSReader())]
        case .jsonlDocuments: [("jsonl", JSONLReader())]
        default: []
        }
    }

    /// The errors a parser may refuse an input with: the project's typed errors.
    private static func isTyped(_ error: LocalizedError) -> Bool {
        switch error {
        case is GGUFError, is TokenizerError, is ChatTemplateError, is ChatMessagesError, is ModelError,
             is SafetensorsError, is GeneratorError, is EvaluationError, is TunerError, is ServerError: true
        default: false
        }
    }

    /// Writes `data` to the scratch file, replacing what was there.
    private func scratch(_ data: Data) throws {
        do { try data.write(to: URL(fileURLWithPath: scratchPath)) } catch {
            throw FuzzFailure(target: target, description: "cannot write the scratch file \(scratchPath): \(error)")
        }
    }

    // MARK: Model files

    /// Tensors with longer rows are not dequantized (a row is allocated as floats).
    private static let maxRowLength = 1 << 16

    /// One step of an input: its name, and what it runs (see `run`).
    private typealias Step = (String, () throws -> Void) throws -> Void

    /// Writes `data` to the scratch file and opens it as the step "open".
    /// - Returns: the file, or nil when it was refused.
    private func open<File>(_ data: Data, _ step: Step, _ make: @escaping (String) throws -> File) throws -> File? {
        try scratch(data)
        var file: File?
        let path = scratchPath
        try step("open") { file = try make(path) }
        return file
    }

    private func gguf(_ data: Data, _ step: Step) throws {
        guard let file = try open(data, step, { try GGUFFile(path: $0) }) else { return }
        for info in file.tensors where info.rowCount > 0 && info.rowLength <= Self.maxRowLength {
            var row = [Float](repeating: 0, count: info.rowLength)
            try step("dequantize \(info.name)") {
                try row.withUnsafeMutableBufferPointer { try file.tensor(named: info.name).dequantizeRow(0, into: $0) }
            }
        }
        try step("config") { _ = try ModelConfig.read(file) }
        try step("tokenizer") {
            let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
            let ids = tokenizer.encode("Hello wörld 🧬 <|im_start|>", addBOS: true, parseSpecial: true)
            _ = tokenizer.decode(ids + [-1, tokenizer.vocabularySize, Int.max])
        }
        try step("template") { _ = try ChatTemplate(metadata: file.metadata).render([.system("s"), .user("hi")]) }
    }

    /// Tensors with more elements are not converted to floats.
    private static let maxFloats = 1 << 20

    private func safetensors(_ data: Data, _ step: Step) throws {
        guard let file = try open(data, step, { try SafetensorsFile(path: $0) }) else { return }
        for name in file.names {
            try step("tensor \(name)") {
                let entry = try file.entry(name)
                _ = try file.withRawBytes(of: name) { $0.reduce(0, &+) }
                if SafetensorsDType.floatConvertible.contains(entry.dtype), entry.byteRange.count <= Self.maxFloats * 4 {
                    _ = try file.floats(name)
                }
            }
        }
    }

    // MARK: Tokenizers

    /// The tokenizer invariants: ids in the vocabulary, `decode(encode(text))` gives back the
    /// bytes of `text` but those without a token (a SentencePiece tokenizer reads "▁" as a space),
    /// no control token comes out of ordinary text, the streaming decoder agrees with `decode`, and
    /// control-token parsing with BOS gives ids in the vocabulary.
    private func checkRoundTrip(_ text: String, _ tokenizer: any Tokenizer) throws {
        func fail(_ what: String) -> FuzzFailure {
            FuzzFailure(target: target, description: "\(what) for \(text.debugDescription)")
        }
        let vocabulary = 0..<tokenizer.vocabularySize
        let ids = tokenizer.encode(text)
        if let bad = ids.first(where: { !vocabulary.contains($0) }) { throw fail("id \(bad) outside the vocabulary") }
        if let control = ids.first(where: tokenizer.isControl) { throw fail("control token \(control) from ordinary text") }
        let decoded = tokenizer.decode(ids)
        // Byte by byte: "▁" followed by a combining mark is one Character, which a String
        // replacement of "▁" would not match.
        var bytes = Array(text.utf8)
        if target == .tokenizerSPM { bytes = bytes.replacing([0xE2, 0x96, 0x81], with: [0x20]) }  // "▁" → " "
        bytes.removeAll { untokenizedBytes.contains($0) }
        let expected = String(decoding: bytes, as: UTF8.self)
        guard Array(decoded.utf8) == Array(expected.utf8) else {
            throw fail("decode(encode(x)) = \(decoded.debugDescription), not x,")
        }
        var stream = StreamingDecoder(tokenizer: tokenizer)
        let streamed = ids.map { stream.append($0) }.joined() + stream.finish()
        guard Array(streamed.utf8) == Array(decoded.utf8) else { throw fail("streamed \(streamed.debugDescription) ≠ decoded") }
        let special = tokenizer.encode(text, addBOS: true, parseSpecial: true)
        if let bad = special.first(where: { !vocabulary.contains($0) }) { throw fail("id \(bad) (parseSpecial) outside the vocabulary") }
        _ = tokenizer.decode(special, skipSpecial: true)
    }
}
