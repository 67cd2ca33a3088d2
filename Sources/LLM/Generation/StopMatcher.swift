/// Watches generated text for stop strings while it streams out piece by piece.
///
/// A stop string may span several tokens ("<|im_" + "end|>"), so text that could be the start
/// of a stop string is held back until the following pieces show whether it is one. The stop is
/// the first stop string to be completed in the text (the earliest end; of two ending at the
/// same place, the longer), so the result does not depend on how the text was cut into pieces.
/// Matching is exact on Unicode scalars (UTF-8 bytes); no normalization.
///
/// ```swift
/// var stops = StopMatcher(["<|im_end|>", "\nUser:"])
/// for piece in pieces {
///     switch stops.append(piece) {
///     case let .text(t): print(t, terminator: "")
///     case let .stop(t, _): print(t); return
///     }
/// }
/// print(stops.finish())
/// ```
public struct StopMatcher: Sendable {
    /// What one piece of text produced.
    public enum Event: Equatable, Sendable {
        /// Text that can be shown: possibly empty while a possible stop string is held back.
        case text(String)
        /// A stop string was completed: `text` is what came before it and was not shown yet;
        /// the stop string and everything after it are dropped.
        case stop(text: String, stopString: String)
    }

    /// The stop strings, without empty ones.
    public let stopStrings: [String]
    private let stops: [[UInt8]]
    /// Bytes held back: the longest end of the text that is a proper prefix of a stop string.
    private var held: [UInt8] = []
    /// Set once a stop string was found; later pieces are ignored.
    public private(set) var isStopped = false

    /// - Parameter stopStrings: the strings that end generation (empty strings are ignored).
    public init(_ stopStrings: [String]) {
        self.stopStrings = stopStrings.filter { !$0.isEmpty }
        stops = self.stopStrings.map { Array($0.utf8) }
    }

    /// Bytes currently held back.
    public var heldBackCount: Int { held.count }

    /// Adds the next piece of decoded text.
    /// - Returns: the text that can now be shown, or the stop with the text before it.
    public mutating func append(_ piece: String) -> Event {
        guard !isStopped else { return .text("") }
        if stops.isEmpty { return .text(piece) }
        let checked = held.count  // no stop string ends inside the held bytes
        var buffer = held
        buffer.append(contentsOf: piece.utf8)
        if let (start, index) = firstMatch(in: buffer, endingAfter: checked) {
            isStopped = true
            held.removeAll()
            return .stop(text: String(decoding: buffer[..<start], as: UTF8.self), stopString: stopStrings[index])
        }
        let keep = longestPrefixSuffix(buffer)
        held = Array(buffer[(buffer.count - keep)...])
        return .text(String(decoding: buffer[..<(buffer.count - keep)], as: UTF8.self))
    }

    /// Ends the text: returns what was held back (empty after a stop).
    public mutating func finish() -> String {
        defer { held.removeAll() }
        return String(decoding: held, as: UTF8.self)
    }

    // MARK: Matching

    /// The stop string that ends first in `buffer` (ending after byte `checked`), as (start, index).
    private func firstMatch(in buffer: [UInt8], endingAfter checked: Int) -> (Int, Int)? {
        guard checked < buffer.count else { return nil }
        for end in (checked + 1)...buffer.count {
            var best: (start: Int, index: Int)?
            for (index, stop) in stops.enumerated() where stop.count <= end {
                let start = end - stop.count
                if best.map({ start < $0.start }) ?? true, buffer[start..<end].elementsEqual(stop) {
                    best = (start, index)
                }
            }
            if let best { return (best.start, best.index) }
        }
        return nil
    }

    /// The length of the longest end of `buffer` that is a proper prefix of some stop string.
    private func longestPrefixSuffix(_ buffer: [UInt8]) -> Int {
        let longest = stops.map(\.count).max() ?? 0
        var k = min(buffer.count, longest - 1)
        while k > 0 {
            let suffix = buffer[(buffer.count - k)...]
            if stops.contains(where: { $0.count > k && $0[..<k].elementsEqual(suffix) }) { return k }
            k -= 1
        }
        return 0
    }
}
