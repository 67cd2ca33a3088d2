import XCTest
@testable import Tuner

/// LoRA dropout: the counter-based mask op, and the whole model's gradient with dropout on
/// (checked by a central difference along the gradient direction on the real SmolLM2).
final class DropoutTests: XCTestCase {
    func testMaskIsReproducibleKeepsTheRightShareAndScales() {
        let n = 200_000, p: Float = 0.25
        let x = [Float](repeating: 1, count: n)
        var a = [Float](repeating: 0, count: n), b = a, c = a
        Ops.dropout(out: &a, inp: x, count: n, p: p, key: 7)
        Ops.dropout(out: &b, inp: x, count: n, p: p, key: 7)
        Ops.dropout(out: &c, inp: x, count: n, p: p, key: 8)
        XCTAssertEqual(a, b, "same key, same mask")
        XCTAssertNotEqual(a, c, "another key, another mask")
        let kept = a.filter { $0 != 0 }
        let share = Double(kept.count) / Double(n), mean = a.reduce(0, +) / Float(n)
        print(String(format: "dropout p=0.25: kept %.4f (expected 0.75), mean %.4f (expected 1)", share, mean))
        XCTAssertEqual(share, 0.75, accuracy: 0.005)
        XCTAssertTrue(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 }, "kept elements are scaled by 1/(1-p)")
        XCTAssertEqual(mean, 1, accuracy: 0.01)
        // In place, and p = 0 is the identity.
        Ops.dropout(out: &b, inp: b, count: n, p: p, key: 7)
        XCTAssertEqual(b.filter { $0 != 0 }.count, kept.count)
        Ops.dropout(out: &c, inp: x, count: n, p: 0, key: 9)
        XCTAssertEqual(c, x)
    }

    func testModelGradientWithDropoutMatchesFiniteDifference() throws {
        let base = try SharedModel.load()
        let lora = LoRAParameters(config: LoRAConfig(rank: 4, alpha: 8, dropout: 0.2), model: base.config)
        lora.initializeClosedForm()
        let t = 24
        let ids = (0..<t).map { Int32(($0 * 977 + 13) % 5000 + 100) }
        let targets = (0..<t).map { $0 + 1 < t ? ids[$0 + 1] : Ops.ignoreIndex }
        let model = TrainingModel(base: base, lora: lora, maxBatch: 1, maxTime: t)
        func loss() -> Double {
            let (sum, count) = model.forward(tokens: ids, targets: targets, batch: 1, time: t)
            return sum / Double(count)
        }
        model.dropoutKey = nil
        let clean = loss()
        model.dropoutKey = 1234
        let dropped = loss()
        print("loss without dropout \(clean), with dropout \(dropped)")
        XCTAssertNotEqual(clean, dropped, "dropout changes the branch")
        XCTAssertEqual(loss(), dropped, "the same key gives the same masks")

        lora.zeroGrads()
        _ = model.forward(tokens: ids, targets: targets, batch: 1, time: t)
        model.backward(lossScale: 1 / Float(t - 1))
        let g = Array(lora.grads)
        let norm = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        XCTAssertGreaterThan(norm, 0)
        // d/dε L(θ + ε·g/|g|) at 0 equals |g|.
        let theta = Array(lora.values), eps = 2e-3
        func shifted(_ e: Double) -> Double {
            for i in theta.indices { lora.values[i] = theta[i] + Float(e * Double(g[i]) / norm) }
            return loss()
        }
        let numeric = (shifted(eps) - shifted(-eps)) / (2 * eps)
        for i in theta.indices { lora.values[i] = theta[i] }
        let relative = abs(numeric - norm) / norm
        print("directional derivative with dropout: analytic \(norm), numeric \(numeric), relative error \(relative)")
        XCTAssertLessThan(relative, 2e-2)
    }
}
