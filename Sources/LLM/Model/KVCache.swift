/// The keys and values one sequence has produced, per layer, for attention at later positions.
///
/// Layout: one allocation `(L, 2, capacity, NKV*HS)` of float32 or float16 elements; rows are
/// positions. Float16 halves the memory (32 sequences x 1,024 tokens of SmolLM2: 755 MB instead
/// of 1.5 GB) at a cost of about 1e-3 relative error per stored value.
public final class KVCache: @unchecked Sendable {
    // @unchecked: a cache belongs to one sequence; the model writes disjoint rows from workers.

    /// Storage precision of the cached keys and values.
    public enum Precision: String, Sendable, CaseIterable {
        case f32, f16
        var bytes: Int { self == .f32 ? 4 : 2 }
    }

    public let layers: Int
    /// Maximum positions this cache holds.
    public let capacity: Int
    /// NKV*HS.
    public let width: Int
    public let precision: Precision
    /// Positions stored so far (the next token's position).
    public internal(set) var count = 0
    let storage: UnsafeMutableRawPointer

    /// - Parameters:
    ///   - config: the model's configuration (layers, key/value width).
    ///   - capacity: maximum positions (prompt plus generated tokens).
    ///   - precision: element type of the stored keys/values.
    public init(config: ModelConfig, capacity: Int, precision: Precision = .f16) {
        (layers, width, self.capacity, self.precision) = (config.layerCount, config.kvWidth, max(1, capacity), precision)
        storage = .allocate(byteCount: layers * 2 * self.capacity * width * precision.bytes, alignment: 64)
    }

    /// A cache of `layers` layers of `capacity` rows of `width` elements (tests).
    init(layers: Int, width: Int, capacity: Int, precision: Precision) {
        (self.layers, self.width, self.capacity, self.precision) = (layers, width, max(1, capacity), precision)
        storage = .allocate(byteCount: layers * 2 * self.capacity * width * precision.bytes, alignment: 64)
    }

    deinit { storage.deallocate() }

    /// Bytes held.
    public var byteCount: Int { layers * 2 * capacity * width * precision.bytes }

    /// Forgets every position (keeps the memory).
    public func reset() { count = 0 }

    /// Drops positions from `newCount` on (e.g. to rewind a chat turn).
    public func truncate(to newCount: Int) { count = max(0, min(count, newCount)) }

    /// Makes this cache hold the same positions as `other` (a cache of the same model, precision
    /// and at least `other.count` capacity), e.g. to fork a shared prompt.
    public func copy(from other: KVCache) {
        precondition(other.layers == layers && other.width == width && other.precision == precision
            && other.count <= capacity, "KVCache.copy: incompatible caches")
        let rowBytes = width * precision.bytes
        for l in 0..<layers {
            for which in 0..<2 { base(l, which).copyMemory(from: other.base(l, which), byteCount: other.count * rowBytes) }
        }
        count = other.count
    }

    /// Start of the key (`which == 0`) or value (`1`) rows of `layer`.
    @inline(__always)
    func base(_ layer: Int, _ which: Int) -> UnsafeMutableRawPointer {
        storage + ((layer * 2 + which) * capacity * width) * precision.bytes
    }

    /// Stores `rows` key and value rows `(rows, width)` at positions `start...`.
    func store(layer: Int, start: Int, rows: Int, keys: UnsafePointer<Float>, keyStride: Int,
               values: UnsafePointer<Float>, valueStride: Int) {
        for (which, src, stride) in [(0, keys, keyStride), (1, values, valueStride)] {
            let dst = base(layer, which)
            for r in 0..<rows {
                let s = src + r * stride
                switch precision {
                case .f32:
                    (dst.assumingMemoryBound(to: Float.self) + (start + r) * width).update(from: s, count: width)
                case .f16:
                    let d = dst.assumingMemoryBound(to: Float16.self) + (start + r) * width
                    for i in 0..<width { d[i] = Float16(s[i]) }
                }
            }
        }
    }

    /// Float32 keys and values `(p + t, width)` for a prompt step of `t` rows at positions
    /// `p..<p+t`: positions before `p` from the cache, the step's own rows as computed (`keys` and
    /// `values`, rows `width` apart), not as stored, so an f16 cache rounds only what earlier
    /// steps wrote and a prompt's attention over itself stays float32.
    func loadForStep(layer: Int, past p: Int, rows t: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                     keysOut: UnsafeMutablePointer<Float>, valuesOut: UnsafeMutablePointer<Float>) {
        load(layer: layer, which: 0, count: p, into: keysOut)
        load(layer: layer, which: 1, count: p, into: valuesOut)
        (keysOut + p * width).update(from: keys, count: t * width)
        (valuesOut + p * width).update(from: values, count: t * width)
    }

    /// Copies positions `0..<n` of `layer`'s keys (`which == 0`) or values to float32 `(n, width)`.
    func load(layer: Int, which: Int, count n: Int, into out: UnsafeMutablePointer<Float>) {
        let src = base(layer, which)
        switch precision {
        case .f32: out.update(from: src.assumingMemoryBound(to: Float.self), count: n * width)
        case .f16:
            let s = src.assumingMemoryBound(to: Float16.self)
            var i = 0
            let total = n * width
            while i + 8 <= total {
                let v = SIMD8<Float>(UnsafeRawPointer(s + i).loadUnaligned(as: SIMD8<Float16>.self))
                UnsafeMutableRawPointer(out + i).storeBytes(of: v, as: SIMD8<Float>.self)
                i += 8
            }
            while i < total { out[i] = Float(s[i]); i += 1 }
        }
    }
}
