import Foundation
import TestSupport
import Ingest
import LLM
import VectorIndex
import XCTest
@testable import Server

/// One real server for the tests: SmolLM2 (Q4_1 GGUF), MiniLM and a small real corpus (PubMed
/// XML from `corpora/samples`, ingested and embedded here), on an ephemeral loopback port.
final class ServerFixture: @unchecked Sendable {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let modelPath = repo.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static let embedderPath = repo.appendingPathComponent("models/all-MiniLM-L6-v2").path
    static let pubmed = RepositoryFiles.pubmedSamples
    static let apiKey = "test-key-123"
    /// The corpus of the shared fixture; removed by `ServerTests.tearDown()` (its only user).
    static let corpusFile = FileManager.default.temporaryDirectory.appendingPathComponent("serve-\(getpid())-\(UUID().uuidString.prefix(8)).sqlite").path

    let server: OpenAIServer
    let port: Int
    let served: ServedModel
    let embedder: MiniLMEmbedder
    let retriever: Retriever
    let corpusPath: String
    let runTask: Task<Void, Error>

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Loads SmolLM2 into a served model with its own scheduler.
    static func servedModel(id: String, options: BatchScheduler.Options) throws -> ServedModel {
        let file = try GGUFFile(path: modelPath)
        return ServedModel(id: id, model: try loadLanguageModel(file: file), tokenizer: try TokenizerFactory.make(metadata: file.metadata),
                           template: try ChatTemplate(metadata: file.metadata), options: options)
    }

    /// Starts `server` and waits for its port.
    static func start(_ server: OpenAIServer) async throws -> (Int, Task<Void, Error>) {
        let port = Locked<Int?>(nil)
        let task = Task { try await server.run { p in port.withLock { $0 = p } } }
        for _ in 0..<500 {
            if let p = port.withLock({ $0 }) { return (p, task) }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        task.cancel()
        throw ServerError.internalError("the test server did not start within 5 s")
    }

    private init() async throws {
        served = try Self.servedModel(id: "smollm2", options: .init(maxBatch: 4, maxQueue: 16))
        embedder = try MiniLMEmbedder(modelDirectory: Self.embedderPath)
        corpusPath = Self.corpusFile
        let store = try CorpusStore(path: corpusPath)
        _ = try Ingester(store: store).ingest(paths: [Self.pubmed.appendingPathComponent("pubmed-29768149.xml").path,
                                                      Self.pubmed.appendingPathComponent("qi29_main_finding_pubmed_result.xml").path])
        let vectors = try VectorStore(corpus: store)
        _ = try vectors.embedPending(with: embedder)
        let index = try DenseIndex.load(vectors, kind: .hnsw)!.index
        retriever = Retriever(vectors: vectors, embedder: embedder, index: index)
        server = OpenAIServer(models: [served], embedder: embedder, retriever: retriever,
                              configuration: .init(host: "127.0.0.1", port: 0, apiKey: Self.apiKey, maxBodyBytes: 64 * 1024,
                                                   maxTokensLimit: 4000, defaultMaxTokens: 32))
        (port, runTask) = try await Self.start(server)
    }

    private static let shared = Locked<Task<ServerFixture, Error>?>(nil)

    /// The shared fixture, made on first use.
    static func get() async throws -> ServerFixture {
        let task = shared.withLock { t -> Task<ServerFixture, Error> in
            if let t { return t }
            let made = Task { try await ServerFixture() }
            t = made
            return made
        }
        return try await task.value
    }
}

// MARK: - Real clients

/// What a client process printed.
struct ClientOutput {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program to its end (`runToEnd`), off the cooperative pool.
func runProcess(_ path: String, _ args: [String], input: String? = nil) async throws -> ClientOutput {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            do {
                let r = try runToEnd(path, args, input: input)
                continuation.resume(returning: ClientOutput(status: r.status, stdout: r.stdout, stderr: r.stderr))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

/// `curl` over loopback: returns the HTTP status and the body.
func curl(_ url: String, method: String = "POST", json body: String? = nil, key: String? = ServerFixture.apiKey,
          extra: [String] = []) async throws -> (status: Int, body: String) {
    var args = ["-sS", "-X", method, "-w", "\n%{http_code}", url]
    if let key { args += ["-H", "Authorization: Bearer \(key)"] }
    if let body { args += ["-H", "Content-Type: application/json", "--data-binary", "@-"] }
    let out = try await runProcess("/usr/bin/curl", args + extra, input: body)
    guard let cut = out.stdout.lastIndex(of: "\n"), let status = Int(out.stdout[out.stdout.index(after: cut)...]) else {
        throw ServerError.internalError("curl printed no status: \(out.stdout) \(out.stderr)")
    }
    return (status, String(out.stdout[..<cut]))
}

func jsonObject(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    guard let o = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        XCTFail("not a JSON object: \(text)", file: file, line: line)
        return [:]
    }
    return o
}

/// The `data:` payloads of a server-sent-events body.
func sseEvents(_ body: String) -> [String] {
    body.components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
}
