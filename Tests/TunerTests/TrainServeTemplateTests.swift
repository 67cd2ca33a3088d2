import Foundation
import XCTest
import TestSupport
@testable import LLM
@testable import Tuner

/// Training and serving render a conversation with one template: for every model we ship, the ids
/// the tuner trains on are the ids `serve` prompts with (`ChatTemplate.encode` with the generation
/// prompt, as `ServedModel` calls it), followed by the assistant's tokens, which alone carry the loss.
final class TrainServeTemplateTests: XCTestCase {
    static let conversations: [[ChatMessage]] = [
        [.user("Which enzyme does aspirin inhibit?"), .assistant("Cyclooxygenase (COX-1 and COX-2).")],
        [.system("Answer briefly."), .user("What does insulin lower?"), .assistant("Blood glucose.")],
        [.user("Which organ makes bile?"), .assistant("The liver."), .user("Where is it stored?"), .assistant("In the gallbladder.")],
    ]

    private func check(model name: String, family: ChatTemplate.Family,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let gguf = try GGUFFile(path: try RepositoryFiles.model(name, file: file, line: line))
        let tokenizer = try TokenizerFactory.make(metadata: gguf.metadata)
        let template = try ChatTemplate(metadata: gguf.metadata)
        XCTAssertEqual(template.family, family, name, file: file, line: line)
        let loader = DatasetLoader(tokenizer: tokenizer, template: template, maxLength: 4096)
        for messages in Self.conversations {
            let example = try XCTUnwrap(try loader.example(messages, line: 1), file: file, line: line)
            let served = try template.encode(Array(messages.dropLast()), tokenizer: tokenizer).map(Int32.init)
            XCTAssertEqual(Array(example.ids.prefix(served.count)), served,
                           "\(name): the trained ids start with the served prompt", file: file, line: line)
            // From the prompt's last position on, every next token is trained: the assistant's output.
            let answer = Array(example.ids[served.count...])
            XCTAssertFalse(answer.isEmpty, name, file: file, line: line)
            XCTAssertEqual(Array(example.targets[(served.count - 1)..<(example.ids.count - 1)]), answer,
                           "\(name): the loss is on the assistant's tokens", file: file, line: line)
            let text = tokenizer.decode(answer.map(Int.init), skipSpecial: false)
            XCTAssertTrue(text.contains(messages.last!.content), "\(name): \(text.debugDescription)", file: file, line: line)
            print("\(name): \(served.count) prompt ids as served, then \(answer.count) trained: \(text.debugDescription)")
        }
    }

    func testSmolLM2TrainsOnTheServedPrompt() throws {
        try check(model: "SmolLM2-135M-Instruct.Q4_1.gguf", family: .chatML)
    }

    func testGemma3TrainsOnTheServedPrompt() throws {
        try check(model: "gemma-3-270m-q4_k_m.gguf", family: .completion)
    }

    /// Qwen2.5 when present (it is an optional download).
    func testQwen25TrainsOnTheServedPrompt() throws {
        let name = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
        guard FileManager.default.fileExists(atPath: RepositoryFiles.root.appendingPathComponent("models/\(name)").path) else {
            throw XCTSkip("\(name) not downloaded")
        }
        try check(model: name, family: .chatML)
    }
}
