import Foundation

// Writers for the two tensor container formats the tuner produces: safetensors (F32) and GGUF
// (F32 tensors, used for llama.cpp LoRA adapters). Files are written to a temporary name and
// renamed, so a crash never leaves a half-written file under the final name.

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

// MARK: - GGUF

/// A GGUF metadata value the writer supports.
public enum GGUFWriteValue: Sendable {
    case string(String)
    case float32(Float)
    case uint32(UInt32)
    case stringArray([String])
}

/// Serialises a GGUF v3 file with F32 tensors. `shape` of each tensor is in PyTorch order; GGUF
/// stores the reverse (`ne[0]` fastest).
public func ggufData(metadata: [(String, GGUFWriteValue)], tensors: [NamedTensor], alignment: Int = 32) -> Data {
    var d = Data()
    func u32(_ v: UInt32) { var x = v.littleEndian; withUnsafeBytes(of: &x) { d.append(contentsOf: $0) } }
    func u64(_ v: UInt64) { var x = v.littleEndian; withUnsafeBytes(of: &x) { d.append(contentsOf: $0) } }
    func str(_ s: String) { let b = Array(s.utf8); u64(UInt64(b.count)); d.append(contentsOf: b) }
    u32(0x4655_4747)          // "GGUF"
    u32(3)                    // version
    u64(UInt64(tensors.count))
    u64(UInt64(metadata.count))
    for (key, value) in metadata {
        str(key)
        switch value {
        case let .string(s): u32(8); str(s)
        case let .float32(f): u32(6); u32(f.bitPattern)
        case let .uint32(v): u32(4); u32(v)
        case let .stringArray(list): u32(9); u32(8); u64(UInt64(list.count)); list.forEach(str)
        }
    }
    var offset = 0
    for t in tensors {
        str(t.name)
        u32(UInt32(t.shape.count))
        for dim in t.shape.reversed() { u64(UInt64(dim)) }
        u32(0)                // GGML_TYPE_F32
        u64(UInt64(offset))
        offset += (t.values.count * 4 + alignment - 1) / alignment * alignment
    }
    while d.count % alignment != 0 { d.append(0) }
    for t in tensors {
        appendFloats(t.values, to: &d)
        while d.count % alignment != 0 { d.append(0) }
    }
    return d
}
