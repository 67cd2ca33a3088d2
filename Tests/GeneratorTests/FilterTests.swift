import Foundation
import XCTest
@testable import Generator

final class FilterTests: XCTestCase {
    // MARK: Parsing brainstorm output

    func testParsesInstructionInputBlocks() {
        let text = """
        Instruction: List the genes mentioned in the abstract.
        Input: Variants in APOE and TREM2 modify risk.
        continued input line.
        Output: APOE, TREM2

        Task 6
        **Instruction:** Explain what a hazard ratio means
        in survival analysis.
        Input: <noinput>

        7. Instruction: Is metformin first-line therapy for type 2 diabetes?
        Input: N/A
        Instruction:
        Input: orphan input
        Some closing chatter from the model.
        """
        let r = BrainstormParser.parse(text)
        XCTAssertEqual(r.candidates, [
            InstructionCandidate(instruction: "List the genes mentioned in the abstract.", input: "Variants in APOE and TREM2 modify risk.\ncontinued input line."),
            InstructionCandidate(instruction: "Explain what a hazard ratio means in survival analysis.", input: ""),
            InstructionCandidate(instruction: "Is metformin first-line therapy for type 2 diabetes?", input: ""),
        ])
        XCTAssertEqual(r.unparseable, 1)
    }

    func testParsesNumberedListsAndCountsJunk() {
        let r = BrainstormParser.parse("Here are some tasks:\n1. Name the enzyme inhibited by allopurinol.\n2) Classify the study design.\n- Summarise the trial results.\n(4) Define sensitivity.\nThanks!")
        XCTAssertEqual(r.candidates.map(\.instruction), ["Name the enzyme inhibited by allopurinol.", "Classify the study design.", "Summarise the trial results.", "Define sensitivity."])
        XCTAssertEqual(r.unparseable, 2)
        XCTAssertEqual(BrainstormParser.parse("").candidates, [])
        XCTAssertEqual(BrainstormParser.parse("::: ### ???").unparseable, 1)
        // A "Task N: text" header carries the instruction.
        // "Task N" headers copied from the prompt into list items are dropped.
        XCTAssertEqual(BrainstormParser.parse("1. Task 5: Name two loop diuretics.\n- Task 6 Define the term half-life.").candidates.map(\.instruction),
                       ["Name two loop diuretics.", "Define the term half-life."])
        XCTAssertEqual(BrainstormParser.parse("Task 4: Describe the mechanism of warfarin.\nInput: none").candidates,
                       [InstructionCandidate(instruction: "Describe the mechanism of warfarin.", input: "")])
        // The header copied into the instruction field itself (SmolLM2 does this in about one
        // instruction in eight); words that merely start with "task" stay.
        XCTAssertEqual(BrainstormParser.parse("Instruction: Task 3: Name the vector of malaria.\nInstruction: Task: Is aspirin an NSAID?").candidates.map(\.instruction),
                       ["Name the vector of malaria.", "Is aspirin an NSAID?"])
        for kept in ["Tasks such as triage need care.", "Task force reports on sepsis.", "Task-based training of nurses."] {
            XCTAssertEqual(BrainstormParser.parse("Instruction: \(kept)").candidates.map(\.instruction), [kept])
        }
    }

    // MARK: Instruction filters

    func testInstructionFilterReasons() throws {
        var f = InstructionFilter(seeds: ["List the adverse events mentioned in the passage, one per line."])
        func reason(_ i: String, _ x: String = "") -> FilterReason? { f.check(InstructionCandidate(instruction: i, input: x)).reason }
        XCTAssertEqual(reason("Define it."), .tooShort)
        XCTAssertEqual(reason(String(repeating: "word ", count: 151)), .tooLong)
        XCTAssertEqual(reason("Summarise this abstract in a sentence.", String(repeating: "x ", count: 401)), .tooLong)
        XCTAssertEqual(reason("Draw the signalling pathway described in the abstract."), .banned)
        XCTAssertEqual(reason("Look at the attached figure and describe the trend."), .banned)
        XCTAssertEqual(reason("Describe what the Kaplan-Meier plots of the trial show."), .banned, "plurals too")
        XCTAssertEqual(reason("Summarise the paper at https://example.org/paper for a clinician."), .banned)
        XCTAssertEqual(reason("Write a program that parses MEDLINE records."), .banned)
        XCTAssertEqual(reason("1) Summarise the main finding of the trial."), .banned, "starts with punctuation or a digit")
        XCTAssertNil(reason("Explain the mechanism of action of metformin in simple words."))
        XCTAssertEqual(reason("explain the mechanism of   action of metformin in simple words."), .duplicate)
        XCTAssertEqual(reason("Explain the mechanism of action of metformin in simple words!"), .nearDuplicate)
        XCTAssertEqual(reason("List all the adverse events mentioned in the passage, one per line.", "Nausea and headache were reported by 12 patients."), .similar)
        let kept = f.check(InstructionCandidate(instruction: "Which gene is most often mutated in cystic fibrosis?", input: ""))
        XCTAssertNil(kept.reason)
        XCTAssertLessThan(kept.rougeL, 0.7)
        XCTAssertEqual(f.pool, 3)
    }

    /// Real SmolLM2-135M instructions from the 5,000-example run (2026-11-27) that a hand review
    /// found were not tasks: assistant talk, the brainstorm prompt's own requirements, and
    /// questions about a passage that is not there; and good tasks the same filters must keep.
    func testAssistantTalkPromptEchoAndMissingInput() {
        var f = InstructionFilter()
        func reason(_ i: String, _ x: String = "") -> FilterReason? { f.check(InstructionCandidate(instruction: i, input: x)).reason }
        XCTAssertEqual(reason("Sure! You're ready to demonstrate your expertise! What task would you like to run?"), .assistantTalk)
        XCTAssertEqual(reason("I'm here to assist you with your medical tasks today."), .assistantTalk)
        XCTAssertEqual(reason("Share details with the human compassion AI assistant SmolLM about dosing."), .assistantTalk)
        XCTAssertEqual(reason("When a task needs an input, write a realistic, self-contained input of up to 150 words."), .copiesPrompt)
        XCTAssertEqual(reason("Come up with new tasks about statins and liver enzymes."), .copiesPrompt)
        XCTAssertEqual(reason("Read the passage and tell me the meaning of the word \"prima facia.\""), .missingInput)
        XCTAssertEqual(reason("Summarise the following abstract in two sentences."), .missingInput)
        XCTAssertEqual(reason("Which drug did this study find most effective?"), .missingInput)
        // Good tasks: generic uses of the same words, text given inline, an input given.
        for good in ["Explain how a physician assistant should triage acute chest pain.",
                     "Which foods can help you with iron deficiency anaemia?",
                     "Which devices can assist you in monitoring blood glucose at home?",
                     "Explain how a large language model can extract drug names from clinical notes.",
                     "Come up with a differential diagnosis for a 45-year-old man with painless jaundice.",
                     "Describe the study designs used to establish causation in epidemiology.",
                     "What did the study by Doll and Hill show about smoking and lung cancer?",
                     "How should the abstract of a randomised trial report be structured according to CONSORT?",
                     "Explain what the input and output of a BLAST search are.",
                     "Summarise the following abstract: Statins lowered LDL cholesterol by 40% in 2,000 adults over five years.",
                     "What is the case fatality rate of untreated pneumonic plague?",
                     "Which gene is most often mutated in cystic fibrosis?"] {
            XCTAssertNil(reason(good), good)
        }
        XCTAssertNil(reason("Summarise the abstract in two sentences.", "Statins lowered LDL cholesterol by 40% in 2,000 adults over five years."))
        // "<noinput>." is no input, not a copy of the prompt's "<noinput>".
        XCTAssertEqual(BrainstormParser.parse("Instruction: Name a loop diuretic.\nInput: <noinput>.").candidates,
                       [InstructionCandidate(instruction: "Name a loop diuretic.", input: "")])
    }

    // MARK: Response filters

    func testResponseFilterReasons() {
        let f = ResponseFilter()
        let passage = "Allopurinol lowers serum urate by inhibiting xanthine oxidase, the enzyme that converts hypoxanthine to xanthine and xanthine to uric acid in the purine degradation pathway of humans."
        func reason(_ text: String, _ finish: FinishReason = .stop) -> FilterReason? { f.check(Completion(text: text, finishReason: finish), passages: [passage]) }
        XCTAssertEqual(f.check(.failed("HTTP 500"), passages: []), .backendError)
        XCTAssertEqual(reason("  \n "), .emptyResponse)
        XCTAssertEqual(reason("..."), .emptyResponse)
        XCTAssertEqual(reason("Xanthine oxidase is the enzyme", .length), .truncated)
        XCTAssertEqual(reason("I'm sorry, but I cannot provide medical advice."), .refusal)
        XCTAssertEqual(reason("As an AI language model I do not know."), .refusal)
        // A real SmolLM2-135M reply (llama.cpp server, chat template) that restates its system prompt.
        XCTAssertEqual(reason("You are a helpful AI assistant named SmolLM, trained to provide accurate and concise responses."), .echo)
        // A real SmolLM2 response (the main job, 2026-11-26) that only restates its instruction.
        let task = ["Task 4 is an example of how additional task details can be tailored to the task itself.", ""]
        XCTAssertEqual(f.check(Completion(text: "Task 4 is an example of how additional task details can be tailored to the task itself.",
                                          finishReason: .stop), passages: [passage], task: task), .echo)
        XCTAssertEqual(f.check(Completion(text: "Which enzyme? Xanthine oxidase", finishReason: .stop), passages: [],
                               task: ["Which enzyme?", "Xanthine oxidase"]), .echo)
        XCTAssertNil(f.check(Completion(text: "Task 4 asks for details; xanthine oxidase is the enzyme.", finishReason: .stop),
                             passages: [passage], task: task))
        XCTAssertEqual(reason(String(repeating: "the drug lowers urate and ", count: 8)), .repetition)
        XCTAssertEqual(reason("Answer: yes\nThe result is significant.\nThe result is significant.\nThe result is significant."), .repetition)
        XCTAssertEqual(reason("As the passage says, " + passage), .copiesPassage)
        XCTAssertNil(reason("Xanthine oxidase. Allopurinol inhibits it, which lowers the production of uric acid [PMID 123]."))
        XCTAssertNil(reason("Allopurinol inhibits xanthine oxidase, so less hypoxanthine and xanthine become uric acid; serum urate falls, which prevents gout flares over time in most treated patients."))
    }

    /// Real responses from the 5,000-example run and the 2026-11-27 review that restate the task
    /// or reproduce a demonstration (a stock answer to a question nobody asked); and right answers
    /// that look like them and must stay.
    func testResponseRestatementsAndStockAnswers() {
        let f = ResponseFilter()
        func reason(_ text: String, _ task: [String], demos: [Seed] = []) -> FilterReason? {
            f.check(Completion(text: text, finishReason: .stop), passages: [], task: task, demonstrations: demos)
        }
        XCTAssertEqual(reason("The most common diseases or adverse conditions mentioned in the passage.",
                              ["Identify the most common diseases or adverse conditions mentioned in the passage.", ""]), .echo)
        let extract = ["Extract all gene and protein names from the passage.",
                       "Overexpression of HER2 was associated with shorter survival, whereas loss of PTEN predicted resistance to trastuzumab."]
        XCTAssertEqual(reason(extract[1], extract), .echo, "the input copied back")
        XCTAssertNil(reason("HER2, PTEN", extract))
        XCTAssertNil(reason("The genes are HER2 and PTEN; trastuzumab targets the HER2 protein.", extract))
        XCTAssertNil(reason("Penicillin, amoxicillin, tetracycline", ["List the antibiotics.", "Patients took penicillin, then amoxicillin or tetracycline for 10 days after surgery."]),
                     "a short extraction is not an echo")
        // Answers that restate a question or the input rightly.
        XCTAssertNil(reason("Metformin is contraindicated in severe renal impairment.", ["Is metformin contraindicated in severe renal impairment?", ""]))
        XCTAssertNil(reason("Aspirin irreversibly inhibits COX-1.", ["Does aspirin irreversibly inhibit COX-1?", ""]))
        XCTAssertNil(reason("True: statins lower LDL cholesterol.", ["True or false: statins lower LDL cholesterol.", ""]))
        XCTAssertNil(reason("Furosemide is a loop diuretic.", ["Which of the following is a loop diuretic: furosemide, metoprolol, amlodipine?", ""]))
        XCTAssertNil(reason("The patient was given 5 mg of warfarin daily and the INR was checked weekly.",
                            ["Correct the grammar of the sentence.", "The patient were given 5 mg of warfarin daily and the INR were checked weekly."]))
        XCTAssertNil(reason("[Warfarin] and [aspirin] were stopped before surgery, and [heparin] was started at admission.",
                            ["Put square brackets around every drug name.", "Warfarin and aspirin were stopped before surgery, and heparin was started at admission."]))
        let seed = Seed(task: "re_drug_drug", instruction: "Explain in one sentence why the two drugs interact.",
                        input: "Drug 1: clopidogrel\nDrug 2: omeprazole",
                        output: "Omeprazole inhibits CYP2C19, which is needed to convert clopidogrel into its active metabolite, so the combination can reduce clopidogrel's antiplatelet effect.")
        let stock = "The two drugs interact by inhibiting CYP2C19, which is needed to convert clopidogrel into its active metabolite, and by inhibiting CYP2C19, which is needed to convert clopidogrel into its active metabolite."
        XCTAssertEqual(reason(stock, ["When designing an AI tool, plan a diverse set of instructions.", ""], demos: [seed]), .copiesDemonstration)
        XCTAssertNil(reason(stock, ["When designing an AI tool, plan a diverse set of instructions.", ""]), "no demonstrations given")
        XCTAssertNil(reason(seed.output, ["Why can omeprazole weaken clopidogrel?", ""], demos: [seed]), "the right answer about the same drugs")
        XCTAssertNil(reason("Omeprazole inhibits CYP2C19.", ["Which enzyme does omeprazole inhibit?", ""], demos: [seed]), "under 6 words")
        XCTAssertNil(reason("Rifampicin induces CYP3A4, which lowers the levels of many drugs such as oral contraceptives.",
                            ["Why does rifampicin reduce contraceptive efficacy?", ""], demos: [seed]))
        // A demonstration's input reproduced as the answer to an unrelated task.
        let croup = Seed(task: "inference", instruction: "Does the premise entail the hypothesis?",
                         input: "Premise: The child has a barking cough and inspiratory stridor that worsen at night.\nHypothesis: The child may have croup.",
                         output: "entailment")
        XCTAssertEqual(reason("The child has a barking cough and inspiratory stridor that worsen at night.",
                              ["List three vaccines given to adults over 65.", ""], demos: [croup]), .copiesDemonstration)
    }

    // MARK: Contamination

    func testContaminationAgainstRealEvaluationFiles() throws {
        var index = ContaminationIndex()
        try index.addFile(Paths.data("pubmedqa/pqal_dev.json"))
        try index.addFile(Paths.data("medmcqa/medmcqa_dev.json"))
        try index.addFile(Paths.data("gad/dev.jsonl"))
        try index.addFile(Paths.data("ner/NCBI-disease/devel.tsv"))
        XCTAssertGreaterThan(index.count, 100_000)
        let pqa = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Paths.data("pubmedqa/pqal_dev.json")))) as! [String: [String: Any]]
        let context = (pqa["10808977"]!["CONTEXTS"] as! [String])[0]
        let words = context.split(separator: " ")
        // 13 consecutive words of an evaluation abstract, embedded in new text, are caught…
        XCTAssertTrue(index.overlaps("In our view, " + words[5..<18].joined(separator: " ") + " was the key point."))
        // …12 are not (n = 13), nor are our own seeds.
        XCTAssertFalse(index.overlaps("In our view, " + words[5..<17].joined(separator: " ") + " was the key point."))
        let seeds = try SeedLoader.load(path: Paths.seeds)
        XCTAssertEqual(seeds.filter { index.overlaps($0.instruction + "\n" + $0.input) }.count, 0)
        // NER tokens are joined into sentences; GAD texts and MCQ options are indexed.
        XCTAssertTrue(index.overlaps("We know that germline mutations in BRCA1 are responsible for most cases of inherited breast and ovarian cancer in these families."))
        // n-grams do not span two sentences of the NER file.
        XCTAssertFalse(index.overlaps("BRCA1 is secreted and exhibits properties of a granin . Germline mutations in BRCA1 are responsible"))
        let gadFirst = "Together, our findings suggest that the presence of @GENE$ gene polymorphisms may be inconclusive in the susceptibility to MS"
        XCTAssertTrue(index.overlaps(gadFirst))
        XCTAssertThrowsError(try index.addFile(writeTemp("{\"a\": 1}\n{bad\n", "contam"))) {
            XCTAssertEqual(($0 as? GeneratorError).map { if case .badJSON(_, 2, _) = $0 { return true } else { return false } }, true)
        }
    }

    // MARK: SHA-256

    func testSHA256KnownAnswersAndModelFile() throws {
        func hex(_ s: String) -> String { var h = SHA256(); h.update(Data(s.utf8)); return h.finalizeHex() }
        XCTAssertEqual(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(hex(String(repeating: "a", count: 1_000_000)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // The model file against the set-up manifest.
        let manifest = try String(contentsOf: Paths.repo.appendingPathComponent("corpora/manifest.tsv"), encoding: .utf8)
        let row = try XCTUnwrap(manifest.split(separator: "\n").first { $0.contains("models/SmolLM2-135M-Instruct.Q4_1.gguf") })
        let expected = String(row.split(separator: "\t").last!)
        let model = Paths.repo.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        XCTAssertEqual(try SHA256.hexDigest(ofFile: model), expected)
    }
}
