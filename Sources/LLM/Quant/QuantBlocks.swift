// Block layouts of the ggml types we dequantize, as in ggml's `ggml-common.h`.
//
// Each struct mirrors the C struct field for field (fp16 values are stored as their UInt16 bit
// pattern), documents how a weight is rebuilt, and names its byte size and field offsets as
// constants that the kernels in `Dequantize.swift` use. `QuantBlocks.verifyLayouts()` checks
// those constants against `MemoryLayout` and against `GGMLType.blockBytes`; it runs once before
// the first file is opened and in the tests.
//
// Notation: QK = 32 (legacy blocks), QK_K = 256 (k-quant super-blocks), `fp16` = IEEE half,
// y = the dequantized float32 weight, q = the stored quant.

typealias Bytes4 = (UInt8, UInt8, UInt8, UInt8)
typealias Bytes12 = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
typealias Bytes16 = (Bytes4, Bytes4, Bytes4, Bytes4)
typealias Bytes32 = (Bytes16, Bytes16)
typealias Bytes64 = (Bytes32, Bytes32)
typealias Bytes128 = (Bytes64, Bytes64)

/// Q4_0: 32 weights, y = d * (q - 8), q in 0...15.  18 bytes = 4.5 bits/weight.
/// `qs[j]` holds weight j in its low nibble and weight j+16 in its high nibble.
struct BlockQ4_0 {
    var d: UInt16        // fp16 scale                       @ 0
    var qs: Bytes16      // 32 x 4-bit quants                @ 2
    static let size = 18, qsOffset = 2
}

/// Q4_1: 32 weights, y = d * q + m, q in 0...15.  20 bytes = 5 bits/weight. Nibbles as Q4_0.
struct BlockQ4_1 {
    var d: UInt16        // fp16 scale                       @ 0
    var m: UInt16        // fp16 minimum                     @ 2
    var qs: Bytes16      // 32 x 4-bit quants                @ 4
    static let size = 20, mOffset = 2, qsOffset = 4
}

/// Q5_0: 32 weights, y = d * (q - 16), q in 0...31.  22 bytes = 5.5 bits/weight.
/// Low 4 bits as Q4_0; bit i of the little-endian uint32 `qh` is the 5th bit of weight i.
struct BlockQ5_0 {
    var d: UInt16        // fp16 scale                       @ 0
    var qh: Bytes4       // 32 high bits (unaligned uint32)  @ 2
    var qs: Bytes16      // 32 x low 4 bits                  @ 6
    static let size = 22, qhOffset = 2, qsOffset = 6
}

/// Q5_1: 32 weights, y = d * q + m, q in 0...31.  24 bytes = 6 bits/weight. Bits as Q5_0.
struct BlockQ5_1 {
    var d: UInt16        // fp16 scale                       @ 0
    var m: UInt16        // fp16 minimum                     @ 2
    var qh: Bytes4       // 32 high bits                     @ 4
    var qs: Bytes16      // 32 x low 4 bits                  @ 8
    static let size = 24, mOffset = 2, qhOffset = 4, qsOffset = 8
}

/// Q8_0: 32 weights, y = d * q, q an int8.  34 bytes = 8.5 bits/weight.
struct BlockQ8_0 {
    var d: UInt16        // fp16 scale                       @ 0
    var qs: Bytes32      // 32 x int8 quants                 @ 2
    static let size = 34, qsOffset = 2
}

/// Q4_K: 256 weights in 8 sub-blocks of 32; y = (d * sc[s]) * q - (dmin * mn[s]), q in 0...15.
/// 144 bytes = 4.5 bits/weight. The 8 six-bit scales `sc` and mins `mn` are packed in 12 bytes
/// (`scaleMin(_:_:)`). Each 32 bytes of `qs` hold sub-block 2k in the low nibbles and 2k+1 in
/// the high nibbles.
struct BlockQ4_K {
    var d: UInt16        // fp16 super-block scale           @ 0
    var dmin: UInt16     // fp16 super-block min scale       @ 2
    var scales: Bytes12  // 8 x (6-bit scale, 6-bit min)     @ 4
    var qs: Bytes128     // 256 x 4-bit quants               @ 16
    static let size = 144, dminOffset = 2, scalesOffset = 4, qsOffset = 16
}

/// Q5_K: as Q4_K with a 5th bit per weight, q in 0...31. 176 bytes = 5.5 bits/weight.
/// Bit 2k of `qh[l]` is the 5th bit of weight l of sub-block 2k, bit 2k+1 that of sub-block 2k+1.
struct BlockQ5_K {
    var d: UInt16        // fp16 super-block scale           @ 0
    var dmin: UInt16     // fp16 super-block min scale       @ 2
    var scales: Bytes12  // 8 x (6-bit scale, 6-bit min)     @ 4
    var qh: Bytes32      // 256 high bits                    @ 16
    var qs: Bytes128     // 256 x low 4 bits                 @ 48
    static let size = 176, dminOffset = 2, scalesOffset = 4, qhOffset = 16, qsOffset = 48
}

/// Q6_K: 256 weights in 16 sub-blocks of 16; y = (d * sc[s]) * (q - 32), q in 0...63.
/// 210 bytes = 6.5625 bits/weight. Two halves of 128 weights; in half h, weight l (0..<32) of
/// each quarter takes its low 4 bits from `ql[64h + l]` / `ql[64h + l + 32]` (low/high nibble)
/// and its top 2 bits from `qh[32h + l]` (bits 0-1, 2-3, 4-5, 6-7 for quarters 0-3).
struct BlockQ6_K {
    var ql: Bytes128     // low 4 bits                       @ 0
    var qh: Bytes64      // high 2 bits                      @ 128
    var scales: Bytes16  // 16 x int8 sub-block scales       @ 192
    var d: UInt16        // fp16 super-block scale           @ 208
    static let size = 210, qhOffset = 128, scalesOffset = 192, dOffset = 208
}

enum QuantBlocks {
    /// Checks every block struct's size and field offsets against the constants the kernels use
    /// and against `GGMLType.blockBytes`. A mismatch is a programmer error, so it traps (with
    /// `fatalError`, which `-Ounchecked` keeps).
    static func verifyLayouts() {
        func check(_ what: String, _ actual: Int?, _ expected: Int) {
            if actual != expected {
                fatalError("quant block layout \(what): \(actual.map(String.init) ?? "nil"), expected \(expected)")
            }
        }
        check("Q4_0 size", MemoryLayout<BlockQ4_0>.size, BlockQ4_0.size)
        check("Q4_0.qs", MemoryLayout<BlockQ4_0>.offset(of: \.qs), BlockQ4_0.qsOffset)
        check("Q4_1 size", MemoryLayout<BlockQ4_1>.size, BlockQ4_1.size)
        check("Q4_1.m", MemoryLayout<BlockQ4_1>.offset(of: \.m), BlockQ4_1.mOffset)
        check("Q4_1.qs", MemoryLayout<BlockQ4_1>.offset(of: \.qs), BlockQ4_1.qsOffset)
        check("Q5_0 size", MemoryLayout<BlockQ5_0>.size, BlockQ5_0.size)
        check("Q5_0.qh", MemoryLayout<BlockQ5_0>.offset(of: \.qh), BlockQ5_0.qhOffset)
        check("Q5_0.qs", MemoryLayout<BlockQ5_0>.offset(of: \.qs), BlockQ5_0.qsOffset)
        check("Q5_1 size", MemoryLayout<BlockQ5_1>.size, BlockQ5_1.size)
        check("Q5_1.m", MemoryLayout<BlockQ5_1>.offset(of: \.m), BlockQ5_1.mOffset)
        check("Q5_1.qh", MemoryLayout<BlockQ5_1>.offset(of: \.qh), BlockQ5_1.qhOffset)
        check("Q5_1.qs", MemoryLayout<BlockQ5_1>.offset(of: \.qs), BlockQ5_1.qsOffset)
        check("Q8_0 size", MemoryLayout<BlockQ8_0>.size, BlockQ8_0.size)
        check("Q8_0.qs", MemoryLayout<BlockQ8_0>.offset(of: \.qs), BlockQ8_0.qsOffset)
        check("Q4_K size", MemoryLayout<BlockQ4_K>.size, BlockQ4_K.size)
        check("Q4_K.dmin", MemoryLayout<BlockQ4_K>.offset(of: \.dmin), BlockQ4_K.dminOffset)
        check("Q4_K.scales", MemoryLayout<BlockQ4_K>.offset(of: \.scales), BlockQ4_K.scalesOffset)
        check("Q4_K.qs", MemoryLayout<BlockQ4_K>.offset(of: \.qs), BlockQ4_K.qsOffset)
        check("Q5_K size", MemoryLayout<BlockQ5_K>.size, BlockQ5_K.size)
        check("Q5_K.dmin", MemoryLayout<BlockQ5_K>.offset(of: \.dmin), BlockQ5_K.dminOffset)
        check("Q5_K.scales", MemoryLayout<BlockQ5_K>.offset(of: \.scales), BlockQ5_K.scalesOffset)
        check("Q5_K.qh", MemoryLayout<BlockQ5_K>.offset(of: \.qh), BlockQ5_K.qhOffset)
        check("Q5_K.qs", MemoryLayout<BlockQ5_K>.offset(of: \.qs), BlockQ5_K.qsOffset)
        check("Q6_K size", MemoryLayout<BlockQ6_K>.size, BlockQ6_K.size)
        check("Q6_K.qh", MemoryLayout<BlockQ6_K>.offset(of: \.qh), BlockQ6_K.qhOffset)
        check("Q6_K.scales", MemoryLayout<BlockQ6_K>.offset(of: \.scales), BlockQ6_K.scalesOffset)
        check("Q6_K.d", MemoryLayout<BlockQ6_K>.offset(of: \.d), BlockQ6_K.dOffset)
        let structSizes: [(GGMLType, Int)] = [
            (.q4_0, BlockQ4_0.size), (.q4_1, BlockQ4_1.size), (.q5_0, BlockQ5_0.size), (.q5_1, BlockQ5_1.size),
            (.q8_0, BlockQ8_0.size), (.q4_K, BlockQ4_K.size), (.q5_K, BlockQ5_K.size), (.q6_K, BlockQ6_K.size),
        ]
        for (type, size) in structSizes {
            check("\(type).blockBytes", type.blockBytes, size)
        }
        check("F32 blockBytes", GGMLType.f32.blockBytes, MemoryLayout<Float>.size)
        check("F16 blockBytes", GGMLType.f16.blockBytes, MemoryLayout<UInt16>.size)
        check("BF16 blockBytes", GGMLType.bf16.blockBytes, MemoryLayout<UInt16>.size)
    }

    /// Runs `verifyLayouts()` once, the first time it is read (Swift globals initialise lazily
    /// and thread-safely).
    static let layoutsVerified: Bool = {
        verifyLayouts()
        return true
    }()
}
