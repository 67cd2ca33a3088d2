/// Where one tensor lives in a GGUF file and what shape it has. Validated when the file is
/// opened: the type is known, the row is a whole number of blocks, the byte size does not
/// overflow, and the data lies aligned inside the data section.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: GGMLType
    /// ggml order (`ne`): `dims[0]` is the row length, the fastest-varying dimension. A
    /// PyTorch weight of shape (out, in) is stored as dims `[in, out]`.
    public let dims: [Int]
    /// Byte offset of the data from the start of the data section.
    public let offset: Int
    public let elementCount: Int
    public let byteCount: Int

    /// Elements per row (`dims[0]`, or 1 for a 0-d tensor).
    public var rowLength: Int { dims.first ?? 1 }
    /// Number of rows: the product of `dims[1...]`.
    public var rowCount: Int { rowLength == 0 ? 0 : elementCount / rowLength }
    /// Bytes per row (always a whole number of blocks).
    public var rowBytes: Int { rowCount == 0 ? 0 : byteCount / rowCount }
}

/// A tensor of an open `GGUFFile`: its info plus its memory-mapped bytes. Holding one keeps the
/// file mapped.
public struct GGUFTensor: Sendable {
    public let info: GGUFTensorInfo
    public let file: GGUFFile

    public var name: String { info.name }
    public var type: GGMLType { info.type }

    /// The tensor's raw bytes, valid while `file` is alive (which this value guarantees).
    public var bytes: UnsafeRawBufferPointer { file.bytes(of: info) }

    /// The raw (still quantized) bytes of rows `rows`, e.g. for a matmul that dequantizes tile by
    /// tile.
    public func rawRows(_ rows: Range<Int>) throws -> UnsafeRawBufferPointer {
        try checkRows(rows)
        let all = bytes
        let start = rows.lowerBound * info.rowBytes, end = rows.upperBound * info.rowBytes
        return UnsafeRawBufferPointer(rebasing: all[start..<end])
    }

    /// Dequantizes rows `rows` into `destination`, which must hold exactly
    /// `rows.count * info.rowLength` floats.
    ///
    /// - Throws: `GGUFError.rowOutOfRange`, `.bufferSizeMismatch`, `.unsupportedTensorType`.
    public func dequantizeRows(_ rows: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let source = try rawRows(rows)
        try Dequantize.dequantize(info.type, from: source, into: destination, name: info.name)
    }

    /// Dequantizes one row into `destination` (`info.rowLength` floats).
    public func dequantizeRow(_ row: Int, into destination: UnsafeMutableBufferPointer<Float>) throws {
        try dequantizeRows(row..<(row + 1), into: destination)
    }

    /// The whole tensor as float32, row-major in ggml order (`dims[0]` fastest).
    public func dequantized() throws -> [Float] {
        guard info.type.canDequantize else {
            throw GGUFError.unsupportedTensorType(tensor: info.name, type: "\(info.type)")
        }
        return try [Float](unsafeUninitializedCapacity: info.elementCount) { buffer, initialized in
            let destination = UnsafeMutableBufferPointer(rebasing: buffer[0..<info.elementCount])
            try dequantizeRows(0..<info.rowCount, into: destination)
            initialized = info.elementCount
        }
    }

    private func checkRows(_ rows: Range<Int>) throws {
        guard rows.lowerBound >= 0, rows.upperBound <= info.rowCount else {
            throw GGUFError.rowOutOfRange(tensor: info.name, rows: rows, rowCount: info.rowCount)
        }
    }
}
