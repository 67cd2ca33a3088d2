/// GPT-2's byte-level alphabet (`bytes_to_unicode`): every byte gets a printable Unicode
/// character so that BPE vocabularies can be stored as text. Printable Latin-1 bytes
/// (`!`...`~`, `¡`...`¬`, `®`...`ÿ`) stand for themselves; the other 68 bytes map in order to
/// U+0100...U+0143 (so a space is `Ġ` U+0120 and a newline `Ċ` U+010A).
enum ByteLevel {
    /// byte -> the scalar value of its character.
    static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// scalar value (< 324) -> byte, or -1 for characters outside the alphabet.
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in byteToScalar.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// The bytes a byte-level token string stands for, or nil when it holds characters outside
    /// the alphabet (such tokens are taken as plain UTF-8 text).
    static func decode(_ token: String) -> [UInt8]? {
        var bytes = [UInt8]()
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard scalar.value < 324, case let b = scalarToByte[Int(scalar.value)], b >= 0 else { return nil }
            bytes.append(UInt8(b))
        }
        return bytes
    }

    /// The byte-level token string for raw bytes.
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToScalar[Int(b)])!) }
        return String(s)
    }
}
