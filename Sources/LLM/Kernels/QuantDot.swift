// Fused dot products of one quantized weight row with float32 activations, for decode.
//
// Decode is memory-bound: reading the 4.5-bit blocks and expanding them in registers beats
// streaming a dequantized float32 copy (7x the bytes). Each kernel follows the block layout in
// `QuantBlocks.swift`; a block's scale and min factor out of its 32-weight dot product:
//
//   Q4_1: sum_i (d*q_i + m) x_i = d * sum_i q_i x_i + m * sum_i x_i
//
// so `xSums` (one sum per 32 activations, computed once per vector) covers the offsets.
// Types without a fused kernel dequantize the row into scratch and use a float dot product
// (correct, slower). Results differ from dequantize-then-dot only by float rounding order.

import CKernels

// MARK: - SIMD helpers

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func halfAt(_ p: UnsafeRawPointer, _ offset: Int = 0) -> Float {
    Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

/// The 32 4-bit values of 16 bytes as floats: low nibbles are elements 0-15, high 16-31.
@inline(__always)
func nibbles(_ q: UnsafeRawPointer) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
    let b = q.loadUnaligned(as: SIMD16<UInt8>.self)
    let lo = b & 0x0F, hi = b &>> 4
    return (SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: lo.lowHalf)),
            SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: lo.highHalf)),
            SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: hi.lowHalf)),
            SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: hi.highHalf)))
}

/// sum over 32 elements of `w * x` as a SIMD8 partial sum.
@inline(__always)
func dot32(_ w: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>), _ x: UnsafePointer<Float>) -> SIMD8<Float> {
    var s = w.0 * load8(x)
    s.addProduct(w.1, load8(x + 8))
    s.addProduct(w.2, load8(x + 16))
    s.addProduct(w.3, load8(x + 24))
    return s
}

// MARK: - Kernels

enum QuantDot {
    /// Whether `type` has a fused kernel here or in C (others go through dequantize + dot).
    static func isFused(_ type: GGMLType) -> Bool {
        switch type {
        case .f32, .q4_0, .q4_1, .q8_0, .q4_K: return true
        default: return usesC(type)
        }
    }

    /// Whether the AVX2 kernels of `CKernels` (`ck_qdot_rows`) handle `type` on this CPU; they
    /// replace the Swift kernels below, which stay as the baseline x86-64 path.
    static func usesC(_ type: GGMLType) -> Bool { cSupported[Int(type.rawValue)] }

    private static let cSupported: [Bool] = (0..<64).map { ck_qdot_supports(Int32($0)) != 0 }

    /// `row · x` for a fused type.
    /// - Parameters:
    ///   - row: one weight row of `columns / blockElements` blocks.
    ///   - x: `(columns)` activations.
    ///   - xSums: `(columns / 32)` sums of consecutive 32 activations.
    @inline(__always)
    static func dot(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>,
                    _ xSums: UnsafePointer<Float>, columns: Int) -> Float {
        switch type {
        case .q4_1: return q4_1(row, x, xSums, columns / 32)
        case .q8_0: return q8_0(row, x, columns / 32)
        case .q4_0: return q4_0(row, x, xSums, columns / 32)
        case .q4_K: return q4_K(row, x, xSums, columns / 256)
        case .f32: return f32(row.assumingMemoryBound(to: Float.self), x, columns)
        default: fatalError("QuantDot.dot: no fused kernel for \(type)")
        }
    }

    static func f32(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            a0.addProduct(load8(w + i), load8(x + i))
            a1.addProduct(load8(w + i + 8), load8(x + i + 8))
            i += 16
        }
        var s = (a0 + a1).sum()
        while i < n { s += w[i] * x[i]; i += 1 }
        return s
    }

    /// Q4_1 (20 bytes: d f16, m f16, 16 bytes of nibbles).
    static func q4_1(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xSums: UnsafePointer<Float>, _ nb: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var offsets: Float = 0
        var b = 0
        while b + 2 <= nb {
            let p0 = row + b * BlockQ4_1.size, p1 = p0 + BlockQ4_1.size
            acc0.addProduct(SIMD8(repeating: halfAt(p0)), dot32(nibbles(p0 + BlockQ4_1.qsOffset), x + 32 * b))
            acc1.addProduct(SIMD8(repeating: halfAt(p1)), dot32(nibbles(p1 + BlockQ4_1.qsOffset), x + 32 * b + 32))
            offsets += halfAt(p0, BlockQ4_1.mOffset) * xSums[b] + halfAt(p1, BlockQ4_1.mOffset) * xSums[b + 1]
            b += 2
        }
        if b < nb {
            let p = row + b * BlockQ4_1.size
            acc0.addProduct(SIMD8(repeating: halfAt(p)), dot32(nibbles(p + BlockQ4_1.qsOffset), x + 32 * b))
            offsets += halfAt(p, BlockQ4_1.mOffset) * xSums[b]
        }
        return (acc0 + acc1).sum() + offsets
    }

    /// Q4_0 (18 bytes: d f16, 16 bytes of nibbles; weight = d * (q - 8)).
    static func q4_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xSums: UnsafePointer<Float>, _ nb: Int) -> Float {
        var acc = SIMD8<Float>()
        var offsets: Float = 0
        for b in 0..<nb {
            let p = row + b * BlockQ4_0.size
            let d = halfAt(p)
            acc.addProduct(SIMD8(repeating: d), dot32(nibbles(p + BlockQ4_0.qsOffset), x + 32 * b))
            offsets -= 8 * d * xSums[b]
        }
        return acc.sum() + offsets
    }

    /// Q8_0 (34 bytes: d f16, 32 int8).
    static func q8_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ nb: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        for b in 0..<nb {
            let p = row + b * BlockQ8_0.size
            let q = p + BlockQ8_0.qsOffset
            let xb = x + 32 * b
            @inline(__always) func w(_ i: Int) -> SIMD8<Float> {
                SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: i, as: SIMD8<Int8>.self)))
            }
            var s0 = w(0) * load8(xb)
            var s1 = w(8) * load8(xb + 8)
            s0.addProduct(w(16), load8(xb + 16))
            s1.addProduct(w(24), load8(xb + 24))
            let d = SIMD8<Float>(repeating: halfAt(p))
            acc0.addProduct(d, s0)
            acc1.addProduct(d, s1)
        }
        return (acc0 + acc1).sum()
    }

    /// Q4_K (144 bytes: d, dmin f16, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles;
    /// weight = d*sc_j*q - dmin*m_j for sub-block j of 32).
    static func q4_K(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xSums: UnsafePointer<Float>, _ nb: Int) -> Float {
        var acc = SIMD8<Float>()
        var offsets: Float = 0
        for b in 0..<nb {
            let p = row + b * BlockQ4_K.size
            let d = halfAt(p), dmin = halfAt(p, BlockQ4_K.dminOffset)
            let scales = (p + BlockQ4_K.scalesOffset).assumingMemoryBound(to: UInt8.self)
            for g in 0..<4 {
                let (s1, m1) = scaleMinK4(scales, 2 * g)
                let (s2, m2) = scaleMinK4(scales, 2 * g + 1)
                let q = p + BlockQ4_K.qsOffset + 32 * g
                let xg = x + 256 * b + 64 * g
                // 32 bytes: low nibbles are sub-block 2g (32 weights), high nibbles 2g+1.
                let b0 = q.loadUnaligned(as: SIMD16<UInt8>.self), b1 = q.loadUnaligned(fromByteOffset: 16, as: SIMD16<UInt8>.self)
                let l0 = b0 & 0x0F, l1 = b1 & 0x0F, h0 = b0 &>> 4, h1 = b1 &>> 4
                @inline(__always) func f(_ v: SIMD8<UInt8>) -> SIMD8<Float> { SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: v)) }
                let lo = dot32((f(l0.lowHalf), f(l0.highHalf), f(l1.lowHalf), f(l1.highHalf)), xg)
                let hi = dot32((f(h0.lowHalf), f(h0.highHalf), f(h1.lowHalf), f(h1.highHalf)), xg + 32)
                acc.addProduct(SIMD8(repeating: d * s1), lo)
                acc.addProduct(SIMD8(repeating: d * s2), hi)
                let sub = 8 * b + 2 * g
                offsets += dmin * m1 * xSums[sub] + dmin * m2 * xSums[sub + 1]
            }
        }
        return acc.sum() - offsets
    }
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K / Q5_K block (`get_scale_min_k4`).
@inline(__always)
func scaleMinK4(_ q: UnsafePointer<UInt8>, _ j: Int) -> (Float, Float) {
    if j < 4 { return (Float(q[j] & 63), Float(q[j + 4] & 63)) }
    let scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)
    let min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4)
    return (Float(scale), Float(min))
}
