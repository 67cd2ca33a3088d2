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

    /// llama.cpp's DRY fields reach the sampler; out of range, a 400 naming the field.
    func testDRYFieldsAreReadAndChecked() throws {
        var json = try JSONBody(Data(#"{"dry_multiplier": 0.8, "dry_base": 2, "dry_allowed_length": 3}"#.utf8))
        let o = try GenerationOptions(&json, limits: .init())
        XCTAssertEqual(o.sampling.dryMultiplier, 0.8)
        XCTAssertEqual(o.sampling.dryBase, 2)
        XCTAssertEqual(o.sampling.dryAllowedLength, 3)
        var plain = try JSONBody(Data("{}".utf8))
        XCTAssertEqual(try GenerationOptions(&plain, limits: .init()).sampling.dryMultiplier, 0, "off unless asked")
        for (field, value) in [("dry_multiplier", "-1"), ("dry_base", "0.5"), ("dry_allowed_length", "0")] {
            XCTAssertThrowsError(try RequestDecoding.decode(Data(#"{"prompt": "x", "\#(field)": \#(value)}"#.utf8), route: .completions)) { error in
                guard case let ServerError.invalidRequest(_, param) = error else { return XCTFail("\(field): \(error)") }
                XCTAssertEqual(param, field)
            }
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

    /// A request refused before its body is read (413 over the limit, 404 for an unknown route,
    /// 405 for a wrong method) must not keep its connection: with `Connection: close` the server
    /// once waited forever for the unread body's end, holding the socket and its receive buffers
    /// (RSS grew by about 1 MB/s under `scripts/load`). Counts this process's sockets (the
    /// server runs in it) after 12 such requests.
    func testRefusedBodiesDoNotKeepConnections() async throws {
        let f = try await ServerFixture.get()
        let port = f.port
        try await Task.sleep(nanoseconds: 500_000_000)
        let before = openSockets()
        // 2 MiB: more than the server reads ahead into an unconsumed body, so the old code kept
        // the connection (a 256 KB body was read to its end and closed anyway).
        let body = [UInt8](repeating: UInt8(ascii: "a"), count: 2 << 20)
        for i in 0..<12 {
            let (path, method) = [("/v1/chat/completions", "POST"), ("/v1/nowhere", "POST"), ("/health", "PUT")][i % 3]
            let head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
            let response = rawExchange(port: port, Array(head.utf8) + body)
            XCTAssertTrue(response.hasPrefix("HTTP/1.1 4"), "\(method) \(path): \(response.prefix(80))")
        }
        var after = openSockets()
        let deadline = Date().addingTimeInterval(Double(OpenAIServer.lingerSeconds) + 3)
        while after > before && Date() < deadline {
            try await Task.sleep(nanoseconds: 200_000_000)
            after = openSockets()
        }
        print("sockets of this process: \(before) before, \(after) after 12 refused 2 MiB bodies")
        XCTAssertLessThanOrEqual(after, before, "connections of refused requests are closed")
    }

    /// Sockets among this process's open files.
    private func openSockets() -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) ?? "").hasPrefix("socket:") }.count
    }

    /// Sends `bytes` on a new loopback connection (as much as the server takes), reads until the
    /// server ends its side or 5 s pass, closes; returns what was read.
    private func rawExchange(port: Int, _ bytes: [UInt8]) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "socket failed" }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return "connect failed" }
        var timeout = timeval(tv_sec: 5, tv_usec: 0), sendTimeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        var received = [UInt8](), buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
