import ArgumentParser
import Foundation
import LLM
import Tensor

// MARK: Shared options

/// The weight format `--bf16` asks for; refuses it on a CPU without AVX-512 BF16, where only the
/// kernel's scalar fallback could run it.
func weightFormat(bf16: Bool) throws -> PackedMatrix.Format {
    guard bf16 else { return .float32 }
    guard PackedMatrix.bfloat16IsNative else {
        throw ValidationError("--bf16: this CPU has no AVX-512 BF16 (the scalar fallback is far slower than float32)")
    }
    return .bfloat16
}

/// `--bf16`, for every command that runs a local model.
struct WeightFormatOptions: ParsableArguments {
    @Flag(name: .long, help: "bfloat16 weight copies: prompts and batched steps through the AVX-512 BF16 kernel (faster on CPUs that have it, e.g. AMD Zen 4; about 3 significant digits per product; refused on other CPUs).")
    var bf16 = false

    func validate() throws { _ = try weightFormat(bf16: bf16) }  // before anything loads

    /// For bulk generation on a terminal: the hint that this CPU could run `--bf16`, when it was
    /// not asked for.
    var speedHint: String? {
        guard !bf16, PackedMatrix.bfloat16IsNative, Terminal.stderrIsTTY else { return nil }
        return "note: this CPU has AVX-512 BF16; --bf16 generates about 1.5-1.7x faster (about 3 significant digits per product)"
    }

    /// Model options with the weight format asked for.
    func modelOptions(_ base: LlamaModel.Options = LlamaModel.Options()) throws -> LlamaModel.Options {
        var options = base
        options.weightFormat = try weightFormat(bf16: bf16)
        return options
    }
}

/// `--template NAME`: a chat template family instead of the one the model file names.
struct TemplateOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The chat template family to use instead of the model file's: chatml, llama3, gemma, mistral or completion (a plain prompt).", valueName: "name"))
    var template: String?

    func validate() throws {
        if let template { _ = try ChatTemplate(name: template) }
    }

    /// The model's template, or the family asked for (with the file's BOS/EOS texts).
    func resolve(_ file: GGUFFile) throws -> ChatTemplate { try ChatTemplate(metadata: file.metadata, name: template) }
}

/// The model file.
struct GGUFModelOptions: ParsableArguments {
    @Option(name: .long, help: "A GGUF model file (Llama family, Qwen2 or Gemma 3), e.g. models/SmolLM2-135M-Instruct.Q4_1.gguf, or a model name: smollm2, gemma3, qwen2.5.")
    var model: String
    @OptionGroup var weights: WeightFormatOptions

    /// Loads the model and its tokenizer, with a LoRA adapter when given.
    func load(adapter: AdapterOptions? = nil) throws -> (any CausalLanguageModel, any Tokenizer, GGUFFile) {
        let file = try GGUFFile(path: try ModelNames.model(model))
        let lora = try adapter?.adapter.map { try LoRAAdapter(path: try ModelNames.adapter($0)) }
        let options = try weights.modelOptions(LlamaModel.Options(adapterMode: adapter?.mergeAdapter == true ? .merged : .inForward))
        return (try loadLanguageModel(file: file, options: options, adapter: lora),
                try TokenizerFactory.make(metadata: file.metadata), file)
    }
}

/// A LoRA adapter applied to the model (`generate`, `chat`).
struct AdapterOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "A LoRA adapter: a tune run folder, a PEFT folder, or a GGUF LoRA file.",
        discussion: "A run folder gives its adapter.gguf, else its latest checkpoint.", valueName: "path"))
    var adapter: String?
    @Flag(name: .long, help: "Merge the adapter into float32 weights at load time instead of applying it in every step.")
    var mergeAdapter = false

    func validate() throws {
        if mergeAdapter && adapter == nil { throw ValidationError("--merge-adapter needs --adapter PATH") }
    }
}

/// Sampling and stopping options shared by `generate` and `chat`.
struct SamplingOptions: ParsableArguments {
    @Option(name: .long, help: "Most tokens to generate per prompt.")
    var maxTokens = 256
    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0
    @Option(name: .long, help: "Keep only the k most likely tokens (0 = off).")
    var topK = 0
    @Option(name: .long, help: "Keep the smallest set of tokens whose probability reaches p (1 = off).")
    var topP: Float = 1
    @Option(name: .long, help: "Drop tokens less likely than min-p times the most likely (0 = off).")
    var minP: Float = 0
    @Option(name: .long, help: "Repetition penalty on the last 64 tokens (1 = off).")
    var repeatPenalty: Float = 1
    @Option(name: .long, help: "Frequency penalty per occurrence in the last 64 tokens (0 = off).")
    var frequencyPenalty: Float = 0
    @Option(name: .long, help: "DRY: push down a token that would continue a sequence the answer already repeats, by MULT·BASE^(length−ALLOWED) (0 = off). Default: 0.8 for ask and chat, 0 for generate.")
    var dryMultiplier: Float?
    @Option(name: .long, help: "DRY base (with --dry-multiplier).")
    var dryBase: Float = 1.75
    @Option(name: .long, help: "DRY: repeats up to this many tokens are free (with --dry-multiplier).")
    var dryAllowedLength = 2
    @Option(name: .long, help: "Stop when the text contains this string (repeatable).")
    var stop: [String] = []
    @Option(name: .long, help: "Random seed (same seed and options give the same text).")
    var seed: UInt64 = 0
    @Flag(name: .long, help: "Drop the oldest prompt tokens when the prompt does not fit the context (default: error).")
    var truncate = false
    @Flag(name: .long, inversion: .prefixedNo,
          help: "Stop when the text starts repeating itself (finish reason 'repetition'). Default: on for ask and chat, off for generate.")
    var repetitionStop: Bool?
    @Option(name: .long, help: "The loop rule REPEATS,MIN_TOKENS,MAX_PERIOD: a span of up to MAX_PERIOD tokens written REPEATS times in a row, MIN_TOKENS in all (implies --repetition-stop; default 2,32,128).")
    var repetitionRule: String?

    var parameters: SamplingParameters {
        var p = SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                   repetitionPenalty: repeatPenalty, frequencyPenalty: frequencyPenalty, seed: seed)
        p.dryMultiplier = dryMultiplier ?? 0
        p.dryBase = dryBase
        p.dryAllowedLength = dryAllowedLength
        return p
    }

    func validate() throws {
        do { try parameters.validate() } catch { throw ValidationError(error.localizedDescription) }
        if maxTokens < 0 { throw ValidationError("invalid max-tokens \(maxTokens): expected >= 0") }
        if repetitionStop == false && repetitionRule != nil { throw ValidationError("--repetition-rule cannot go with --no-repetition-stop") }
        _ = try rule()
    }

    /// `--repetition-rule`, or the default rule.
    private func rule() throws -> RepetitionStop {
        guard let repetitionRule else { return .default }
        let parts = repetitionRule.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, let r = parts[0], let t = parts[1], let p = parts[2] else {
            throw ValidationError("invalid --repetition-rule '\(repetitionRule)': expected REPEATS,MIN_TOKENS,MAX_PERIOD (e.g. 2,32,128)")
        }
        let stop = RepetitionStop(repeats: r, minTokens: t, maxPeriod: p)
        do { try stop.validate() } catch { throw ValidationError("invalid --repetition-rule: \(error.localizedDescription)") }
        return stop
    }

    /// The loop rule in force: `--repetition-rule`, `--[no-]repetition-stop`, else on when `onByDefault`.
    func repetition(onByDefault: Bool) -> RepetitionStop? {
        guard repetitionStop ?? (onByDefault || repetitionRule != nil) else { return nil }
        return (try? rule()) ?? .default
    }

    /// DRY's multiplier for `ask` and `chat` unless `--dry-multiplier` says otherwise: chosen on
    /// PubMedQA dev items apart from the reported ones (BENCHMARKS.md, "Loops prevented: DRY").
    static let askDRYMultiplier: Float = 0.8

    /// - Parameter repetitionByDefault: whether the loop stop is on unless `--no-repetition-stop`
    ///   and DRY is ``askDRYMultiplier`` unless `--dry-multiplier` (ask and chat: yes; generate: no).
    func request(_ prompt: [Int], seedOffset: UInt64 = 0, repetitionByDefault: Bool = false) -> GenerationRequest {
        var p = parameters
        if repetitionByDefault && dryMultiplier == nil { p.dryMultiplier = Self.askDRYMultiplier }
        p.seed &+= seedOffset
        return GenerationRequest(prompt: prompt, maxTokens: maxTokens, sampling: p, stopStrings: stop,
                                 overflow: truncate ? .truncatePrompt : .error,
                                 repetitionStop: repetition(onByDefault: repetitionByDefault))
    }
}

// MARK: generate

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt, or every prompt of a JSONL file (continuous batching), with a GGUF model.",
        discussion: """
        --prompts reads one JSON object per line: {"id": any, "prompt": "text"} or \
        {"id": any, "messages": [{"role": "user", "content": "..."}]}; it writes one JSON line per \
        prompt as each finishes: {"id", "text", "finish_reason", "tokens", "prompt_tokens"}, or \
        {"id", "error"} for a prompt that failed. finish_reason: eos, stop, length, cancelled, or \
        repetition (with --repetition-stop: the text started looping).
        """)

    @OptionGroup var modelOptions: GGUFModelOptions
    @OptionGroup var adapterOptions: AdapterOptions
    @Option(name: .long, help: "The prompt text.")
    var prompt: String?
    @Option(name: .long, help: "A JSONL file of prompts (see below).")
    var prompts: String?
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var templateOptions: TemplateOptions
    @Option(name: .long, help: "Most sequences in flight at once with --prompts.")
    var batch = 32
    @Flag(name: .long, help: "Render prompts with the model's chat template as one user turn.")
    var chat = false
    @Flag(name: .long, help: "Print JSON instead of streaming text (with --prompt).")
    var json = false
    @Flag(name: .long, help: "Recognise special tokens such as <|im_start|> written in the prompt text (without --chat).")
    var parseSpecial = false

    func validate() throws {
        if (prompt == nil) == (prompts == nil) { throw ValidationError("give exactly one of --prompt or --prompts") }
        if batch < 1 { throw ValidationError("invalid batch \(batch): expected >= 1") }
        if let prompt, prompt.isEmpty { throw ValidationError("the prompt is empty") }
    }

    struct Output: Encodable {
        var id: JSONValue?
        var text: String
        var finish_reason: String
        var tokens: Int
        var prompt_tokens: Int
    }

    func run() throws {
        Terminal.trapInterrupts()
        let (model, tokenizer, file) = try modelOptions.load(adapter: adapterOptions)
        let template = chat || templateOptions.template != nil ? try templateOptions.resolve(file) : nil
        func encode(_ text: String?, _ messages: [ChatMessage]?) throws -> [Int] {
            if let messages { return try (template ?? templateOptions.resolve(file)).encode(messages, tokenizer: tokenizer) }
            let text = text ?? ""
            if let template { return try template.encode([.user(text)], tokenizer: tokenizer) }
            return tokenizer.encode(text, addBOS: tokenizer.specialTokens.addBOSByDefault, parseSpecial: parseSpecial)
        }
        let generator = TextGenerator(model: model, tokenizer: tokenizer)
        if let prompt {
            let request = sampling.request(try encode(prompt, nil))
            let result = try generator.generate(request) { piece in
                if !json { FileHandle.standardOutput.write(Data(piece.utf8)) }
                return interruptRequested.load(ordering: .relaxed) ? .stop : .more
            }
            if json {
                try Terminal.printJSON(Output(id: nil, text: result.text, finish_reason: result.finishReason.rawValue,
                                              tokens: result.tokens.count, prompt_tokens: result.promptTokens))
            } else {
                print("")
            }
            return
        }
        // JSONL: parse every line first so a bad line is reported with its number before any work.
        let lines = try String(contentsOfFile: prompts!, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var ids = [JSONValue?](), requests = [GenerationRequest]()
        for (n, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw ValidationError("\(prompts!):\(n + 1): not a JSON object")
            }
            var messages: [ChatMessage]?
            if let raw = object["messages"] {
                do { messages = try ChatMessage.list(fromJSON: raw) } catch { throw ValidationError("\(prompts!):\(n + 1): \(error.localizedDescription)") }
            }
            let text = object["prompt"] as? String
            guard text != nil || messages != nil else {
                throw ValidationError("\(prompts!):\(n + 1): needs \"prompt\" (string) or \"messages\"")
            }
            if messages == nil, text!.isEmpty { throw ValidationError("\(prompts!):\(n + 1): the prompt is empty") }
            ids.append(object["id"].map(JSONValue.init) ?? .number(Double(requests.count)))
            requests.append(sampling.request(try encode(text, messages), seedOffset: UInt64(requests.count)))
        }
        if requests.count > 1, let hint = modelOptions.weights.speedHint { Terminal.note(hint) }
        let progress = ProgressLine(enabled: true)
        var done = 0, failed = 0
        generator.generateBatch(requests, maxBatch: batch,
                                shouldStop: { interruptRequested.load(ordering: .relaxed) }) { i, result in
            done += 1
            switch result {
            case let .success(r):
                try? Terminal.printJSONLine(Output(id: ids[i], text: r.text, finish_reason: r.finishReason.rawValue,
                                                   tokens: r.tokens.count, prompt_tokens: r.promptTokens))
            case let .failure(error):
                failed += 1
                try? Terminal.printJSONLine(["id": ids[i] ?? .null, "error": .string(error.localizedDescription)])
            }
            progress.update(label: "generate", fraction: Double(done) / Double(requests.count), count: done, unit: "prompts")
        }
        progress.finish()
        if failed > 0 { Terminal.note("\(failed) of \(requests.count) prompts failed (see their \"error\" lines)") }
    }
}

// MARK: chat

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a GGUF model in the terminal (streaming, multi-turn, the model's chat template).",
        discussion: "Type a message and press Enter; /reset starts over, /exit or Ctrl-D quits.")

    @OptionGroup var modelOptions: GGUFModelOptions
    @OptionGroup var adapterOptions: AdapterOptions
    @OptionGroup var sampling: SamplingOptions
    @Option(name: .long, help: "A system prompt (default: the template's own, if any).")
    var system: String?
    @OptionGroup var templateOptions: TemplateOptions

    /// Printed (stderr) after an answer the loop stop ended.
    static let repetitionNote = "stopped: the answer started repeating itself (--no-repetition-stop lets it run)"

    func run() throws {
        let (model, tokenizer, file) = try modelOptions.load(adapter: adapterOptions)
        let template = try templateOptions.resolve(file)
        let generator = TextGenerator(model: model, tokenizer: tokenizer)
        var messages = system.map { [ChatMessage.system($0)] } ?? []
        var stops = sampling.stop
        if let end = template.endOfTurn { stops.append(end) }
        Terminal.trapInterrupts()
        while true {
            FileHandle.standardError.write(Data("> ".utf8))
            guard let line = readLine() else { break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text == "/exit" { break }
            if text == "/reset" { messages = system.map { [ChatMessage.system($0)] } ?? []; continue }
            if text.isEmpty { continue }
            messages.append(.user(text))
            interruptRequested.store(false, ordering: .relaxed)
            do {
                var request = sampling.request(try template.encode(messages, tokenizer: tokenizer), repetitionByDefault: true)
                request.stopStrings = stops
                let result = try generator.generate(request) { piece in
                    FileHandle.standardOutput.write(Data(piece.utf8))
                    return interruptRequested.load(ordering: .relaxed) ? .stop : .more
                }
                FileHandle.standardOutput.write(Data("\n".utf8))  // after the streamed pieces, also in a pipe
                if result.finishReason == .repetition { Terminal.note(Self.repetitionNote) }
                messages.append(.assistant(result.text))
            } catch let error as ModelError {
                // The conversation outgrew the context (or the like): this turn is dropped, the
                // session goes on.
                messages.removeLast()
                Terminal.error("\(error.localizedDescription) — this message was not added; /reset starts over, or run chat with --truncate to drop the oldest tokens")
            }
        }
    }
}

// MARK: JSON values

/// A JSON value read from input and written back unchanged (JSONL ids).
enum JSONValue: Encodable {
    case string(String), number(Double), null

    init(_ any: Any) {
        switch any {
        case let s as String: self = .string(s)
        case let n as NSNumber: self = .number(n.doubleValue)
        default: self = .string("\(any)")
        }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .string(s): try c.encode(s)
        case let .number(n):
            if n == n.rounded(), abs(n) < 1e15 { try c.encode(Int(n)) } else { try c.encode(n) }
        case .null: try c.encodeNil()
        }
    }
}

extension Terminal {
    /// One compact JSON object on its own line of stdout, flushed (JSONL output).
    static func printJSONLine<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(0x0A)
        FileHandle.standardOutput.write(data)
    }
}
