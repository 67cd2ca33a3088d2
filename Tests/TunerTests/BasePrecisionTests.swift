import XCTest
@testable import Tuner

/// `--base-precision quantized`: the projections stay in the GGUF and are dequantized on use. The
/// dequantized values are the same floats, so loss and gradients must match the float32 base.
final class BasePrecisionTests: XCTestCase {
    func testQuantizedBaseMatchesFloat32BaseWithLessMemory() throws {
        let dense = try SharedModel.load()
        let quantized = try BaseModel(path: TestPaths.smolLM2Path(), precision: .quantized)
        print("base weights: float32 \(dense.byteCount >> 20) MiB, quantized \(quantized.byteCount >> 20) MiB + scratch \((quantized.scratchCount * 4) >> 10) KiB")
        XCTAssertLessThan(quantized.byteCount, dense.byteCount / 3)
        let t = 20
        let ids = (0..<t).map { Int32(($0 * 613 + 29) % 8000 + 50) }
        let targets = (0..<t).map { $0 + 1 < t ? ids[$0 + 1] : Ops.ignoreIndex }
        func run(_ base: BaseModel) -> (loss: Double, grads: [Float]) {
            let lora = LoRAParameters(config: LoRAConfig(), model: base.config)
            lora.initializeClosedForm()
            let model = TrainingModel(base: base, lora: lora, maxBatch: 1, maxTime: t)
            let (sum, count) = model.forward(tokens: ids, targets: targets, batch: 1, time: t)
            model.backward(lossScale: 1 / Float(count))
            return (sum / Double(count), Array(lora.grads))
        }
        let a = run(dense), b = run(quantized)
        let worst = zip(a.grads, b.grads).map { abs($0 - $1) }.max() ?? 0
        let largest = a.grads.map(abs).max() ?? 0
        print("loss float32 \(a.loss) quantized \(b.loss); max gradient difference \(worst) (largest gradient \(largest))")
        XCTAssertEqual(a.loss, b.loss, accuracy: 1e-5)
        XCTAssertGreaterThan(largest, 0)
        XCTAssertLessThanOrEqual(worst, 1e-5 * largest)
    }
}
