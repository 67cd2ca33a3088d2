import Foundation

/// A request body parsed as a JSON object, read field by field with errors that name the field.
///
/// Every field must be read or declared ignorable; `checkNoUnknownFields` then rejects the rest,
/// so a misspelt option (`max_token`) is an error instead of being silently dropped.
struct JSONBody {
    private let object: [String: Any]
    private var known: Set<String> = []

    /// - Throws: `ServerError.invalidRequest` when `data` is not JSON or not an object.
    init(_ data: Data) throws {
        guard !data.isEmpty else { throw ServerError.invalidRequest(message: "the request body is empty; expected a JSON object", param: nil) }
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw ServerError.invalidRequest(message: "the request body is not valid JSON: \(Self.reason(error))", param: nil)
        }
        guard let object = value as? [String: Any] else {
            throw ServerError.invalidRequest(message: "the request body must be a JSON object", param: nil)
        }
        self.object = object
    }

    private static func reason(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }

    /// Marks fields as accepted and ignored (e.g. `user`).
    mutating func ignore(_ names: String...) { known.formUnion(names) }

    /// - Throws: `ServerError.unknownField` for the first (alphabetically) field never read.
    func checkNoUnknownFields() throws {
        if let field = object.keys.filter({ !known.contains($0) }).sorted().first { throw ServerError.unknownField(field) }
    }

    /// The raw value of `name`, nil when absent or JSON null.
    mutating func raw(_ name: String) -> Any? {
        known.insert(name)
        guard let v = object[name], !(v is NSNull) else { return nil }
        return v
    }

    // MARK: Typed fields

    mutating func string(_ name: String) throws -> String? {
        guard let v = raw(name) else { return nil }
        guard let s = v as? String else { throw wrongType(name, "a string", v) }
        return s
    }

    mutating func bool(_ name: String) throws -> Bool? {
        guard let v = raw(name) else { return nil }
        guard let n = v as? NSNumber, Self.isBool(n) else { throw wrongType(name, "a boolean", v) }
        return n.boolValue
    }

    mutating func int(_ name: String, in range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let v = raw(name) else { return nil }
        guard let n = v as? NSNumber, !Self.isBool(n), let i = Int(exactly: n.doubleValue) else { throw wrongType(name, "an integer", v) }
        if let range, !range.contains(i) {
            throw ServerError.invalidRequest(message: "'\(name)' is \(i); expected \(range.lowerBound)...\(range.upperBound)", param: name)
        }
        return i
    }

    mutating func double(_ name: String, in range: ClosedRange<Double>? = nil) throws -> Double? {
        guard let v = raw(name) else { return nil }
        guard let n = v as? NSNumber, !Self.isBool(n), n.doubleValue.isFinite else { throw wrongType(name, "a number", v) }
        let d = n.doubleValue
        if let range, !range.contains(d) {
            throw ServerError.invalidRequest(message: "'\(name)' is \(d); expected \(range.lowerBound)...\(range.upperBound)", param: name)
        }
        return d
    }

    /// A string or an array of strings (`stop`, `input`).
    mutating func strings(_ name: String, maxCount: Int? = nil) throws -> [String]? {
        guard let v = raw(name) else { return nil }
        let list: [String]
        if let s = v as? String {
            list = [s]
        } else if let a = v as? [Any], let strings = a as? [String] {
            list = strings
        } else {
            throw wrongType(name, "a string or an array of strings", v)
        }
        if let maxCount, list.count > maxCount {
            throw ServerError.invalidRequest(message: "'\(name)' has \(list.count) entries; at most \(maxCount) are allowed", param: name)
        }
        return list
    }

    /// A nested object.
    mutating func object(_ name: String) throws -> [String: Any]? {
        guard let v = raw(name) else { return nil }
        guard let o = v as? [String: Any] else { throw wrongType(name, "an object", v) }
        return o
    }

    /// An array of anything.
    mutating func array(_ name: String) throws -> [Any]? {
        guard let v = raw(name) else { return nil }
        guard let a = v as? [Any] else { throw wrongType(name, "an array", v) }
        return a
    }

    // MARK: Errors

    func wrongType(_ name: String, _ expected: String, _ value: Any) -> ServerError {
        .invalidRequest(message: "'\(name)' must be \(expected), not \(Self.describe(value))", param: name)
    }

    static func describe(_ value: Any) -> String {
        switch value {
        case let n as NSNumber: isBool(n) ? "a boolean" : "a number"
        case is String: "a string"
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        default: "null"
        }
    }

    /// JSONSerialization on Linux gives booleans as NSNumber; tell them apart from 0 and 1.
    static func isBool(_ n: NSNumber) -> Bool {
        String(cString: n.objCType) == "c"
    }
}
