import Foundation

// The safetensors (F32 or BF16) writer of checkpoints and PEFT exports (GGUF is written by the runtime's
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

/// The element type a safetensors file stores.
public enum TensorDType: String, Sendable, CaseIterable {
    /// float32, exact.
    case f32 = "F32"
    /// bfloat16: the upper 16 bits of float32, rounded to nearest even (half the size; the
    /// format shipped adapters use).
    case bf16 = "BF16"

    var bytes: Int { self == .f32 ? 4 : 2 }
}

/// Appends the little-endian bytes of `values` as `dtype` to `data`.
private func appendFloats(_ values: [Float], as dtype: TensorDType, to data: inout Data) {
    switch dtype {
    case .f32:
        values.withUnsafeBytes { data.append(contentsOf: $0) }   // x86-64 and arm64 are little-endian
    case .bf16:
        var half = [UInt16](repeating: 0, count: values.count)
        for (i, v) in values.enumerated() { half[i] = bfloat16Bits(v) }
        half.withUnsafeBytes { data.append(contentsOf: $0) }
    }
}

/// The bfloat16 bits of `value`, rounded to nearest even; NaN stays a (quiet) NaN.
func bfloat16Bits(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if value.isNaN { return UInt16(bits >> 16) | 0x0040 }
    let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
    return UInt16(rounded >> 16)
}

// MARK: - Safetensors

/// Serialises tensors in the safetensors format: an 8-byte header length, a JSON header (padded
/// with spaces to 8 bytes) naming each tensor's dtype, shape and byte range, then the raw data.
public func safetensorsData(_ tensors: [NamedTensor], metadata: [String: String] = [:], dtype: TensorDType = .f32) throws -> Data {
    var header: [String: Any] = [:]
    var offset = 0
    for t in tensors {
        let bytes = t.values.count * dtype.bytes
        header[t.name] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + bytes]]
        offset += bytes
    }
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while json.count % 8 != 0 { json.append(0x20) }
    var data = Data()
    var length = UInt64(json.count).littleEndian
    withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
    data.append(json)
    for t in tensors { appendFloats(t.values, as: dtype, to: &data) }
    return data
}
