import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The process's peak resident set size so far (`getrusage` `ru_maxrss`), in MB.
public func peakResidentMB() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024  // Linux reports kilobytes
}

/// How much an allocation bomb may raise the peak RSS: a reader must refuse the bomb before it
/// allocates what the file claims, so the only growth allowed is noise.
public let allocationBombLimitMB = 64.0

extension XCTestCase {
    /// Runs `body`, which must throw, and checks that it did so quickly and without raising the
    /// peak RSS by more than ``allocationBombLimitMB``. Prints the figures.
    /// - Returns: the error thrown.
    @discardableResult
    public func assertBombRefused(_ label: String, file: StaticString = #filePath, line: UInt = #line,
                                  _ body: () throws -> Void) -> Error? {
        let before = peakResidentMB()
        let start = Date()
        var thrown: Error?
        do { try body() } catch { thrown = error }
        let seconds = Date().timeIntervalSince(start)
        let after = peakResidentMB()
        let message = (thrown as? LocalizedError)?.errorDescription ?? thrown.map { "\($0)" } ?? "no error"
        print(String(format: "bomb %@: %.1f ms, peak RSS %.1f -> %.1f MB (+%.1f): %@",
                     label, seconds * 1000, before, after, after - before, message))
        XCTAssertNotNil(thrown, "\(label): the bomb was accepted", file: file, line: line)
        XCTAssertLessThan(after - before, allocationBombLimitMB, "\(label): peak RSS rose", file: file, line: line)
        XCTAssertLessThan(seconds, 1, "\(label): took too long to refuse", file: file, line: line)
        return thrown
    }
}
