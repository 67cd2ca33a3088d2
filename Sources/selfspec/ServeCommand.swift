import ArgumentParser
import Dispatch
import Foundation
import LLM
import Server
import VectorIndex
#if canImport(Glibc)
import Glibc
#endif

/// `selfspec serve`: the OpenAI-compatible HTTP server.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the model (and adapters), embeddings and corpus search over an OpenAI-compatible HTTP API.",
        discussion: """
        Routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions (both stream with \
        "stream": true), POST /v1/embeddings, POST /v1/search, GET /health. Concurrent requests share \
        one continuous batch per model. Binds 127.0.0.1 unless --host says otherwise. SIGTERM or \
        Ctrl-C: stop accepting, let in-flight requests finish (up to --drain seconds), then exit.
        """)

    @Option(name: .long, help: "The GGUF model file, or a model name: smollm2, gemma3, qwen2.5.")
    var model = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    @Option(name: .long, help: "The id of the base model in the API (default: the file name without .gguf).")
    var modelID: String?
    @Option(name: .long, help: "A LoRA adapter (PEFT folder, GGUF file, or the name of one under adapters/), served as its own model id; NAME=PATH names it (repeatable).")
    var adapter: [String] = []
    @Option(name: .long, help: "Address to bind (0.0.0.0 for every interface).")
    var host = "127.0.0.1"
    @Option(name: .long, help: "Port (0: any free port, printed at start).")
    var port = 8080
    @Option(name: .long, help: "Require 'Authorization: Bearer KEY' on every route (default: $SELFSPEC_API_KEY if set).")
    var apiKey: String?
    @Option(name: .customLong("embedder"), help: "The MiniLM folder for /v1/embeddings and dense search.")
    var embedder = "models/all-MiniLM-L6-v2"
    @OptionGroup var weights: WeightFormatOptions
    @OptionGroup var templateOptions: TemplateOptions
    @Flag(name: .long, help: "Serve no embeddings (and BM25-only search).")
    var noEmbedder = false
    @Option(name: .long, help: "A corpus SQLite file for /v1/search.")
    var db: String?
    @Option(name: .long, help: "Most sequences decoded together per model.")
    var batch = 8
    @Option(name: .long, help: "Most requests waiting for a slot per model; more get 429.")
    var queue = 64
    @Option(name: .long, help: "Largest request body in bytes (413 beyond).")
    var maxBody = 1 << 20
    @Option(name: .long, help: "Largest max_tokens a request may ask for.")
    var maxTokensLimit = 2048
    @Option(name: .long, help: "max_tokens when a request gives none.")
    var defaultMaxTokens = 256
    @Option(name: .long, help: "Seconds in-flight requests get to finish on shutdown before they are cancelled.")
    var drain: Double = 10
    @Flag(name: .long, help: "Print one JSON line {url, port, models} when listening, instead of text.")
    var json = false

    func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port must be in 0...65535") }
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
        if queue < 0 { throw ValidationError("--queue must be 0 or more") }
        if maxBody < 1024 { throw ValidationError("--max-body must be at least 1024 bytes") }
        if maxTokensLimit < 1 || defaultMaxTokens < 0 || defaultMaxTokens > maxTokensLimit {
            throw ValidationError("need 0 <= --default-max-tokens <= --max-tokens-limit and --max-tokens-limit >= 1")
        }
        if drain < 0 { throw ValidationError("--drain must be 0 or more") }
    }

    func run() throws {
        let (served, embedderModel, retriever) = try load()
        let config = OpenAIServer.Configuration(
            host: host, port: port, apiKey: apiKey ?? ProcessInfo.processInfo.environment["SELFSPEC_API_KEY"],
            maxBodyBytes: maxBody, maxTokensLimit: maxTokensLimit, defaultMaxTokens: defaultMaxTokens, drainSeconds: drain)
        let server = OpenAIServer(models: served, embedder: embedderModel, retriever: retriever, configuration: config)
        let signals = Serve.trapSignals(server)
        let outcome = Locked<Error?>(nil)
        let done = DispatchSemaphore(value: 0)
        let host = self.host, json = self.json, ids = served.map(\.id)
        Task {
            do {
                try await server.run { port in
                    let url = "http://\(host):\(port)"
                    var line = "listening on \(url) (models: \(ids.joined(separator: ", ")))"
                    if json, let data = try? JSONSerialization.data(withJSONObject: ["url": url, "port": port, "models": ids] as [String: Any]) {
                        line = String(decoding: data, as: UTF8.self)
                    }
                    FileHandle.standardOutput.write(Data((line + "\n").utf8))
                }
            } catch {
                outcome.withLock { $0 = error }
            }
            done.signal()
        }
        done.wait()
        signals.forEach { $0.cancel() }
        if let error = outcome.withLock({ $0 }) {
            Terminal.error(error.localizedDescription)
            throw ExitCode.failure
        }
        Terminal.note("server stopped")
    }

    /// The models, the embedder and the retriever the options ask for.
    private func load() throws -> ([ServedModel], (any Embedder)?, Retriever?) {
        let model = try ModelNames.model(self.model)
        let file = try GGUFFile(path: model)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let template = try templateOptions.resolve(file)
        let options = BatchScheduler.Options(maxBatch: batch, maxQueue: queue)
        let baseID = modelID ?? URL(fileURLWithPath: model).deletingPathExtension().lastPathComponent
        let modelOptions = try weights.modelOptions()
        var served = [ServedModel(id: baseID, model: try loadLanguageModel(file: file, options: modelOptions), tokenizer: tokenizer,
                                  template: template, options: options)]
        for spec in adapter {
            let (id, path) = Serve.adapterID(try ModelNames.adapter(spec))
            guard !served.contains(where: { $0.id == id }) else { throw ValidationError("two models have the id '\(id)'; name them with --adapter NAME=PATH") }
            let lora = try LoRAAdapter(path: path)
            served.append(ServedModel(id: id, model: try loadLanguageModel(file: file, options: modelOptions, adapter: lora), tokenizer: tokenizer,
                                      template: template, options: options))
        }
        var embedderModel: MiniLMEmbedder?
        if !noEmbedder {
            if FileManager.default.fileExists(atPath: embedder) {
                embedderModel = try MiniLMEmbedder(modelDirectory: embedder)
            } else {
                Terminal.note("no embedding model at \(embedder): /v1/embeddings is off (pass --embedder DIR)")
            }
        }
        let retriever = try db.map { db in
            try Retriever.open(db: db, embedder: { embedderModel! }, dense: embedderModel == nil ? .off : .ifEmbedded)
        }
        return (served, embedderModel, retriever)
    }

    /// `NAME=PATH`, or the id from the path: the folder name (for `run/peft`, `run/adapter.gguf`:
    /// the run folder's name).
    static func adapterID(_ spec: String) -> (id: String, path: String) {
        if let eq = spec.firstIndex(of: "="), !spec[..<eq].contains("/") {
            return (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
        }
        var url = URL(fileURLWithPath: spec).standardizedFileURL
        if ["peft", "adapter.gguf", "adapter"].contains(url.lastPathComponent) { url.deleteLastPathComponent() }
        return (url.deletingPathExtension().lastPathComponent, spec)
    }

    /// SIGINT/SIGTERM: graceful shutdown; a second signal exits at once.
    private static func trapSignals(_ server: OpenAIServer) -> [DispatchSourceSignal] {
        let seen = Locked(false)
        return [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if seen.withLock({ let was = $0; $0 = true; return was }) { _exit(130) }
                Terminal.note("shutting down: finishing in-flight requests (signal again to quit now)…")
                Task { await server.shutdown() }
            }
            source.resume()
            return source
        }
    }
}

