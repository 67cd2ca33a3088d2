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
        let args = Array(CommandLine.arguments.dropFirst())
        guard let name = args.first, let target = FuzzTarget(rawValue: name), args.count > 1 else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: " | ")
            FileHandle.standardError.write(Data("usage: selfspec-fuzz (\(names)) FILE_OR_DIR...\n".utf8))
            exit(2)
        }
        let harness: FuzzHarness
        do { harness = try FuzzHarness(target: target, models: modelsFolder()) } catch {
            FileHandle.standardError.write(Data("selfspec-fuzz: cannot set up \(name): \(error)\n".utf8))
            exit(2)
        }
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
