import XCTest
@testable import LLM

/// `GenerationRequest.firstTokenChoice`: the first token chosen among options by probability mass
/// minus a prior, then generation as usual.
final class FirstTokenChoiceTests: XCTestCase {
    /// Hand-made logits: an option's probability is the mass of its tokens; the prior moves the choice.
    func testChoiceAddsTokenMassAndSubtractsThePrior() throws {
        // Vocabulary of 6: token 0 gets most mass; options {1, 2} and {3}.
        let logits: [Float] = [3, 1, 1, 2, -1, 0]
        let z = logits.reduce(0.0) { $0 + exp(Double($1)) }
        var choice = FirstTokenChoice(options: [.init(tokens: [1, 2], emit: 1), .init(tokens: [3], emit: 3)])
        let plain = choice.choose(logits: logits)
        let expected = [log((exp(1.0) + exp(1.0)) / z), log(exp(2.0) / z)]
        let diff = zip(plain.logProbs, expected).map { abs($0 - $1) }.max()!
        print("option log-probabilities \(plain.logProbs), max diff \(diff)")
        XCTAssertLessThan(diff, 1e-9)
        XCTAssertEqual(plain.chosen, 1, "2e^1 < e^2: the second option")
        // A prior above the second option's share flips the choice; the raw log-probabilities stay.
        choice.options[1].logPrior = 0.5
        let flipped = choice.choose(logits: logits)
        XCTAssertEqual(flipped.chosen, 0)
        XCTAssertEqual(flipped.logProbs, plain.logProbs)
        XCTAssertThrowsError(try FirstTokenChoice(options: []).validate(vocabularySize: 6))
        XCTAssertThrowsError(try FirstTokenChoice(options: [.init(tokens: [9], emit: 1)]).validate(vocabularySize: 6))
        XCTAssertThrowsError(try FirstTokenChoice(options: [.init(tokens: [1], emit: 1), .init(tokens: [1, 2], emit: 2)]).validate(vocabularySize: 6))
        XCTAssertThrowsError(try FirstTokenChoice(options: [.init(tokens: [1], emit: 1, logPrior: -.infinity)]).validate(vocabularySize: 6))
    }

    /// SmolLM2 on a yes/no question: the chosen option's token starts the answer, its
    /// log-probabilities are the log-softmax of the model's own prefill logits, a prior that
    /// favours the other option makes that one start it, and what follows is the greedy
    /// continuation of the prompt plus that token. Batched generation chooses the same.
    func testSmolLM2AnswerStartsWithTheChosenOption() throws {
        let model = try SharedLlama.model()
        let tok = try SharedModel.bpe()
        let gen = TextGenerator(model: model, tokenizer: tok)
        let prompt = try RepetitionStopTests.loopingQuestion()
        let yes = tok.encode("Yes"), no = tok.encode("No")
        XCTAssertEqual(yes.count, 1)
        XCTAssertEqual(no.count, 1)
        let cache = model.makeCache(capacity: prompt.count, precision: .f32)
        let logits = try model.forward([.init(cache: cache, tokens: prompt)])
        let m = Double(logits.max()!)
        let logZ = m + log(logits.reduce(0.0) { $0 + exp(Double($1) - m) })
        let reference = [Double(logits[yes[0]]) - logZ, Double(logits[no[0]]) - logZ]

        var choice = FirstTokenChoice(options: [.init(tokens: yes, emit: yes[0]), .init(tokens: no, emit: no[0])])
        let first = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: 12, firstTokenChoice: choice))
        let outcome = try XCTUnwrap(first.choice)
        let diff = zip(outcome.logProbs, reference).map { abs($0 - $1) }.max()!
        print("SmolLM2 yes/no log-probabilities \(outcome.logProbs) (reference \(reference), max diff \(diff)); answer \(first.text.debugDescription)")
        XCTAssertLessThan(diff, 1e-3)
        XCTAssertEqual(outcome.chosen, reference[0] >= reference[1] ? 0 : 1)
        XCTAssertEqual(first.tokens.first, choice.options[outcome.chosen].emit)

        // Favour the other option by more than the gap: it starts the answer.
        let other = 1 - outcome.chosen
        choice.options[outcome.chosen].logPrior = abs(reference[0] - reference[1]) + 1
        let forced = try gen.generate(GenerationRequest(prompt: prompt, maxTokens: 12, firstTokenChoice: choice))
        XCTAssertEqual(forced.choice?.chosen, other)
        XCTAssertEqual(forced.tokens.first, choice.options[other].emit)
        XCTAssertTrue(forced.text.hasPrefix(other == 0 ? "Yes" : "No"), forced.text)
        let continued = try gen.generate(GenerationRequest(prompt: prompt + [choice.options[other].emit], maxTokens: 11))
        XCTAssertEqual(Array(forced.tokens.dropFirst()), continued.tokens, "then the greedy continuation")

        var batched: GenerationResult?
        gen.generateBatch([GenerationRequest(prompt: prompt, maxTokens: 12, firstTokenChoice: choice),
                           GenerationRequest(prompt: tok.encode("Insulin is"), maxTokens: 8)], maxBatch: 2) { i, r in
            if i == 0 { batched = try? r.get() }
        }
        XCTAssertEqual(batched?.tokens, forced.tokens)
        XCTAssertEqual(batched?.choice?.chosen, other)

        // A choice with a token outside the vocabulary fails the request.
        XCTAssertThrowsError(try gen.generate(GenerationRequest(prompt: prompt, maxTokens: 4,
                                                                firstTokenChoice: .init(options: [.init(tokens: [1 << 30], emit: 0)]))))
    }
}
