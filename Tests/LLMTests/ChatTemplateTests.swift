import Foundation
import XCTest
@testable import LLM

/// Chat templates. The expected strings were rendered offline with Jinja2 3.1 (Hugging Face's
/// settings: sandboxed, `trim_blocks`, `lstrip_blocks`) from the families' published templates:
/// SmolLM2's own (`tokenizer.chat_template` of the GGUF), Meta-Llama-3-8B-Instruct, Gemma 3 IT
/// (text part) and Mistral-7B-Instruct-v0.2, on llama.cpp's `test-chat-template.cpp` conversation.
final class ChatTemplateTests: XCTestCase {
    /// llama.cpp's test conversation (note the padded answer: trimmed by Llama 3 and Gemma only).
    let conversation: [ChatMessage] = [
        .system("You are a helpful assistant"), .user("Hello"), .assistant("Hi there"),
        .user("Who are you"), .assistant("   I am an assistant   "), .user("Another question"),
    ]
    let smolSystem = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    let chatMLTurns = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n"
        + "<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n"
        + "<|im_start|>user\nAnother question<|im_end|>\n"

    // MARK: SmolLM2 (ChatML with a default system prompt)

    func testSmolLM2MatchesGolden() throws {
        let file = try SharedModel.open()
        let template = try ChatTemplate(metadata: file.metadata)
        XCTAssertEqual(template.family, .chatML)
        XCTAssertEqual(template.defaultSystemPrompt, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        XCTAssertEqual(template.endOfTurn, "<|im_end|>")
        let golden = try TestPaths.json("smollm2_logits.json")
        let expected = try XCTUnwrap(golden["chat_template_rendered"] as? String)
        let messages = [ChatMessage.user("What is the mechanism of action of aspirin?")]
        XCTAssertEqual(try template.render(messages, addGenerationPrompt: true), expected)
        // The golden chat prompt's ids (no BOS: SmolLM2 has add_bos_token = false).
        let cases = try XCTUnwrap(golden["cases"] as? [[String: Any]])
        let chatCase = try XCTUnwrap(cases.first { ($0["prompt"] as? String) == expected })
        let ids = try template.encode(messages, tokenizer: try SharedModel.bpe())
        XCTAssertEqual(ids, try XCTUnwrap(chatCase["ids"] as? [Int]))
    }

    func testChatMLWithAndWithoutSystem() throws {
        let file = try SharedModel.open()
        let template = try ChatTemplate(metadata: file.metadata)
        XCTAssertEqual(try template.render(conversation),
                       "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n" + chatMLTurns + "<|im_start|>assistant\n")
        XCTAssertEqual(try template.render(Array(conversation.dropFirst())),
                       smolSystem + chatMLTurns + "<|im_start|>assistant\n")
        XCTAssertEqual(try template.render(Array(conversation.dropFirst()), addGenerationPrompt: false),
                       smolSystem + chatMLTurns)
        // A ChatML template without a default system prompt (teknium/OpenHermes-2.5-Mistral-7B).
        let hermes = try ChatTemplate(template: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
        XCTAssertNil(hermes.defaultSystemPrompt)
        XCTAssertEqual(try hermes.render(Array(conversation.dropFirst())), chatMLTurns + "<|im_start|>assistant\n")
    }

    func testDefaultSystemPromptWithEscapedNewline() {
        // Qwen 2.5 writes the newline as an escape inside the string literal.
        let qwen = "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
        XCTAssertEqual(ChatTemplate.chatMLDefaultSystemPrompt(qwen),
                       "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        XCTAssertNil(ChatTemplate.chatMLDefaultSystemPrompt("{{'<|im_start|>system\\n' + message['content'] + '<|im_end|>'}}"))
    }

    // MARK: Llama 3

    func testLlama3() throws {
        let template = try ChatTemplate(template: "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
        XCTAssertEqual(template.family, .llama3)
        XCTAssertEqual(template.endOfTurn, "<|eot_id|>")
        XCTAssertEqual(try template.render(conversation),
                       "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
                       + "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
                       + "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
                       + "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        XCTAssertEqual(try template.render(Array(conversation[1...2]), addGenerationPrompt: false),
                       "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>")
    }

    // MARK: Gemma

    func testGemma() throws {
        let template = try ChatTemplate(template: "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}...{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}")
        XCTAssertEqual(template.family, .gemma)
        XCTAssertEqual(template.endOfTurn, "<end_of_turn>")
        let tail = "<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n"
            + "<start_of_turn>model\nI am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n"
        XCTAssertEqual(try template.render(conversation),
                       "<bos><start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n" + tail)
        XCTAssertEqual(try template.render(Array(conversation.dropFirst())),
                       "<bos><start_of_turn>user\nHello<end_of_turn>\n" + tail)
        XCTAssertThrowsError(try template.render([.user("a"), .user("b")])) { error in
            XCTAssertEqual(error as? ChatTemplateError, .rolesMustAlternate(family: "gemma", index: 1, role: "user"))
        }
        XCTAssertThrowsError(try template.render([.assistant("a")]))
        XCTAssertThrowsError(try template.render([.user("a"), ChatMessage(role: "tool", content: "x")])) { error in
            XCTAssertEqual(error as? ChatTemplateError, .unsupportedRole(family: "gemma", role: "tool", index: 1))
        }
    }

    /// The Gemma format on the real Gemma 3 vocabulary: the rendered BOS becomes id 2 and is not doubled.
    func testGemmaEncodingWithRealTokenizer() throws {
        let tok = try SharedGemma.spm()
        let ids = try ChatTemplate(family: .gemma).encode([.user("Hi")], tokenizer: tok)
        XCTAssertEqual(ids.first, 2)
        XCTAssertEqual(ids.filter { $0 == 2 }.count, 1, "\(ids)")
        XCTAssertEqual(tok.decode(ids), "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")
        XCTAssertTrue(ids.contains(try XCTUnwrap(tok.tokens.firstIndex(of: "<start_of_turn>"))))
    }

    // MARK: Mistral

    func testMistral() throws {
        let template = try ChatTemplate(template: "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}")
        XCTAssertEqual(template.family, .mistral)
        XCTAssertEqual(template.endOfTurn, "</s>")
        XCTAssertEqual(try template.render(Array(conversation.dropFirst())),
                       "<s>[INST] Hello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]")
        // llama.cpp's handling of a system message (the published template rejects it).
        XCTAssertEqual(try template.render(conversation),
                       "<s>[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]")
    }

    // MARK: Completion (no template) and errors

    func testGemma3BaseHasNoTemplate() throws {
        let file = try SharedGemma.open()
        let template = try ChatTemplate(metadata: file.metadata)
        XCTAssertEqual(template.family, .completion)
        XCTAssertNil(template.endOfTurn)
        let prompt = "The mitochondria is the powerhouse of the"
        XCTAssertEqual(try template.render([.user(prompt)]), prompt)
        // As in the golden logits file: BOS, then the prompt.
        let golden = try TestPaths.json("gemma3_270m_logits.json")
        let first = try XCTUnwrap((golden["cases"] as? [[String: Any]])?.first)
        XCTAssertEqual(first["prompt"] as? String, prompt)
        XCTAssertEqual(try template.encode([.user(prompt)], tokenizer: try SharedGemma.spm()), first["ids"] as? [Int])
        XCTAssertEqual(try template.render([.system("Context."), .user("Q?")]), "Context.\n\nQ?")
    }

    func testErrors() throws {
        XCTAssertThrowsError(try ChatTemplate(template: "{{ messages[0].content }}<|user|>")) { error in
            guard case .unrecognisedTemplate? = error as? ChatTemplateError else { return XCTFail("\(error)") }
            XCTAssertTrue(error.localizedDescription.contains("--template"))
        }
        XCTAssertEqual(try ChatTemplate(template: nil).family, .completion)
        XCTAssertEqual(try ChatTemplate(template: "  ").family, .completion)
        XCTAssertEqual(try ChatTemplate(name: "Gemma").family, .gemma)
        XCTAssertThrowsError(try ChatTemplate(name: "alpaca")) { error in
            XCTAssertEqual(error as? ChatTemplateError, .unknownFamily("alpaca"))
        }
        XCTAssertThrowsError(try ChatTemplate(family: .chatML).render([])) { error in
            XCTAssertEqual(error as? ChatTemplateError, .emptyConversation)
        }
    }
}
