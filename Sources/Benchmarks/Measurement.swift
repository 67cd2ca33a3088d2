import Foundation
import VectorIndex

/// Clocks, memory and recall, as every benchmark measures them.
enum Measure {
    /// Wall seconds of `body`.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Wall and CPU seconds (all threads of the process) of `body`.
    static func wallAndCPU(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
        func cpuNow() -> Double {
            var u = rusage()
            getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
            return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
        }
        let start = DispatchTime.now().uptimeNanoseconds, cpu = cpuNow()
        try body()
        return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, cpuNow() - cpu)
    }

    /// Peak resident set size of this process, in MB.
    static var peakRSSMB: Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// `x` rounded to 1/`digits`.
    static func round(_ x: Double, _ digits: Double = 1000) -> Double { (x * digits).rounded() / digits }

    /// Fraction of the true top-k ids found, averaged over queries.
    static func recall(_ found: [[ScoredID]], truth: [[ScoredID]]) -> Double {
        var hit = 0, total = 0
        for (f, t) in zip(found, truth) {
            let want = Set(t.map(\.id))
            hit += f.filter { want.contains($0.id) }.count
            total += t.count
        }
        return Double(hit) / Double(max(total, 1))
    }
}

/// Raw little-endian float32 vector files, row-major (N, D), as numpy's `tofile` writes them
/// (the retrieval benchmarks' exchange format with their peers).
public enum VectorFile {
    /// Reads an (N, D) float32 file.
    /// - Throws: `BenchmarkError` when the file cannot be read or is not whole rows of `dimension`.
    public static func read(_ path: String, dimension d: Int) throws -> [Float] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw BenchmarkError.unreadable(file: path, reason: (error as NSError).localizedDescription)
        }
        guard data.count % (4 * d) == 0 else { throw BenchmarkError.partialRows(file: path, bytes: data.count, dimension: d) }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Writes the raw bytes of `values` (an (N, D) float32 or (Q, k) int64 array) to `path`.
    public static func write<T>(_ values: [T], to path: String) throws {
        try values.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
    }
}
