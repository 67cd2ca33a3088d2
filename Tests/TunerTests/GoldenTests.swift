import XCTest
@testable import Tuner

/// The training forward/backward and AdamW against `Tests/Fixtures/golden/smollm2_lora_golden.json`
/// (PEFT on the same GGUF dequantized to float32, same closed-form LoRA init).
final class GoldenTests: XCTestCase {
    func testLossGradientNormsAndAdamWTrajectory() throws {
        try checkLoRAGolden(try SharedModel.load(), try TestPaths.json("smollm2_lora_golden.json"), label: "smollm2")
    }
}

/// Checks the training forward/backward and AdamW of `base` against a PEFT LoRA golden file
/// (`*_lora_golden.json`: the closed-form init, the loss within 1e-3, every LoRA gradient norm
/// within 1% relative or 1e-6 absolute, the 5-step AdamW loss trajectory within 1e-2), printing
/// the differences under `label`.
func checkLoRAGolden(_ base: BaseModel, _ golden: [String: Any], label: String) throws {
    let ids = try XCTUnwrap(golden["ids"] as? [Int]).map(Int32.init)
    let labels = try XCTUnwrap(golden["labels"] as? [Int])
    let loraInfo = try XCTUnwrap(golden["lora"] as? [String: Any])
    let config = LoRAConfig(rank: try XCTUnwrap(loraInfo["r"] as? Int),
                            alpha: Float(try XCTUnwrap(loraInfo["alpha"] as? Double)))
    let lora = LoRAParameters(config: config, model: base.config)
    lora.initializeClosedForm()
    let t = ids.count
    // Hugging Face shifts inside the loss: the logits at t predict label t+1.
    let targets = (0..<t).map { $0 + 1 < t ? Int32(labels[$0 + 1]) : Ops.ignoreIndex }
    let model = TrainingModel(base: base, lora: lora, maxBatch: 1, maxTime: t)

    // Loss and gradient norms.
    let (sum, count) = model.forward(tokens: ids, targets: targets, batch: 1, time: t)
    let loss = sum / Double(count)
    let goldenLoss = try XCTUnwrap(golden["loss"] as? Double)
    print("\(label) golden loss \(goldenLoss), ours \(loss), |diff| \(abs(loss - goldenLoss))")
    XCTAssertEqual(loss, goldenLoss, accuracy: 1e-3)
    lora.zeroGrads()
    model.backward(lossScale: 1 / Float(count))
    let norms = try XCTUnwrap(golden["grad_norms"] as? [String: Double])
    XCTAssertEqual(norms.count, lora.slots.count * 2)
    var worst = (name: "", relative: 0.0, ours: 0.0, theirs: 0.0), total = 0.0
    for slot in lora.slots {
        for isB in [false, true] {
            let name = LoRAParameters.peftName(layer: slot.layer, target: slot.target, isB: isB)
            let theirs = try XCTUnwrap(norms[name], "golden lacks \(name)")
            let offset = isB ? slot.offsetB : slot.offsetA, size = isB ? slot.outF * config.rank : config.rank * slot.inF
            let ours = (offset..<(offset + size)).reduce(0.0) { $0 + Double(lora.grads[$1]) * Double(lora.grads[$1]) }.squareRoot()
            total += ours * ours
            let diff = abs(ours - theirs)
            XCTAssert(diff <= 1e-6 || diff <= 0.01 * theirs, "\(name): ours \(ours), golden \(theirs)")
            let relative = diff <= 1e-6 ? 0 : diff / max(theirs, 1e-12)
            if relative >= worst.relative { worst = (name, relative, ours, theirs) }
        }
    }
    print("\(label) worst gradient norm: \(worst.name) ours \(worst.ours) golden \(worst.theirs) relative \(worst.relative)")
    let goldenTotal = try XCTUnwrap(golden["grad_norm_total"] as? Double)
    print("\(label) total gradient norm ours \(total.squareRoot()) golden \(goldenTotal)")
    XCTAssertEqual(total.squareRoot(), goldenTotal, accuracy: 0.01 * goldenTotal)

    // Five full-batch AdamW steps.
    let hp = try XCTUnwrap(golden["adamw"] as? [String: Any])
    let betas = try XCTUnwrap(hp["betas"] as? [Double])
    var adam = AdamW(count: lora.count, hyper: .init(beta1: Float(betas[0]), beta2: Float(betas[1]),
                                                      eps: Float(try XCTUnwrap(hp["eps"] as? Double)),
                                                      weightDecay: Float(try XCTUnwrap(hp["weight_decay"] as? Double))))
    let lr = Float(try XCTUnwrap(hp["lr"] as? Double))
    let trajectory = try XCTUnwrap(golden["loss_trajectory_5"] as? [Double])
    var ours = [loss], worstStep = 0.0
    adam.update(params: lora.values, grads: UnsafeBufferPointer(lora.grads), lr: lr)
    for step in 1..<trajectory.count {
        let (s, n) = model.forward(tokens: ids, targets: targets, batch: 1, time: t)
        ours.append(s / Double(n))
        guard step + 1 < trajectory.count else { break }   // the last loss needs no update after it
        lora.zeroGrads()
        model.backward(lossScale: 1 / Float(n))
        adam.update(params: lora.values, grads: UnsafeBufferPointer(lora.grads), lr: lr)
    }
    for (a, b) in zip(ours, trajectory) { worstStep = max(worstStep, abs(a - b)) }
    print("\(label) AdamW trajectory ours \(ours.map { Float($0) }) golden \(trajectory) max |diff| \(worstStep)")
    XCTAssertLessThanOrEqual(worstStep, 1e-2)
    XCTAssertLessThan(ours.last!, ours.first!, "the loss must fall on one repeated example")
}
