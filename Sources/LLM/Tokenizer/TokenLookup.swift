/// Exact lookup from a byte string to the token id whose stored text it is, without building a
/// `String` per query: the hot operation of the SentencePiece merge loop. Open addressing over
/// FNV-1a hashes; all token texts live in one byte blob.
struct TokenLookup: Sendable {
    /// Token texts back to back; token `i` is `blob[offsets[i]..<offsets[i + 1]]`.
    private let blob: [UInt8]
    private let offsets: [Int32]  // (V + 1)
    /// Token id per slot, or -1 when empty.
    private let slots: [Int32]

    /// - Parameter texts: the stored text of every token, by id. When two ids share a text the
    ///   later one wins, as in llama.cpp's `token_to_id`.
    init(texts: [String]) {
        var blob = [UInt8]()
        var offsets = [Int32]()
        offsets.reserveCapacity(texts.count + 1)
        offsets.append(0)
        for text in texts {
            blob.append(contentsOf: text.utf8)
            offsets.append(Int32(blob.count))
        }
        var capacity = 16
        while capacity < 2 * texts.count { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        blob.withUnsafeBufferPointer { b in
            for id in texts.indices {
                let start = Int(offsets[id]), end = Int(offsets[id + 1])
                let key = UnsafeBufferPointer(rebasing: b[start..<end])
                var i = Self.hash(key) & (capacity - 1)
                while slots[i] >= 0 {
                    let other = Int(slots[i])
                    if b[Int(offsets[other])..<Int(offsets[other + 1])].elementsEqual(key) { break }
                    i = (i + 1) & (capacity - 1)
                }
                slots[i] = Int32(id)
            }
        }
        self.blob = blob
        self.offsets = offsets
        self.slots = slots
    }

    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// The id of the token whose text is exactly `bytes`, or nil.
    @inline(__always)
    func id(of bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let mask = slots.count - 1
        var i = Self.hash(bytes) & mask
        return slots.withUnsafeBufferPointer { s in
            blob.withUnsafeBufferPointer { b in
                while true {
                    let id = Int(s[i])
                    if id < 0 { return nil }
                    let start = Int(offsets[id]), end = Int(offsets[id + 1])
                    if end - start == bytes.count {
                        var equal = true
                        for k in 0..<bytes.count where b[start + k] != bytes[k] {
                            equal = false
                            break
                        }
                        if equal { return id }
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }

    /// The id of the token whose text is `text`, or nil.
    func id(of text: String) -> Int? {
        var text = text
        return text.withUTF8 { id(of: $0) }
    }
}
