import Foundation
import LLM
import Tensor

// Training data: JSONL examples rendered and tokenized by the model's chat template, the one
// `serve` and `chat` prompt with (a completion prompt for a model without one), with the loss on
// the assistant's output only; a held-out split; length-bucketed batches.

/// One tokenized training example.
public struct TrainingExample: Sendable, Equatable {
    /// Token ids `(T)`.
    public var ids: [Int32]
    /// `(T)`: the id predicted at each position (the next token) where it is a response token,
    /// else ``Ops/ignoreIndex``. The last position predicts nothing.
    public var targets: [Int32]
    /// 1-based line of the source file.
    public var line: Int
}

/// The examples of a dataset file.
public struct LoadedDataset: Sendable {
    public var examples: [TrainingExample]
    /// Examples cut to `maxLength`, and examples skipped because no response token was left.
    public var truncated: Int, skipped: Int
}

/// Reads and tokenizes a JSONL dataset, each conversation rendered by the model's ``ChatTemplate``
/// (``ChatTemplate/encodeMarked(_:addGenerationPrompt:tokenizer:)``): the ids of a prompt are the
/// ids the runtime prompts with, followed by the assistant's output, on which the loss is taken.
public struct DatasetLoader: Sendable {
    public let tokenizer: any Tokenizer
    public let template: ChatTemplate
    /// Sequences longer than this are cut to their first `maxLength` tokens (the prompt is kept and
    /// the response end dropped); an example with no response token left is skipped.
    public let maxLength: Int

    public init(tokenizer: any Tokenizer, template: ChatTemplate, maxLength: Int) {
        self.tokenizer = tokenizer
        self.template = template
        self.maxLength = maxLength
    }

    /// The result of loading a file.
    public typealias Loaded = LoadedDataset

    /// Parses one JSON line into messages: either `{"messages": [{"role", "content"}…]}` or
    /// `{"instruction", "input"?, "output"}` (user = instruction + blank line + input).
    /// - Throws: `TunerError.malformedData` naming the file and line.
    public static func messages(fromLine text: Substring, path: String, line: Int) throws -> [ChatMessage] {
        func bad(_ detail: String) -> TunerError { .malformedData(path: path, line: line, detail: detail) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw bad("not a JSON object")
        }
        if let raw = object["messages"] {
            let messages: [ChatMessage]
            do { messages = try ChatMessage.list(fromJSON: raw) } catch { throw bad(error.localizedDescription) }
            guard messages.contains(where: { $0.role == "assistant" && !$0.content.isEmpty }) else {
                throw bad("no non-empty assistant message to train on")
            }
            return messages
        }
        guard let instruction = object["instruction"] as? String, !instruction.isEmpty else {
            throw bad("needs 'messages', or a non-empty string 'instruction' with 'output'")
        }
        guard let output = object["output"] as? String, !output.isEmpty else { throw bad("needs a non-empty string 'output'") }
        if let input = object["input"], !(input is String) && !(input is NSNull) { throw bad("'input' must be a string") }
        let input = (object["input"] as? String) ?? ""
        return [.user(input.isEmpty ? instruction : instruction + "\n\n" + input), .assistant(output)]
    }

    /// Tokenizes one conversation, the loss on the assistant's output (its content and the tokens
    /// that close it).
    /// - Returns: `nil` when no assistant token is left within `maxLength`.
    /// - Throws: `ChatTemplateError` when the template cannot render the conversation.
    public func example(_ messages: [ChatMessage], line: Int) throws -> TrainingExample? {
        let (all, marks) = try template.encodeMarked(messages, addGenerationPrompt: false, tokenizer: tokenizer)
        let ids = all.prefix(maxLength).map(Int32.init)
        // Position t predicts token t+1; it counts when token t+1 is assistant output.
        var targets = [Int32](repeating: Ops.ignoreIndex, count: ids.count)
        for t in 0..<max(0, ids.count - 1) where marks[t + 1] { targets[t] = ids[t + 1] }
        guard targets.contains(where: { $0 != Ops.ignoreIndex }) else { return nil }
        return TrainingExample(ids: ids, targets: targets, line: line)
    }

    /// Loads every line of `path`.
    /// - Throws: `TunerError.malformedData` (empty or bad line, naming file:line),
    ///   `.emptyDataset`, or a file-system error.
    public func load(path: String) throws -> Loaded {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TunerError.malformedData(path: path, line: 0, detail: "cannot read: \(error.localizedDescription)")
        }
        let text = String(decoding: data, as: UTF8.self)
        var result = Loaded(examples: [], truncated: 0, skipped: 0)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }   // the file's final newline
        var lineNumber = 0
        for raw in lines {
            lineNumber += 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.allSatisfy(\.isWhitespace) {
                throw TunerError.malformedData(path: path, line: lineNumber, detail: "empty line")
            }
            let messages = try Self.messages(fromLine: line, path: path, line: lineNumber)
            let example: TrainingExample?
            do {
                let full = try template.encode(messages, addGenerationPrompt: false, tokenizer: tokenizer).count
                if full > maxLength { result.truncated += 1 }
                example = try self.example(messages, line: lineNumber)
            } catch {
                throw TunerError.malformedData(path: path, line: lineNumber, detail: error.localizedDescription)
            }
            if let example { result.examples.append(example) } else { result.skipped += 1 }
        }
        guard !result.examples.isEmpty else {
            throw TunerError.emptyDataset(path: path, detail: "\(lineNumber) lines, \(result.skipped) without a response token within \(maxLength) tokens")
        }
        return result
    }
}

// MARK: - Split and batches

/// Splits examples into training and held-out sets, reproducibly for a seed.
public func splitHeldOut(_ examples: [TrainingExample], fraction: Double, seed: UInt64)
    -> (train: [TrainingExample], validation: [TrainingExample]) {
    var rng = SplitMix64(seed: seed ^ 0x5EED_5B17)
    var order = Array(examples.indices)
    order.shuffle(using: &rng)
    let held = examples.count < 2 || fraction <= 0 ? 0 : min(examples.count - 1, max(1, Int((Double(examples.count) * fraction).rounded())))
    let validation = order.prefix(held).sorted().map { examples[$0] }
    let train = order.dropFirst(held).sorted().map { examples[$0] }
    return (train, validation)
}

/// Length-bucketed batches: examples sorted by length and cut into batches of similar length, so
/// little is spent on padding; the order of batches is shuffled per epoch from the seed.
public struct BatchPlan: Sendable {
    /// Example indices per batch (batches of neighbours in length order).
    public let batches: [[Int]]
    public let seed: UInt64

    public init(examples: [TrainingExample], batchSize: Int, seed: UInt64) {
        let sorted = examples.indices.sorted { (examples[$0].ids.count, $0) < (examples[$1].ids.count, $1) }
        batches = stride(from: 0, to: sorted.count, by: batchSize).map { Array(sorted[$0..<min($0 + batchSize, sorted.count)]) }
        self.seed = seed
    }

    /// The batch order of `epoch` (a permutation of `batches.indices`, the same for the same seed).
    public func order(epoch: Int) -> [Int] {
        var rng = SplitMix64(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
        var order = Array(batches.indices)
        order.shuffle(using: &rng)
        return order
    }

    /// The padded `(B, T)` ids and targets of a batch (padding: `pad` with ignored targets).
    public static func assemble(_ indices: [Int], from examples: [TrainingExample], pad: Int32)
        -> (ids: [Int32], targets: [Int32], batch: Int, time: Int) {
        let t = indices.map { examples[$0].ids.count }.max() ?? 0
        var ids = [Int32](repeating: pad, count: indices.count * t)
        var targets = [Int32](repeating: Ops.ignoreIndex, count: indices.count * t)
        for (row, i) in indices.enumerated() {
            let ex = examples[i]
            for j in 0..<ex.ids.count { ids[row * t + j] = ex.ids[j]; targets[row * t + j] = ex.targets[j] }
        }
        return (ids, targets, indices.count, t)
    }
}
