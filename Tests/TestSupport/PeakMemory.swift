import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The process's peak resident set size in MB: `VmHWM` of /proc/self/status, which
/// ``resetPeakResident()`` can lower to the current RSS, so that a peak measured around one call
/// is that call's own; `getrusage`'s `ru_maxrss` (never reset) where /proc is missing.
public func peakResidentMB() -> Double {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kb = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") {
        return kb / 1024
    }
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024  // Linux reports kilobytes
}

/// Resets the peak RSS to the current RSS (Linux ≥ 4.0: "5" to /proc/self/clear_refs).
/// - Returns: whether the reset worked; if not, a later peak includes earlier ones.
@discardableResult
public func resetPeakResident() -> Bool {
    let fd = open("/proc/self/clear_refs", O_WRONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return write(fd, "5", 1) == 1
}

/// How much an allocation bomb may raise the peak RSS: a reader must refuse the bomb before it
/// allocates what the file claims, so the only growth allowed is its bounded buffers and noise.
public let allocationBombLimitMB = 64.0

extension XCTestCase {
    /// Runs `body`, which must throw, and checks that it did so within `seconds` and without
    /// raising the peak RSS by more than ``allocationBombLimitMB``. Prints the figures.
    /// - Returns: the error thrown.
    @discardableResult
    public func assertBombRefused(_ label: String, seconds limit: Double = 1, file: StaticString = #filePath,
                                  line: UInt = #line, _ body: () throws -> Void) -> Error? {
        let reset = resetPeakResident()
        let before = peakResidentMB()
        let start = Date()
        var thrown: Error?
        do { try body() } catch { thrown = error }
        let seconds = Date().timeIntervalSince(start)
        let after = peakResidentMB()
        let message = (thrown as? LocalizedError)?.errorDescription ?? thrown.map { "\($0)" } ?? "no error"
        print(String(format: "bomb %@: %.1f ms, peak RSS %.1f -> %.1f MB (+%.1f%@): %@", label, seconds * 1000,
                     before, after, after - before, reset ? "" : ", peak not reset", message))
        XCTAssertNotNil(thrown, "\(label): the bomb was accepted", file: file, line: line)
        XCTAssertLessThan(after - before, allocationBombLimitMB, "\(label): peak RSS rose", file: file, line: line)
        XCTAssertLessThan(seconds, limit, "\(label): took too long to refuse", file: file, line: line)
        return thrown
    }
}
