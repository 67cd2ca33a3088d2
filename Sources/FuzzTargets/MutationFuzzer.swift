import Foundation
import Tensor

/// A blind mutation fuzzer for the release build: it mutates the seeds (bit flips, random and
/// "interesting" bytes and integers, insertions, deletions, duplicated ranges, truncation, splices)
/// and runs each mutant through a ``FuzzHarness``, under Swift's own bounds and overflow checks.
/// It has no coverage guidance and no AddressSanitizer — that is `scripts/fuzz` with libFuzzer —
/// but it needs no sanitizer build, so CI can run every target for a few seconds.
///
/// ```swift
/// var fuzzer = MutationFuzzer(harness: harness, seeds: seeds, seed: 1)
/// let summary = try fuzzer.run(seconds: 5, lastInput: "/tmp/last") { input, failure in … }
/// ```
/// Before each input runs it is written to `lastInput` (when given), so that a crash — which ends
/// the process — leaves the input that caused it behind; the file is removed after a clean run.
public struct MutationFuzzer {
    public let harness: FuzzHarness
    /// What mutants are made from: the seeds and, as the run goes, some accepted mutants.
    public private(set) var pool: [[UInt8]]
    private var rng: SplitMix64
    /// Mutants are cut to this length.
    public var maxLength = 1 << 16
    /// Inputs slower than this are failures (libFuzzer's `-timeout=1` in `scripts/fuzz`).
    public var slowSeconds = 1.0

    /// Counts of one run.
    public struct Summary: Sendable, Equatable {
        public var executions = 0, accepted = 0, refused = 0, failures = 0, slow = 0
        public var seconds = 0.0
    }

    public init(harness: FuzzHarness, seeds: [Data], seed: UInt64) {
        self.harness = harness
        pool = seeds.map { Array($0) }
        if pool.isEmpty { pool = [[]] }
        rng = SplitMix64(seed: seed)
    }

    /// Runs mutants for `seconds` (or `executions` inputs, whichever comes first).
    /// - Parameter failed: called with each input that threw a ``FuzzFailure`` or ran too long.
    public mutating func run(seconds: Double, executions: Int = .max, lastInput: String? = nil,
                             failed: (Data, String) -> Void) -> Summary {
        var summary = Summary()
        let start = Date()
        while summary.executions < executions && Date().timeIntervalSince(start) < seconds {
            let input = Data(mutant())
            if let lastInput { try? input.write(to: URL(fileURLWithPath: lastInput)) }
            let t0 = Date()
            summary.executions += 1
            do {
                switch try harness.run(input) {
                case .accepted:
                    summary.accepted += 1
                    // Accepted mutants reach deeper into the parser: keep some to mutate further.
                    if pool.count < 4096 && rng.next() % 8 == 0 { pool.append(Array(input)) }
                case .refused: summary.refused += 1
                }
            } catch {
                summary.failures += 1
                failed(input, "\(error)")
            }
            let took = Date().timeIntervalSince(t0)
            if took > slowSeconds {
                summary.slow += 1
                failed(input, String(format: "slow: %.2f s for one input", took))
            }
        }
        if let lastInput { unlink(lastInput) }
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }

    /// One seed with 1-5 mutations stacked.
    public mutating func mutant() -> [UInt8] {
        var bytes = pool[Int(rng.next() % UInt64(pool.count))]
        for _ in 0..<(1 + Int(rng.next() % 5)) { mutate(&bytes) }
        if bytes.count > maxLength { bytes.removeLast(bytes.count - maxLength) }
        return bytes
    }

    private static let interesting8: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x22, 0x3C, 0x3E, 0x7B, 0x7D, 0x5B, 0x5D]
    private static let interesting64: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000,
                                                  0xFFFF_FFFF, 1 << 32, 1 << 40, 0x7FFF_FFFF_FFFF_FFFF, .max, 1_000_000_000_000]

    private mutating func index(_ count: Int) -> Int { count == 0 ? 0 : Int(rng.next() % UInt64(count)) }

    private mutating func mutate(_ b: inout [UInt8]) {
        switch rng.next() % 10 {
        case 0 where !b.isEmpty:  // flip a bit
            let i = index(b.count)
            b[i] ^= 1 << UInt8(rng.next() % 8)
        case 1 where !b.isEmpty:  // a random byte
            b[index(b.count)] = UInt8(truncatingIfNeeded: rng.next())
        case 2 where !b.isEmpty:  // an interesting byte
            b[index(b.count)] = Self.interesting8[index(Self.interesting8.count)]
        case 3 where b.count >= 8:  // an interesting little-endian integer of 1, 2, 4 or 8 bytes (lengths, counts, offsets)
            let width = [1, 2, 4, 8][index(4)]
            let value = Self.interesting64[index(Self.interesting64.count)] &+ UInt64(bitPattern: Int64(Int(rng.next() % 3) - 1))
            let at = index(b.count - width + 1)
            for k in 0..<width { b[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
        case 4:  // insert random bytes
            let n = 1 + index(16)
            b.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: index(b.count + 1))
        case 5 where !b.isEmpty:  // delete a range
            let at = index(b.count)
            b.removeSubrange(at..<min(b.count, at + 1 + index(32)))
        case 6 where !b.isEmpty:  // duplicate a range somewhere else
            let at = index(b.count)
            let range = Array(b[at..<min(b.count, at + 1 + index(64))])
            b.insert(contentsOf: range, at: index(b.count + 1))
        case 7 where !b.isEmpty:  // truncate
            b.removeLast(b.count - index(b.count))
        case 8:  // splice with another pool entry
            let other = pool[index(pool.count)]
            guard !other.isEmpty else { return }
            let from = index(other.count)
            let piece = other[from..<min(other.count, from + 1 + index(256))]
            let at = index(b.count + 1)
            b.replaceSubrange(at..<min(b.count, at + piece.count), with: piece)
        default:  // repeat a byte many times (long names, deep nesting)
            let byte = b.isEmpty ? Self.interesting8[index(Self.interesting8.count)] : b[index(b.count)]
            b.insert(contentsOf: repeatElement(byte, count: 1 + index(1024)), at: index(b.count + 1))
        }
    }
}
