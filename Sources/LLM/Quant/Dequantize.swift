// Dequantization kernels: ggml block types -> float32, a row (or any whole number of blocks) at
// a time into a caller's buffer, so a matmul can dequantize tile by tile without whole-tensor
// copies. Layouts are documented in `QuantBlocks.swift`.
//
// The kernels are plain loops over byte pointers, in the shape of ggml's reference C code:
// LLVM vectorizes them (measured 4x faster than hand-written SIMD16 code, whose integer->float
// lane conversions the standard library does not inline).
//
// Exactness: each kernel rounds in the same order as ggml's `dequantize_row_*` and the gguf
// Python package (e.g. Q4_K computes `(d * sc) * q - (dmin * m)`, two float32 products then a
// subtraction); Swift does not contract `a * b - c` into an FMA, so results are bit-identical.

public enum Dequantize {
    /// Dequantizes `destination.count` values of `type` stored in `source`.
    ///
    /// - Parameters:
    ///   - type: the element type of `source`.
    ///   - source: exactly `type.rowBytes(elements: destination.count)` bytes.
    ///   - destination: receives the float32 values.
    ///   - name: names the data in errors (a tensor name).
    /// - Throws: `GGUFError.unsupportedTensorType` when `type` has no kernel,
    ///   `GGUFError.bufferSizeMismatch` when the sizes disagree.
    public static func dequantize(
        _ type: GGMLType, from source: UnsafeRawBufferPointer, into destination: UnsafeMutableBufferPointer<Float>,
        name: String = "<buffer>"
    ) throws {
        guard type.canDequantize else { throw GGUFError.unsupportedTensorType(tensor: name, type: "\(type)") }
        guard let bytes = type.rowBytes(elements: destination.count), bytes == source.count else {
            let fits = source.count / type.blockBytes * type.blockElements
            throw GGUFError.bufferSizeMismatch(tensor: name, expectedElements: fits, actualElements: destination.count)
        }
        guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
        dequantizeUnchecked(type, from: src, count: destination.count, into: dst)
    }

    /// The kernel dispatch without checks, for hot loops whose sizes were validated once.
    ///
    /// - Precondition: `type.canDequantize`; `count` is a multiple of `type.blockElements`;
    ///   `source` holds `type.rowBytes(elements: count)` bytes and `destination` `count` floats.
    public static func dequantizeUnchecked(
        _ type: GGMLType, from source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>
    ) {
        let blocks = count / type.blockElements
        switch type {
        case .f32: destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
        case .f16: rowF16(source, count, destination)
        case .bf16: rowBF16(source, count, destination)
        case .q4_0: rowQ4_0(source, blocks, destination)
        case .q4_1: rowQ4_1(source, blocks, destination)
        case .q5_0: rowQ5_0(source, blocks, destination)
        case .q5_1: rowQ5_1(source, blocks, destination)
        case .q8_0: rowQ8_0(source, blocks, destination)
        case .q4_K: rowQ4_K(source, blocks, destination)
        case .q5_K: rowQ5_K(source, blocks, destination)
        case .q6_K: rowQ6_K(source, blocks, destination)
        default: fatalError("Dequantize.dequantizeUnchecked: no kernel for \(type); check canDequantize first")
        }
    }
}

// MARK: - Helpers

/// IEEE half -> float, exact for every input (subnormals, infinities, NaN payloads), branch-free
/// so loops over it vectorize: normals rebias the exponent by an integer add (15 -> 127, i.e.
/// +112 << 23), subnormals are their 10-bit mantissa times 2^-24 (exact, and no float
/// subnormal is ever an operand, which would be slow).
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let bits = UInt32(h)
    let sign = (bits & 0x8000) << 16
    let magnitude = bits & 0x7fff
    let normal = (magnitude << 13) &+ 0x3800_0000
    let subnormal = (Float(magnitude) * 0x1p-24).bitPattern
    let special = 0x7f80_0000 | ((magnitude & 0x3ff) << 13)
    let value = magnitude >= 0x7c00 ? special : (magnitude < 0x400 ? subnormal : normal)
    return Float(bitPattern: sign | value)
}

@inline(__always)
private func half(_ p: UnsafeRawPointer, _ offset: Int = 0) -> Float {
    halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

@inline(__always)
private func bytes(_ p: UnsafeRawPointer, _ offset: Int) -> UnsafePointer<UInt8> {
    (p + offset).assumingMemoryBound(to: UInt8.self)
}

/// The 6-bit scale and min of sub-block `j` (0..<8) of a Q4_K / Q5_K block
/// (`get_scale_min_k4` in ggml): bytes 0-3 hold scales 0-3 (+ top 2 bits of scales 4-7),
/// bytes 4-7 mins 0-3 (+ top 2 bits of mins 4-7), bytes 8-11 the low 4 bits of scales/mins 4-7.
@inline(__always)
private func scaleMin(_ q: UnsafePointer<UInt8>, _ j: Int) -> (scale: Float, min: Float) {
    if j < 4 {
        return (Float(q[j] & 63), Float(q[j + 4] & 63))
    }
    let scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)
    let min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4)
    return (Float(scale), Float(min))
}

// MARK: - Plain float types

private func rowF16(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutablePointer<Float>) {
    for i in 0..<n { dst[i] = half(src, 2 * i) }
}

/// bfloat16 is the top half of a float32.
private func rowBF16(_ src: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutablePointer<Float>) {
    for i in 0..<n {
        let h = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
        dst[i] = Float(bitPattern: UInt32(h) << 16)
    }
}

// MARK: - Legacy 32-weight blocks

private func rowQ4_0(_ src: UnsafeRawPointer, _ nb: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<nb {
        let block = src + b * BlockQ4_0.size
        let y = dst + 32 * b
        let d = half(block)
        let qs = bytes(block, BlockQ4_0.qsOffset)
        for j in 0..<16 {
            y[j] = d * Float(Int32(qs[j] & 0xF) - 8)
            y[j + 16] = d * Float(Int32(qs[j] >> 4) - 8)
        }
    }
}

private func rowQ4_1(_ src: UnsafeRawPointer, _ nb: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<nb {
        let block = src + b * BlockQ4_1.size
        let y = dst + 32 * b
        let d = half(block), m = half(block, BlockQ4_1.mOffset)
        let qs = bytes(block, BlockQ4_1.qsOffset)
        for j in 0..<16 {
            y[j] = d * Float(qs[j] & 0xF) + m
            y[j + 16] = d * Float(qs[j] >> 4) + m
        }
    }
}

private func rowQ5_0(_ src: UnsafeRawPointer, _ nb: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<nb {
        let block = src + b * BlockQ5_0.size
        let y = dst + 32 * b
        let d = half(block)
        let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: BlockQ5_0.qhOffset, as: UInt32.self))
        let qs = bytes(block, BlockQ5_0.qsOffset)
        for j in 0..<16 {
            let h0 = Int32(truncatingIfNeeded: (qh >> UInt32(j)) << 4) & 0x10
            let h1 = Int32(truncatingIfNeeded: qh >> UInt32(j + 12)) & 0x10
            y[j] = d * Float((Int32(qs[j] & 0xF) | h0) - 16)
            y[j + 16] = d * Float((Int32(qs[j] >> 4) | h1) - 16)
        }
    }
}

private func rowQ5_1(_ src: UnsafeRawPointer, _ nb: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<nb {
        let block = src + b * BlockQ5_1.size
        let y = dst + 32 * b
        let d = half(block), m = half(block, BlockQ5_1.mOffset)
        let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: BlockQ5_1.qhOffset, as: UInt32.self))
        let qs = bytes(block, BlockQ5_1.qsOffset)
        for j in 0..<16 {
            let h0 = Int32(truncatingIfNeeded: (qh >> UInt32(j)) << 4) & 0x10
            let h1 = Int32(truncatingIfNeeded: qh >> UInt32(j + 12)) & 0x10
            y[j] = d * Float(Int32(qs[j] & 0xF) | h0) + m
            y[j + 16] = d * Float(Int32(qs[j] >> 4) | h1) + m
        }
    }
}

private func rowQ8_0(_ src: UnsafeRawPointer, _ nb: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<nb {
        let block = src + b * BlockQ8_0.size
        let y = dst + 32 * b
        let d = half(block)
        let qs = (block + BlockQ8_0.qsOffset).assumingMemoryBound(to: Int8.self)
        for j in 0..<32 { y[j] = Float(qs[j]) * d }
    }
}

// MARK: - k-quants (256-weight super-blocks)

private func rowQ4_K(_ src: UnsafeRawPointer, _ nb: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<nb {
        let block = src + b * BlockQ4_K.size
        let d = half(block), dmin = half(block, BlockQ4_K.dminOffset)
        let scales = bytes(block, BlockQ4_K.scalesOffset)
        // 4 groups of 64 weights: 32 bytes of qs, low nibbles = sub-block 2g, high = 2g+1.
        for g in 0..<4 {
            let (s1, m1) = scaleMin(scales, 2 * g)
            let (s2, m2) = scaleMin(scales, 2 * g + 1)
            let d1 = d * s1, min1 = dmin * m1
            let d2 = d * s2, min2 = dmin * m2
            let q = bytes(block, BlockQ4_K.qsOffset + 32 * g)
            let y = dst + 256 * b + 64 * g
            for l in 0..<32 {
                y[l] = d1 * Float(q[l] & 0xF) - min1
                y[l + 32] = d2 * Float(q[l] >> 4) - min2
            }
        }
    }
}

private func rowQ5_K(_ src: UnsafeRawPointer, _ nb: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<nb {
        let block = src + b * BlockQ5_K.size
        let d = half(block), dmin = half(block, BlockQ5_K.dminOffset)
        let scales = bytes(block, BlockQ5_K.scalesOffset)
        let qh = bytes(block, BlockQ5_K.qhOffset)
        for g in 0..<4 {
            let (s1, m1) = scaleMin(scales, 2 * g)
            let (s2, m2) = scaleMin(scales, 2 * g + 1)
            let d1 = d * s1, min1 = dmin * m1
            let d2 = d * s2, min2 = dmin * m2
            let q = bytes(block, BlockQ5_K.qsOffset + 32 * g)
            let y = dst + 256 * b + 64 * g
            let bit1 = UInt8(2 * g), bit2 = UInt8(2 * g + 1)
            for l in 0..<32 {
                y[l] = d1 * Float((q[l] & 0xF) | (((qh[l] >> bit1) & 1) << 4)) - min1
                y[l + 32] = d2 * Float((q[l] >> 4) | (((qh[l] >> bit2) & 1) << 4)) - min2
            }
        }
    }
}

private func rowQ6_K(_ src: UnsafeRawPointer, _ nb: Int, _ dst: UnsafeMutablePointer<Float>) {
    for b in 0..<nb {
        let block = src + b * BlockQ6_K.size
        let d = half(block, BlockQ6_K.dOffset)
        for h in 0..<2 {
            let ql = bytes(block, 64 * h)
            let qh = bytes(block, BlockQ6_K.qhOffset + 32 * h)
            let sc = (block + BlockQ6_K.scalesOffset + 8 * h).assumingMemoryBound(to: Int8.self)
            let y = dst + 256 * b + 128 * h
            // Weights l = 16c ..< 16c+16 of each quarter share sub-block scale c (+2, +4, +6).
            for c in 0..<2 {
                let d1 = d * Float(sc[c]), d2 = d * Float(sc[c + 2])
                let d3 = d * Float(sc[c + 4]), d4 = d * Float(sc[c + 6])
                for l in (16 * c)..<(16 * c + 16) {
                    let q1 = Int32((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32
                    let q2 = Int32((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32
                    let q3 = Int32((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                    let q4 = Int32((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                    y[l] = d1 * Float(q1)
                    y[l + 32] = d2 * Float(q2)
                    y[l + 64] = d3 * Float(q3)
                    y[l + 96] = d4 * Float(q4)
                }
            }
        }
    }
}
