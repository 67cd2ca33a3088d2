import Foundation
import XCTest
@testable import Generator

/// Real HTTP against `Fixtures/openai_server.py` on a loopback port.
final class OpenAIBackendTests: XCTestCase {
    func testCompletionsAndChatInParallel() throws {
        let server = try TestServer()
        for chat in [false, true] {
            let backend = OpenAIBackend(.init(baseURL: server.baseURL, model: "test", chat: chat, parallel: 4))
            let prompts = (0..<10).map { "### Instruction:\nExplain item \($0).\n\n### Response:\n" }
            let out = backend.complete(prompts, settings: .respond)
            XCTAssertEqual(out.count, 10)
            for (i, c) in out.enumerated() where c.error == nil && c.finishReason == .stop && !c.text.hasPrefix("I'm sorry") {
                XCTAssertTrue(c.text.contains("Explain item \(i)."), "completion \(i) out of order: \(c.text)")
            }
            XCTAssertTrue(out.allSatisfy { $0.error == nil })
        }
        XCTAssertEqual(try server.stats()["requests"], 20)
        // A base URL that already ends in /v1 works too.
        let v1 = OpenAIBackend(.init(baseURL: server.baseURL.appendingPathComponent("v1"), model: "test"))
        XCTAssertNil(v1.complete(["### Instruction:\nHi.\n\n### Response:\n"], settings: .respond)[0].error)
    }

    func testRetriesWithBackoffAfter503() throws {
        let server = try TestServer(arguments: ["--fail-first", "3"])
        let backend = OpenAIBackend(.init(baseURL: server.baseURL, model: "test", parallel: 1, attempts: 4, backoff: 0.05))
        let out = backend.complete(["### Instruction:\nName a statin.\n\n### Response:\n"], settings: .respond)
        XCTAssertNil(out[0].error, out[0].error ?? "")
        XCTAssertEqual(try server.stats(), ["requests": 4, "failed": 3])
        // Too few attempts: the example fails with the server's message, the batch goes on.
        let server2 = try TestServer(arguments: ["--fail-first", "2"])
        let few = OpenAIBackend(.init(baseURL: server2.baseURL, model: "test", parallel: 1, attempts: 2, backoff: 0.01))
        let two = few.complete(["### Instruction:\nA.\n\n### Response:\n", "### Instruction:\nB.\n\n### Response:\n"], settings: .respond)
        XCTAssertTrue(two[0].error?.contains("HTTP 503") == true && two[0].error?.contains("after 2 attempts") == true, two[0].error ?? "")
        XCTAssertNil(two[1].error)
    }

    func testAPIKeyIsSentAsABearerToken() throws {
        let server = try TestServer(arguments: ["--api-key", "sk-test-42"])
        let prompt = ["### Instruction:\nName a statin.\n\n### Response:\n"]
        let keyed = OpenAIBackend(.init(baseURL: server.baseURL, model: "test", apiKey: "sk-test-42", attempts: 1))
        XCTAssertNil(keyed.complete(prompt, settings: .respond)[0].error)
        for key in [nil, "sk-wrong"] {
            let other = OpenAIBackend(.init(baseURL: server.baseURL, model: "test", apiKey: key, attempts: 1))
            let e = other.complete(prompt, settings: .respond)[0].error
            XCTAssertTrue(e?.contains("HTTP 401") == true && e?.contains("invalid API key") == true, e ?? "no error")
        }
    }

    func testPerExampleErrors() throws {
        let server = try TestServer()
        let rejected = OpenAIBackend(.init(baseURL: server.baseURL, model: "reject", attempts: 3, backoff: 0.01))
        let r = rejected.complete(["x"], settings: .respond)[0]
        XCTAssertEqual(r.finishReason, .error)
        XCTAssertTrue(r.error?.contains("HTTP 400") == true && r.error?.contains("unknown model") == true, r.error ?? "")
        XCTAssertEqual(try server.stats()["requests"], 1, "a 400 is not retried")

        let slow = OpenAIBackend(.init(baseURL: server.baseURL, model: "slow", attempts: 1, timeout: 0.5))
        let started = Date()
        let t = slow.complete(["x"], settings: .respond)[0]
        XCTAssertNotNil(t.error)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4.5, "the timeout did not apply")

        let port = closedPort()
        let down = OpenAIBackend(.init(baseURL: URL(string: "http://127.0.0.1:\(port)")!, model: "m", attempts: 2, backoff: 0.01))
        let d = down.complete(["a", "b"], settings: .respond)
        XCTAssertEqual(d.count, 2)
        XCTAssertTrue(d.allSatisfy { $0.error?.contains("cannot reach http://127.0.0.1:\(port)/v1/completions") == true }, d[0].error ?? "")
    }

    /// The socket client's response parser on the three body framings servers use.
    func testHTTPBodyFramings() throws {
        let json = #"{"choices":[{"text":"ok","finish_reason":"stop"}]}"#
        let lengthFramed = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)"
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n\(json.prefix(16))\r\n\(String(json.utf8.count - 16, radix: 16));x=1\r\n\(json.dropFirst(16))\r\n0\r\n\r\n"
        let closeFramed = "HTTP/1.0 503 Service Unavailable\r\nServer: x\r\n\r\nbusy"
        XCTAssertEqual(String(decoding: try PlainHTTP.parse(Data(lengthFramed.utf8)).body, as: UTF8.self), json)
        XCTAssertEqual(String(decoding: try PlainHTTP.parse(Data(chunked.utf8)).body, as: UTF8.self), json)
        let c = try PlainHTTP.parse(Data(closeFramed.utf8))
        XCTAssertEqual(c.status, 503); XCTAssertEqual(String(decoding: c.body, as: UTF8.self), "busy")
        XCTAssertThrowsError(try PlainHTTP.parse(Data("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort".utf8)))
        XCTAssertThrowsError(try PlainHTTP.parse(Data("SSH-2.0-OpenSSH\r\n\r\n".utf8)))
        XCTAssertThrowsError(try PlainHTTP.parse(Data("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".utf8)))
    }
}
