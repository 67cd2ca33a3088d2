import Evaluation
import Foundation
import LLM
import XCTest
@testable import Server

/// `GroundedAsker.Verdict` (`ask --verdict`): which questions get one, the label tokens, the
/// content-free priors, and an answer that starts with the chosen word.
final class VerdictTests: XCTestCase {
    func testYesNoQuestionsAreRecognized() {
        for q in ["Does metformin reduce cancer risk?", "Is there still a need for living-related liver transplantation in children?",
                  "Cycloplegic autorefraction in young adults: is it mandatory?", "Multidisciplinary breast cancer clinics. Do they work?",
                  "Can't statins cause myopathy?", "  are beta blockers safe in asthma?  ", "Is 2.5 mg of warfarin safe?"] {
            XCTAssertTrue(DecisionParser.isYesNoQuestion(q), q)
        }
        for q in ["What does metformin inhibit?", "Which enzyme does aspirin block?", "Statins reduce LDL.", "Is aspirin safe",
                  "Vitamin D supplementation and regulatory T cells: vitamin D treatment for autoimmune diseases?", ""] {
            XCTAssertFalse(DecisionParser.isYesNoQuestion(q), q)
        }
    }

    /// SmolLM2: yes, no and maybe each have first tokens of their own, the calibrated priors are the
    /// content-free prompt's (finite, below 0), and a yes/no question's answer starts with the
    /// word the calibrated choice picks; a wh-question is answered freely.
    func testSmolLM2VerdictStartsTheAnswer() throws {
        let file = try GGUFFile(path: ServerFixture.modelPath)
        let tokenizer = try TokenizerFactory.make(metadata: file.metadata)
        let template = try ChatTemplate(metadata: file.metadata)
        let generator = TextGenerator(model: try loadLanguageModel(file: file), tokenizer: tokenizer)
        let model = try GroundedAsker.Verdict(mode: .model, questions: .yesNo, generator: generator, template: template)
        XCTAssertEqual(model.priors, [0, 0, 0])
        let calibrated = try GroundedAsker.Verdict(mode: .calibrated, questions: .yesNo, generator: generator, template: template)
        print("SmolLM2 verdict tokens \(calibrated.choice.options.map(\.tokens)); content-free probabilities \(calibrated.priors.map { exp($0) })")
        XCTAssertEqual(calibrated.choice.options.count, 3)
        for (label, option) in zip(GroundedAsker.Verdict.labels, calibrated.choice.options) {
            XCTAssertEqual(tokenizer.decode([option.emit]), label.capitalized)
            XCTAssertTrue(option.tokens.contains(tokenizer.encode(" " + label).first!), label)
        }
        XCTAssertTrue(calibrated.priors.allSatisfy { $0.isFinite && $0 < 0 })
        XCTAssertEqual(Set(calibrated.choice.options.flatMap(\.tokens)).count, calibrated.choice.options.map(\.tokens.count).reduce(0, +))

        var settings = GenerationRequest(prompt: [], maxTokens: 24)
        settings.repetitionStop = .default
        let asker = GroundedAsker(generator: generator, template: template, settings: settings, retrieval: nil, passageBudget: 512,
                                  verdict: calibrated)
        let yesNo = try asker.answer("Does aspirin reduce the risk of a second heart attack?")
        let chosen = try XCTUnwrap(yesNo.result.choice)
        let word = GroundedAsker.Verdict.labels[chosen.chosen].capitalized
        print("verdict \(word) from \(chosen.logProbs); answer \(yesNo.result.text.debugDescription)")
        XCTAssertTrue(yesNo.result.text.hasPrefix(word), yesNo.result.text)
        let adjusted = zip(chosen.logProbs, calibrated.priors).map { $0 - $1 }
        XCTAssertEqual(chosen.chosen, adjusted.indices.max { adjusted[$0] < adjusted[$1] })
        let free = try asker.answer("Which enzyme does aspirin block?")
        XCTAssertNil(free.result.choice, "not a yes/no question")
    }
}
