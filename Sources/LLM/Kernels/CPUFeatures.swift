import Foundation

/// The x86 instruction sets the LLM kernels are compiled for (`Package.swift`: `-mavx -mfma
/// -mf16c`, deliberately not AVX2), checked once at run time so a CPU without them gets a clear
/// error instead of an illegal-instruction crash.
public enum CPUFeatures {
    /// Flags the kernels need.
    public static let required = ["avx", "fma", "f16c"]

    /// The required flags missing from `/proc/cpuinfo` (empty when all are present, or when the
    /// file cannot be read, e.g. on non-Linux systems where the build targets the host).
    public static let missing: [String] = {
        #if arch(x86_64) && os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        let flags = Set(line.split(separator: " ").map(String.init))
        return required.filter { !flags.contains($0) }
        #else
        return []
        #endif
    }()

    /// - Throws: `ModelError.missingCPUFeatures` when a required flag is missing.
    public static func check() throws {
        if !missing.isEmpty { throw ModelError.missingCPUFeatures(missing) }
    }
}
