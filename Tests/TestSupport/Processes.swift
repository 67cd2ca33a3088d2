import Foundation

/// What a program run by ``runToEnd(_:_:input:)`` left.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status; self.stdout = stdout; self.stderr = stderr
    }
}

/// Runs the program at `path` with `args` to its end: `input` on stdin (then closed), stdout and
/// stderr read at the same time so neither pipe can fill up and stall the program.
public func runToEnd(_ path: String, _ args: [String], input: String? = nil) throws -> ProcessOutput {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    try p.run()
    if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
    try? inp.fileHandleForWriting.close()
    final class Box: @unchecked Sendable { var data = Data() }  // written by one thread, read after wait()
    let errData = Box(), reading = DispatchGroup()
    reading.enter()
    DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); reading.leave() }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    reading.wait()
    return ProcessOutput(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                         stderr: String(decoding: errData.data, as: UTF8.self))
}
