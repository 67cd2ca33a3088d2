import Foundation

// The safetensors (F32) writer of checkpoints and PEFT exports (GGUF is written by the runtime's
// `GGUFWriter`). Files are written to a temporary name and renamed, so a crash never leaves a
// half-written file under the final name.

/// A named float32 tensor to write. `shape` is in PyTorch order (outermost first).
public struct NamedTensor: Sendable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]
    public init(name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "\(name): shape \(shape) does not match \(values.count) values")
        self.name = name; self.shape = shape; self.values = values
    }
}

/// Writes `data` to `url` atomically (temporary file + rename).
func writeAtomically(_ data: Data, to url: URL) throws {
    do { try data.write(to: url, options: .atomic) } catch {
        throw TunerError.writeFailed(path: url.path, detail: error.localizedDescription)
    }
}

/// Appends the little-endian bytes of `values` to `data`.
private func appendFloats(_ values: [Float], to data: inout Data) {
    values.withUnsafeBytes { data.append(contentsOf: $0) }   // x86-64 and arm64 are little-endian
}

// MARK: - Safetensors

/// Serialises tensors in the safetensors format: an 8-byte header length, a JSON header (padded
/// with spaces to 8 bytes) naming each tensor's dtype, shape and byte range, then the raw data.
public func safetensorsData(_ tensors: [NamedTensor], metadata: [String: String] = [:]) throws -> Data {
    var header: [String: Any] = [:]
    var offset = 0
    for t in tensors {
        let bytes = t.values.count * 4
        header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes]]
        offset += bytes
    }
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var data = Data()
    var length = UInt64(json.count).littleEndian
    withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
    data.append(json)
    for t in tensors { appendFloats(t.values, to: &data) }
    return data
}
