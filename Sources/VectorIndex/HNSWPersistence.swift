import Foundation
import Tensor

// MARK: - Serialization

// Little-endian layout (``HNSWIndex/serialized(includeVectors:)``):
//   header   112 bytes: magic "SSHNSW01", version u32, D u32, M u32, efConstruction u32,
//            efSearch u32, flags u32 (bit 0: vectors included), purgeFraction f64,
//            seed u64, generator state 4 × u64, N u64, ΣL u64, entry point i64, top layer i32,
//            reserved u32
//   ids      (N) i64           levels (N) u8           deleted (N) u8
//   links0   (N, 1 + M0) u32   upper  (ΣL, 1 + M) u32  vectors (N, D) f32 (if flag)
//   checksum u64 (FNV-1a over 64-bit words of everything before it)

extension HNSWIndex {
    static let magic = Array("SSHNSW01".utf8)
    static let formatVersion: UInt32 = 1
    static let headerBytes = 112

    /// The whole index as bytes, for storing next to the vectors (e.g. a SQLite BLOB).
    ///
    /// Size ≈ N·(18 + 4·(1 + 2M)) + 4·(1 + M)·ΣL (+ 4·N·D with vectors) bytes: ≈ 150 B per node
    /// for the graph, 1.5 KB more per 384-d vector.
    /// - Parameter includeVectors: `false` writes the graph only; ``init(serialized:vectors:)`` then
    ///   takes the vectors from the caller's store (2.9 MB instead of 34 MB for 20k × 384).
    /// - Returns: the serialized bytes.
    public func serialized(includeVectors: Bool = true) -> [UInt8] {
        let n = ids.count
        var w = ByteWriter(capacity: Self.headerBytes + n * (18 + 4 * (1 + m0) + (includeVectors ? 4 * dimension : 0))
                           + upper.count * 4 + 8)
        w.bytes.append(contentsOf: Self.magic)
        for v in [Self.formatVersion, UInt32(dimension), UInt32(m), UInt32(clamping: parameters.efConstruction),
                  UInt32(clamping: efSearch), includeVectors ? 1 : 0] { w.put(v) }
        w.put(parameters.purgeFraction.bitPattern)
        w.put(parameters.seed)
        for v in [rng.state.0, rng.state.1, rng.state.2, rng.state.3, UInt64(n), UInt64(upper.count / (1 + m))] { w.put(v) }
        w.put(Int64(entryPoint))
        w.put(Int32(maxLevel))
        w.put(UInt32(0))
        w.put(ids.base, count: n)
        w.put(levels.base, count: n)
        w.put(deleted.base, count: n)
        // Entries past a list's count may be stale (pruned lists shrink): written as zeros.
        for record in stride(from: 0, to: links0.count, by: 1 + m0) { w.putList(links0.base + record, width: 1 + m0) }
        for record in stride(from: 0, to: upper.count, by: 1 + m) { w.putList(upper.base + record, width: 1 + m) }
        if includeVectors {
            vectors.base.withMemoryRebound(to: UInt32.self, capacity: vectors.count) { w.put($0, count: vectors.count) }
        }
        w.put(Self.checksum(w.bytes))
        return w.bytes
    }

    /// Decodes ``serialized(includeVectors:)`` bytes, validating every count, layer and neighbour
    /// against the header and the bytes left before reading: bad bytes throw, never crash.
    /// - Parameters:
    ///   - bytes: the serialized index.
    ///   - source: for graph-only bytes, returns the vector of an id, or `nil` when the caller's
    ///     store no longer has it: that node becomes removed (a tombstone routing with a zero
    ///     vector until the next purge), so the index follows the store. Ignored when bytes hold vectors.
    /// - Throws: ``VectorIndexError/corruptData(what:offset:detail:)``; for a bad vector from
    ///   `source`, ``VectorIndexError/wrongDimension(id:expected:actual:)`` or
    ///   ``VectorIndexError/nonFiniteValue(id:position:)``.
    public convenience init(serialized bytes: [UInt8], vectors source: ((Int64) throws -> [Float]?)? = nil) throws {
        let h = try bytes.withUnsafeBytes { try Self.readHeader($0) }
        try self.init(dimension: h.dimension, parameters: h.parameters)
        efSearch = h.efSearch
        rng = Xoshiro256(state: h.rngState)
        try bytes.withUnsafeBytes { raw in
            var r = ByteReader(bytes: raw, offset: Self.headerBytes)
            try readBody(&r, header: h)
        }
        if !h.hasVectors {
            guard let source else {
                throw VectorIndexError.corruptData(what: "vectors", offset: Self.headerBytes,
                                                   detail: "graph-only data needs a vector source")
            }
            try loadVectors(from: source)
        }
    }

    // MARK: Decoding

    struct Header {
        var dimension: Int, parameters: Parameters, efSearch: Int, hasVectors: Bool
        var rngState: (UInt64, UInt64, UInt64, UInt64)
        var nodes: Int, upperRecords: Int, entryPoint: Int, maxLevel: Int
    }

    /// Checks magic, checksum and header fields, and that the body has exactly the implied size.
    static func readHeader(_ raw: UnsafeRawBufferPointer) throws -> Header {
        func corrupt(_ what: String, _ offset: Int, _ detail: String) -> VectorIndexError {
            .corruptData(what: what, offset: offset, detail: detail)
        }
        guard raw.count >= headerBytes + 8 else {
            throw corrupt("header", 0, "\(raw.count) bytes, at least \(headerBytes + 8) needed")
        }
        guard Array(raw[0..<8]) == magic else { throw corrupt("magic", 0, "not an HNSW index (expected SSHNSW01)") }
        let stored = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self))
        let computed = checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 8)]))
        guard stored == computed else {
            throw corrupt("checksum", raw.count - 8, "stored \(hex(stored)), computed \(hex(computed))")
        }
        var r = ByteReader(bytes: raw, offset: 8)
        let version = try r.read(UInt32.self, "version")
        guard version == formatVersion else { throw corrupt("version", 8, "\(version), expected \(formatVersion)") }
        let d = Int(try r.read(UInt32.self, "dimension")), m = Int(try r.read(UInt32.self, "M"))
        let efC = Int(try r.read(UInt32.self, "efConstruction")), efS = Int(try r.read(UInt32.self, "efSearch"))
        let flags = try r.read(UInt32.self, "flags")
        guard (1...(1 << 16)).contains(d) else { throw corrupt("dimension", 12, "\(d), expected 1...65536") }
        guard (2...256).contains(m) else { throw corrupt("M", 16, "\(m), expected 2...256") }
        guard efC >= 1, efS >= 1 else { throw corrupt("ef", 20, "efConstruction \(efC), efSearch \(efS), expected ≥ 1") }
        guard flags <= 1 else { throw corrupt("flags", 28, "\(flags), expected 0 or 1") }
        let purge = Double(bitPattern: try r.read(UInt64.self, "purgeFraction"))
        guard purge.isFinite, purge >= 0 else { throw corrupt("purgeFraction", 32, "\(purge), expected finite ≥ 0") }
        let seed = try r.read(UInt64.self, "seed")
        let state = (try r.read(UInt64.self, "rng"), try r.read(UInt64.self, "rng"),
                     try r.read(UInt64.self, "rng"), try r.read(UInt64.self, "rng"))
        guard state != (0, 0, 0, 0) else { throw corrupt("rng", 48, "all-zero generator state") }
        let n64 = try r.read(UInt64.self, "node count"), upper64 = try r.read(UInt64.self, "upper records")
        let entry = Int(try r.read(Int64.self, "entry point")), top = Int(try r.read(Int32.self, "top layer"))
        _ = try r.read(UInt32.self, "reserved")

        // Exact body size, overflow-checked, before anything is allocated.
        let body = raw.count - headerBytes - 8, m0 = 2 * m
        let perNode = 8 + 1 + 1 + 4 * (1 + m0) + (flags == 1 ? 4 * d : 0), perUpper = 4 * (1 + m)
        guard n64 <= UInt64(body / perNode), upper64 <= UInt64(body / perUpper) else {
            throw corrupt("node count", 80, "\(n64) nodes / \(upper64) upper records do not fit in \(body) bytes")
        }
        let n = Int(n64), upperRecords = Int(upper64)
        guard n * perNode + upperRecords * perUpper == body else {
            throw corrupt("body", headerBytes, "\(body) bytes, \(n) nodes and \(upperRecords) upper records need \(n * perNode + upperRecords * perUpper)")
        }
        guard upperRecords <= n * levelCap else { throw corrupt("upper records", 88, "\(upperRecords) > N × \(levelCap)") }
        guard n == 0 ? (entry == -1 && top == -1) : ((0..<n).contains(entry) && (0...levelCap).contains(top)) else {
            throw corrupt("entry point", 96, "entry \(entry), top layer \(top) for \(n) nodes")
        }
        let parameters = Parameters(m: m, efConstruction: efC, efSearch: efS, seed: seed, purgeFraction: purge)
        return Header(dimension: d, parameters: parameters, efSearch: efS, hasVectors: flags == 1, rngState: state,
                      nodes: n, upperRecords: upperRecords, entryPoint: entry, maxLevel: top)
    }

    /// Reads ids, layers, flags, links and vectors into this (empty) index, checking the graph's invariants.
    private func readBody(_ r: inout ByteReader, header h: Header) throws {
        func corrupt(_ what: String, _ offset: Int, _ detail: String) -> VectorIndexError {
            .corruptData(what: what, offset: offset, detail: detail)
        }
        let n = h.nodes
        reserve(nodes: n)
        for _ in 0..<n { ids.append(repeating: try r.read(Int64.self, "id"), count: 1) }
        var upperTotal = 0, highest = -1
        for s in 0..<n {
            let level = Int(try r.read(UInt8.self, "level"))
            guard level <= Self.levelCap else { throw corrupt("level of node \(s)", r.offset - 1, "\(level) > \(Self.levelCap)") }
            upperOffset.append(repeating: upperTotal * (1 + m), count: 1)
            levels.append(repeating: UInt8(level), count: 1)
            upperTotal += level
            highest = max(highest, level)
        }
        guard upperTotal == h.upperRecords else {
            throw corrupt("levels", r.offset - n, "sum \(upperTotal), header says \(h.upperRecords)")
        }
        guard highest == h.maxLevel, n == 0 || Int(levels[h.entryPoint]) == h.maxLevel else {
            throw corrupt("levels", r.offset - n, "top layer \(highest), entry point on \(n == 0 ? -1 : Int(levels[h.entryPoint])), header says \(h.maxLevel)")
        }
        for s in 0..<n {
            let flag = try r.read(UInt8.self, "deleted flag")
            guard flag <= 1 else { throw corrupt("deleted flag of node \(s)", r.offset - 1, "\(flag), expected 0 or 1") }
            deleted.append(repeating: flag, count: 1)
            if flag == 1 {
                tombstones += 1
            } else if slotOf.updateValue(UInt32(s), forKey: ids[s]) != nil {
                throw corrupt("id of node \(s)", Self.headerBytes + 8 * s, "id \(ids[s]) appears twice")
            }
        }
        guard n == 0 || !slotOf.isEmpty else { throw corrupt("deleted flags", r.offset - n, "every node is deleted") }
        // Lists: each neighbour must exist, differ from the node and reach the list's layer.
        func readList(into buffer: NodeBuffer<UInt32>, node s: Int, level: Int) throws {
            let capacity = level == 0 ? m0 : m, start = r.offset
            let count = try r.read(UInt32.self, "link count")
            guard count <= capacity else {
                throw corrupt("link count of node \(s) on layer \(level)", start, "\(count) > \(capacity)")
            }
            buffer.append(repeating: count, count: 1)
            for j in 0..<capacity {
                let v = try r.read(UInt32.self, "neighbour")
                guard j >= Int(count) || (Int(v) < n && Int(v) != s && Int(levels[Int(v)]) >= level) else {
                    throw corrupt("neighbour \(j) of node \(s) on layer \(level)", r.offset - 4,
                                  "slot \(v) (of \(n)) is itself, absent or below layer \(level)")
                }
                buffer.append(repeating: j < Int(count) ? v : 0, count: 1)
            }
        }
        for s in 0..<n { try readList(into: links0, node: s, level: 0) }
        for s in 0..<n where levels[s] > 0 {
            for level in 1...Int(levels[s]) { try readList(into: upper, node: s, level: level) }
        }
        if h.hasVectors {
            for i in 0..<(n * dimension) {
                let v = Float(bitPattern: try r.read(UInt32.self, "vector value"))
                guard v.isFinite else {
                    throw corrupt("vector of node \(i / dimension)", r.offset - 4, "value \(i % dimension) is \(v)")
                }
                vectors.append(repeating: v, count: 1)
            }
        }
        entryPoint = h.entryPoint
        maxLevel = h.maxLevel
    }

    /// Fills the vectors of a graph-only index from the caller's store, in slot order; live
    /// nodes the store lacks are removed (then purged if they pass ``Parameters/purgeFraction``).
    private func loadVectors(from source: (Int64) throws -> [Float]?) throws {
        for s in 0..<ids.count {
            let id = ids[s]
            guard deleted[s] == 0, let v = try source(id) else {
                if deleted[s] == 0 {
                    deleted[s] = 1
                    tombstones += 1
                    slotOf[id] = nil
                }
                vectors.append(repeating: 0, count: dimension)
                continue
            }
            try v.withUnsafeBufferPointer { v in
                try Self.checkVector(v, id: id, dimension: dimension)
                vectors.append(v)
            }
        }
        if slotOf.isEmpty {
            removeAllNodes()
        } else if Double(tombstones) > parameters.purgeFraction * Double(ids.count) {
            purgeDeleted()
        }
    }

    /// FNV-1a over 64-bit little-endian words (then the tail bytes): a single changed word always
    /// changes the result (xor and the odd multiplier are bijections).
    static func checksum(_ raw: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        let prime: UInt64 = 0x0000_0100_0000_01B3
        let words = raw.count / 8
        for i in 0..<words {
            hash = (hash ^ UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) &* prime
        }
        for i in (8 * words)..<raw.count { hash = (hash ^ UInt64(raw[i])) &* prime }
        return hash
    }

    static func checksum(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { checksum($0) } }

    private static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
}

/// Appends little-endian values to a byte array.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A `[count, neighbours...]` record of `width` words, zero past `count`.
    mutating func putList(_ list: UnsafePointer<UInt32>, width: Int) {
        let count = Int(list[0])
        put(list, count: 1 + count)
        for _ in (1 + count)..<width { put(UInt32(0)) }
    }

    /// `count` integers from memory (one copy on little-endian hosts).
    mutating func put<T: FixedWidthInteger>(_ values: UnsafePointer<T>, count: Int) {
        #if _endian(little)
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: values, count: count * MemoryLayout<T>.size))
        #else
        for i in 0..<count { put(values[i]) }
        #endif
    }
}

/// Reads little-endian values, checking the bytes left before every read.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int

    mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - offset >= size else {
            throw VectorIndexError.corruptData(what: what, offset: offset,
                                               detail: "needs \(size) bytes, \(bytes.count - offset) left")
        }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return value
    }
}
