import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Set by the first Ctrl-C; long commands commit what they have and stop. A second Ctrl-C exits.
let interruptRequested = Atomic<Bool>(false)

enum Terminal {
    /// Installs the Ctrl-C (and SIGTERM) handler.
    static func trapInterrupts() {
        let handler: @convention(c) (Int32) -> Void = { sig in
            if interruptRequested.load(ordering: .relaxed) { _exit(130) }
            interruptRequested.store(true, ordering: .relaxed)
            let msg = "\nstopping after the current batch (Ctrl-C again to quit now)…\n"
            _ = msg.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }

    static func printJSON<T: Encodable>(_ value: T) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try enc.encode(value), as: UTF8.self))
    }
}

/// A one-line progress display with rate and ETA, redrawn at most 10 times a second on a
/// terminal (stderr) and silent in a pipe.
final class ProgressLine {
    private let enabled: Bool
    private let start = Date()
    private var last = Date.distantPast
    private var shown = false

    init(enabled: Bool) { self.enabled = enabled && Terminal.stderrIsTTY }

    /// - Parameters:
    ///   - fraction: done / total in 0...1 (for the ETA), or nil if unknown.
    ///   - count: items done so far; `unit` names them ("articles").
    func update(label: String, fraction: Double?, count: Int, unit: String, force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard force || now.timeIntervalSince(last) >= 0.1 else { return }
        last = now
        let elapsed = max(now.timeIntervalSince(start), 1e-3)
        let rate = Double(count) / elapsed
        var line = "\(label) \(count) \(unit) · " + (rate < 10 ? String(format: "%.2f/s", rate) : "\(Int(rate))/s")
        if let f = fraction, f > 0.001 {
            let eta = elapsed * (1 - f) / f
            line += String(format: " · %3.0f%% · ETA %@", f * 100, ProgressLine.duration(eta))
        }
        let width = 110
        if line.count > width { line = String(line.prefix(width)) }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        shown = true
    }

    /// Clears the line.
    func finish() {
        guard enabled, shown else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        shown = false
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(String(format: "%02d", (t % 3600) / 60))m" : t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
    }
}
