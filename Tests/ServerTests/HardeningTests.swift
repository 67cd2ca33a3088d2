import Foundation
import LLM
import XCTest
import TestSupport
@testable import Server

/// The server's hardening (issue 26) over real HTTP: loopback by default, the body-size limit
/// (with and without a Content-Length, and a Content-Length that claims 1 TB), the API-key
/// comparison, and model names that cannot reach the file system.
final class HardeningTests: XCTestCase {
    override class func tearDown() {
        removeWithSideFiles(ServerFixture.corpusFile)  // as ServerTests does: the server keeps it open
        super.tearDown()
    }

    /// A default-configured server answers on 127.0.0.1 and is not reachable on this machine's
    /// other addresses.
    func testBindsLoopbackByDefault() async throws {
        var configuration = OpenAIServer.Configuration()
        XCTAssertEqual(configuration.host, "127.0.0.1")
        XCTAssertEqual(configuration.maxBodyBytes, 1 << 20, "the documented default body limit is 1 MiB")
        configuration.port = 0
        // Its own model: shutting this server down stops its models' schedulers, and the shared
        // fixture's must keep running for the other tests.
        let served = try ServerFixture.servedModel(id: "loopback", options: .init(maxBatch: 1, maxQueue: 1))
        let server = OpenAIServer(models: [served], configuration: configuration)
        let (port, task) = try await ServerFixture.start(server)
        let local = try await curl("http://127.0.0.1:\(port)/health", method: "GET", key: nil)
        XCTAssertEqual(local.status, 200, local.body)
        let addresses = try await runProcess("/bin/hostname", ["-I"]).stdout.split(separator: " ").map(String.init)
            .filter { !$0.hasPrefix("127.") && $0 != "::1" && !$0.isEmpty && !$0.contains("\n") }
        for address in addresses.map({ $0.contains(":") ? "[\($0)]" : $0 }) {
            let out = try await runProcess("/usr/bin/curl", ["-sS", "--max-time", "2", "-o", "/dev/null", "-w", "%{http_code}",
                                                             "http://\(address):\(port)/health"])
            print("GET http://\(address):\(port)/health -> exit \(out.status), http \(out.stdout): \(out.stderr.prefix(80))")
            XCTAssertNotEqual(out.status, 0, "reachable on \(address)")
        }
        await server.shutdown()
        _ = try? await task.value
    }

    /// 413 with an OpenAI-style JSON error for a body over the limit: with a Content-Length, in
    /// chunks without one, and with a Content-Length of 1 TB that is refused before any body is read.
    func testBodyLimitWithAndWithoutContentLength() async throws {
        let f = try await ServerFixture.get()
        let chat = f.baseURL + "/v1/chat/completions"
        let big = #"{"messages": [{"role": "user", "content": ""# + String(repeating: "a", count: 200_000) + #""}]}"#
        for (what, extra) in [("content-length", [String]()), ("chunked", ["-H", "Transfer-Encoding: chunked"])] {
            let (status, text) = try await curl(chat, json: big, extra: extra)
            XCTAssertEqual(status, 413, "\(what): \(text)")
            let error = try jsonObject(text)["error"] as? [String: Any]
            XCTAssertEqual(error?["code"] as? String, "request_too_large", what)
            print("\(what) body of \(big.utf8.count) bytes: \(status) \(error?["message"] as? String ?? "")")
        }
        // A claimed 1 TB body with 2 bytes sent: refused from the header at once.
        let start = Date()
        let (status, text) = try await curl(chat, json: "{}", extra: ["-H", "Content-Length: 1099511627776", "--max-time", "5"])
        XCTAssertEqual(status, 413, text)
        print(String(format: "Content-Length 2^40: %d in %.0f ms", status, Date().timeIntervalSince(start) * 1000))
    }

    /// The key comparison: exact match only, whatever the length or prefix of the guess.
    func testAPIKeyComparison() {
        let key = "s3cret-key"
        XCTAssertTrue(OpenAIServer.authorizationMatches("Bearer s3cret-key", key: key))
        for guess in ["", "Bearer", "Bearer ", "Bearer s3cret", "Bearer s3cret-ke", "Bearer s3cret-keyy", "Bearer s3cret-kez",
                      "bearer s3cret-key", "Bearer s3cret-key\0", "s3cret-key", "Bearer S3CRET-KEY"] {
            XCTAssertFalse(OpenAIServer.authorizationMatches(guess, key: key), guess.debugDescription)
        }
    }

    /// A model name is looked up among the ids registered at startup and nothing else: paths,
    /// traversals and adapter files are 404 `model_not_found`, and an `adapter` field is an
    /// unknown field. The error names the id, never a file's contents.
    func testModelNamesCannotReachTheFileSystem() async throws {
        let f = try await ServerFixture.get()
        let names = ["../../etc/passwd", "/etc/passwd", ServerFixture.modelPath, "smollm2/../smollm2", "./smollm2",
                     "file:///etc/passwd", "~/.ssh/id_rsa", "SMOLLM2", "smollm2\u{0}"]
        for name in names {
            for path in ["/v1/chat/completions", "/v1/completions"] {
                let body = try String(decoding: JSONSerialization.data(withJSONObject: [
                    "model": name, "max_tokens": 1,
                    path.hasSuffix("chat/completions") ? "messages" : "prompt":
                        path.hasSuffix("chat/completions") ? [["role": "user", "content": "hi"]] as Any : "hi" as Any,
                ]), as: UTF8.self)
                let (status, text) = try await curl(f.baseURL + path, json: body)
                XCTAssertEqual(status, 404, "\(name) \(path): \(text)")
                let error = try jsonObject(text)["error"] as? [String: Any]
                XCTAssertEqual(error?["code"] as? String, "model_not_found", name)
                XCTAssertFalse(text.contains("root:"), "\(name): file contents leaked")
            }
        }
        for field in ["adapter", "lora", "model_path"] {
            let body = #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, ""# + field + #"": "/etc/passwd"}"#
            let (status, text) = try await curl(f.baseURL + "/v1/chat/completions", json: body)
            XCTAssertEqual(status, 400, "\(field): \(text)")
            XCTAssertEqual((try jsonObject(text)["error"] as? [String: Any])?["code"] as? String, "unknown_field", field)
        }
        print("model names refused: \(names.count) x 2 routes; adapter/lora/model_path fields refused")
    }
}
