import XCTest
@testable import LLM
@testable import Tensor
@testable import Tuner

/// Tiny real runs on the seed tasks: exact resume after an interruption, divergence handling.
final class TrainerTests: XCTestCase {
    func options(_ tmp: TemporaryDirectory) throws -> TrainOptions {
        var o = TrainOptions(modelPath: try TestPaths.smolLM2Path(),
                             dataPath: TestPaths.repoRoot.appendingPathComponent("corpora/seeds/biomedical.jsonl").path)
        o.steps = 4; o.batchSize = 1; o.maxLength = 112; o.warmupSteps = 1; o.learningRate = 1e-3
        o.validationFraction = 0.05; o.evalEvery = 2; o.checkpointEvery = 2; o.gradAccumulation = 2
        return o
    }

    func losses(_ run: URL) throws -> [StepRecord] {
        try String(contentsOf: run.appendingPathComponent("log.jsonl"), encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(StepRecord.self, from: Data($0.utf8)) }
    }

    func testInterruptedAndResumedRunEqualsUninterrupted() throws {
        let tmp = try TemporaryDirectory(self), base = try SharedModel.load()
        let o = try options(tmp)
        let straight = tmp.file("straight"), resumed = tmp.file("resumed")
        let (a, split) = try TuneRun.prepare(options: o, runDirectory: straight, resume: false, base: base)
        print("examples: \(split.trainExamples) train, \(split.validationExamples) held out, \(split.skipped) skipped")
        XCTAssertGreaterThan(split.trainExamples, 8)
        XCTAssertGreaterThan(split.validationExamples, 0)
        XCTAssertEqual(try a.run { _ in .more }.stepsDone, 4)

        // Interrupted after step 1 (as Ctrl-C): a checkpoint is written at once.
        let (b, _) = try TuneRun.prepare(options: o, runDirectory: resumed, resume: false, base: base)
        let stopped = try b.run { event in if case .step(let r, _) = event, r.step == 1 { return .stop }; return .more }
        XCTAssertTrue(stopped.interrupted)
        XCTAssertEqual(stopped.stepsDone, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: resumed.appendingPathComponent("checkpoints/step-000001/adapter.safetensors").path))
        XCTAssertThrowsError(try TuneRun.prepare(options: o, runDirectory: resumed, resume: false, base: base),
                             "a new run must not overwrite an existing one")
        let (c, info) = try TuneRun.prepare(options: o, runDirectory: resumed, resume: true, base: base)
        XCTAssertEqual(info.resumedFromStep, 1)
        XCTAssertEqual(try c.run { _ in .more }.stepsDone, 4)

        let x = try losses(straight), y = try losses(resumed)
        print("uninterrupted \(x.map(\.loss)) val \(x.compactMap(\.validationLoss))")
        print("resumed       \(y.map(\.loss)) val \(y.compactMap(\.validationLoss))")
        XCTAssertEqual(x.map(\.step), [1, 2, 3, 4])
        XCTAssertEqual(y.map(\.step), [1, 2, 3, 4])
        XCTAssertEqual(x.map(\.loss), y.map(\.loss), "resumed loss curve must equal the uninterrupted one exactly")
        XCTAssertEqual(x.map(\.validationLoss), y.map(\.validationLoss))
        XCTAssertEqual(x.map(\.learningRate), y.map(\.learningRate))

        // Killed before its first checkpoint (config written, a torn log line): --resume starts over at step 0.
        let early = tmp.file("early")
        _ = try TuneRun.prepare(options: o, runDirectory: early, resume: false, base: base)
        try Data("{\"step\":1,\"lo".utf8).write(to: early.appendingPathComponent("log.jsonl"))
        let (d, restarted) = try TuneRun.prepare(options: o, runDirectory: early, resume: true, base: base)
        XCTAssertEqual(restarted.resumedFromStep, 0)
        XCTAssertEqual(try d.run { _ in .more }.stepsDone, 4)
        XCTAssertEqual(try losses(early).map(\.loss), x.map(\.loss), "a restart from step 0 is the same run")
        XCTAssertNotNil(x[1].validationLoss)
        for name in ["config.json", "loss.svg", "checkpoints/step-000004/optimizer.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: straight.appendingPathComponent(name).path), name)
        }
        let svg = try String(contentsOf: straight.appendingPathComponent("loss.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("<polyline"))
    }

    func testDivergenceStopsAndKeepsLastGoodCheckpoint() throws {
        let tmp = try TemporaryDirectory(self), base = try SharedModel.load()
        var o = try options(tmp)
        o.steps = 6; o.learningRate = 5; o.minLearningRate = 5; o.warmupSteps = 0; o.clipNorm = 0
        o.checkpointEvery = 1; o.explodeFactor = 1.5; o.validationFraction = 0; o.gradAccumulation = 1
        let run = tmp.file("run")
        let (t, _) = try TuneRun.prepare(options: o, runDirectory: run, resume: false, base: base)
        var seen = 0
        XCTAssertThrowsError(try t.run { event in if case .step = event { seen += 1 }; return .more }) { error in
            guard case TunerError.divergedLoss(let step, let loss, let last) = error else { return XCTFail("\(error)") }
            print("diverged at step \(step), loss \(loss), kept \(last ?? "-")")
            XCTAssertEqual(step, seen + 1)
            XCTAssertTrue(!loss.isFinite || loss > 1.5 * (try! self.losses(run)).first!.loss)
            let expected = run.appendingPathComponent(String(format: "checkpoints/step-%06d", seen)).path
            XCTAssertEqual(last, expected)
            XCTAssertTrue(FileManager.default.fileExists(atPath: expected + "/adapter.safetensors"))
            XCTAssertTrue(error.localizedDescription.contains("last good checkpoint kept at \(expected)"))
        }
    }

    func testLearningRateSchedule() throws {
        var o = TrainOptions(modelPath: "m", dataPath: "d")
        o.steps = 110; o.warmupSteps = 10; o.learningRate = 1e-3; o.minLearningRate = 1e-4
        XCTAssertEqual(o.learningRate(at: 1), 1e-4, accuracy: 1e-9)
        XCTAssertEqual(o.learningRate(at: 10), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(o.learningRate(at: 60), 5.5e-4, accuracy: 1e-8)
        XCTAssertEqual(o.learningRate(at: 110), 1e-4, accuracy: 1e-9)
        o.lora.dropout = 0.1
        XCTAssertNoThrow(try o.validate())
        o.lora.dropout = 1
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("lora-dropout"), "\($0)") }
    }
}
