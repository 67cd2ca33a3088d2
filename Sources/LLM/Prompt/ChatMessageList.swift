import Foundation

/// What is wrong with a JSON `messages` array; `path` names the field ("messages[2].role").
public struct ChatMessagesError: LocalizedError, Equatable, Sendable {
    /// The field that is wrong, as a request parameter path.
    public var path: String
    public var message: String
    /// The message object has a key other than `role`, `content` and `name`.
    public var isUnknownField: Bool

    public var errorDescription: String? { message }
}

extension ChatMessage {
    /// Parses a JSON `messages` array, the one format of chat JSONL files (`generate --prompts`,
    /// `tune --data`) and of OpenAI chat requests: `[{"role", "content", "name"?}…]` with `role`
    /// one of `system`, `user`, `assistant` or `developer` (read as `system`), and `content` a
    /// string, null (empty) or an array of `{"type": "text", "text": string}` parts (joined).
    /// - Parameter value: the decoded JSON value of `messages` (`JSONSerialization`).
    /// - Returns: the messages, at least one.
    /// - Throws: ``ChatMessagesError`` naming the first wrong field.
    public static func list(fromJSON value: Any?) throws -> [ChatMessage] {
        func bad(_ path: String, _ message: String) -> ChatMessagesError {
            ChatMessagesError(path: path, message: message, isUnknownField: false)
        }
        guard let list = value as? [Any] else { throw bad("messages", "'messages' must be an array of message objects") }
        guard !list.isEmpty else { throw bad("messages", "'messages' is empty") }
        return try list.enumerated().map { i, item in
            let at = "messages[\(i)]"
            guard let m = item as? [String: Any] else { throw bad(at, "'\(at)' must be an object") }
            for key in m.keys.sorted() where !["role", "content", "name"].contains(key) {
                throw ChatMessagesError(path: "\(at).\(key)", message: "unknown field '\(at).\(key)'", isUnknownField: true)
            }
            guard let role = m["role"] as? String else { throw bad("\(at).role", "'\(at).role' must be a string") }
            guard ["system", "user", "assistant", "developer"].contains(role) else {
                throw bad("\(at).role", "'\(at).role' is '\(role)' (unknown role); expected system, user, assistant or developer")
            }
            let content: String
            switch m["content"] {
            case let s as String: content = s
            case nil, is NSNull: content = ""
            case let parts as [Any]:
                content = try parts.enumerated().map { j, part in
                    guard let p = part as? [String: Any], p["type"] as? String == "text", let text = p["text"] as? String else {
                        throw bad("\(at).content", "'\(at).content[\(j)]' must be {\"type\": \"text\", \"text\": string}")
                    }
                    return text
                }.joined()
            default:
                throw bad("\(at).content", "'\(at).content' must be a string or an array of text parts")
            }
            return ChatMessage(role: role == "developer" ? "system" : role, content: content)
        }
    }
}
