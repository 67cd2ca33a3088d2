import FuzzTargets
import Foundation

// Two builds of one file. `scripts/fuzz` builds it with `-sanitize=fuzzer,address -DFUZZING`:
// libFuzzer's driver (called from our `main`: SwiftPM renames an executable's entry point, so
// libFuzzer's own `main` is not the one that runs) feeds `LLVMFuzzerTestOneInput` for the target
// named by `SELFSPEC_FUZZ_TARGET`, and a `FuzzFailure` becomes a crash that libFuzzer reports and saves.
// The plain build is the replay tool: `selfspec-fuzz TARGET FILE_OR_DIR...` runs every input
// once and lists the failures (exit status 1 if any).

/// `SELFSPEC_MODELS`, or `models` in the working directory.
private func modelsFolder() -> String {
    ProcessInfo.processInfo.environment["SELFSPEC_MODELS"] ?? "models"
}

#if FUZZING

/// Set up by `main` before the first input, so that loading a tokenizer does not count against
/// the first input's time limit (libFuzzer runs inputs one at a time on one thread).
nonisolated(unsafe) private var harness: FuzzHarness?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let data = bytes.map { Data(bytes: $0, count: size) } ?? Data()
    do { try harness!.run(data) } catch { fatalError("\(error)") }
    return 0
}

/// libFuzzer's entry: parses its flags, then runs the fuzzing loop with `callback`.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>,
                             _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                             _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@main
struct Fuzz {
    static func main() {
        let name = ProcessInfo.processInfo.environment["SELFSPEC_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            fatalError("SELFSPEC_FUZZ_TARGET='\(name)': expected one of \(FuzzTarget.allCases.map(\.rawValue))")
        }
        do { harness = try FuzzHarness(target: target, models: modelsFolder()) } catch {
            fatalError("cannot set up \(name): \(error)")
        }
        atexit { harness = nil }  // removes the scratch file
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzOneInput))
    }
}

#else

@main
struct Replay {
    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        // --mutate SECONDS [--seed N] [--failures DIR] [--last FILE]: the blind mutation fuzzer (MutationFuzzer).
        var mutate: Double?, seed: UInt64 = 1, failureDir = ".build/fuzz-mutate", last: String?
        while let flag = args.first, flag.hasPrefix("--"), args.count >= 2 {
            let value = args[1]
            switch flag {
            case "--mutate": mutate = Double(value)
            case "--seed": seed = UInt64(value) ?? 1
            case "--failures": failureDir = value
            case "--last": last = value
            default: usage()
            }
            args.removeFirst(2)
        }
        guard let name = args.first, let target = FuzzTarget(rawValue: name), args.count > 1 else { usage() }
        let harness: FuzzHarness
        do { harness = try FuzzHarness(target: target, models: modelsFolder()) } catch {
            FileHandle.standardError.write(Data("selfspec-fuzz: cannot set up \(name): \(error)\n".utf8))
            exit(2)
        }
        if let mutate { fuzz(harness, seeds: inputs(args.dropFirst()), seconds: mutate, seed: seed, failures: failureDir, last: last) }
        var accepted = 0, refused = 0, failures = 0
        for file in inputs(args.dropFirst()) {
            let start = Date()
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                switch try harness.run(data) {
                case .accepted: accepted += 1
                case .refused: refused += 1
                }
                let seconds = Date().timeIntervalSince(start)
                if seconds > 1 { print("SLOW \(file): \(String(format: "%.2f", seconds)) s") }
            } catch {
                failures += 1
                print("FAIL \(file): \(error)")
            }
        }
        print("\(name): \(accepted + refused + failures) inputs, \(accepted) accepted, \(refused) refused, \(failures) failed")
        exit(failures == 0 ? 0 : 1)
    }

    static func usage() -> Never {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: " | ")
        FileHandle.standardError.write(Data("""
            usage: selfspec-fuzz (\(names)) FILE_OR_DIR...        replay every input once
                   selfspec-fuzz --mutate SECONDS [--seed N] [--failures DIR] [--last FILE] TARGET SEED_FILE_OR_DIR...

            """.utf8))
        exit(2)
    }

    /// Mutates the seeds for `seconds`; failing inputs go to `failures/TARGET-failure-N`, and the
    /// input running when a crash ends the process stays in `last` (default `failures/TARGET-last`;
    /// a file in /dev/shm is much faster, as it is written before every input).
    static func fuzz(_ harness: FuzzHarness, seeds: [String], seconds: Double, seed: UInt64, failures: String, last: String?) -> Never {
        let name = harness.target.rawValue
        try? FileManager.default.createDirectory(atPath: failures, withIntermediateDirectories: true)
        var fuzzer = MutationFuzzer(harness: harness, seeds: seeds.compactMap { try? Data(contentsOf: URL(fileURLWithPath: $0)) }, seed: seed)
        var saved = 0
        let summary = fuzzer.run(seconds: seconds, lastInput: last ?? "\(failures)/\(name)-last") { input, why in
            saved += 1
            let path = "\(failures)/\(name)-failure-\(saved)"
            try? input.write(to: URL(fileURLWithPath: path))
            print("FAIL \(path): \(why)")
        }
        print(String(format: "%@: %d mutants of %d seeds in %.1f s (%.0f/s): %d accepted, %d refused, %d failed, %d slow",
                     name, summary.executions, seeds.count, summary.seconds, Double(summary.executions) / max(summary.seconds, 1e-9),
                     summary.accepted, summary.refused, summary.failures, summary.slow))
        exit(summary.failures + summary.slow == 0 ? 0 : 1)
    }

    /// The files named, with the files of each folder named (recursively, sorted).
    static func inputs(_ paths: ArraySlice<String>) -> [String] {
        paths.flatMap { path -> [String] in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [path] }
            let files = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
            return files.sorted().map { (path as NSString).appendingPathComponent($0) }.filter {
                var d: ObjCBool = false
                return FileManager.default.fileExists(atPath: $0, isDirectory: &d) && !d.boolValue
            }
        }
    }
}

#endif
