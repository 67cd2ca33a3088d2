import Foundation
import LLM
import VectorIndex
import XCTest
import TestSupport
@testable import Server

/// The OpenAI-compatible server against real clients (curl, the `openai` Python client) over
/// loopback, with the real SmolLM2, MiniLM and a real corpus.
final class ServerTests: XCTestCase {
    /// The shared fixture's corpus goes (with its SQLite side files) when this class, its only
    /// user, is done; the fixture's server keeps the unlinked file open until the process exits.
    override class func tearDown() {
        removeWithSideFiles(ServerFixture.corpusFile)
        super.tearDown()
    }

    /// The text TextGenerator gives for a chat, one request alone (greedy).
    func directChat(_ f: ServerFixture, _ user: String, maxTokens: Int) throws -> GenerationResult {
        var request = GenerationRequest(prompt: try f.served.encode(messages: [.user(user)]), maxTokens: maxTokens,
                                        sampling: SamplingParameters(temperature: 0))
        request.stopStrings = [f.served.template.endOfTurn!]
        return try f.served.scheduler.generator.generate(request)
    }

    // MARK: curl

    func testCurlChatNonStreamAndStreamMatchDirectGreedy() async throws {
        let f = try await ServerFixture.get()
        let question = "What is the function of insulin?"
        let direct = try directChat(f, question, maxTokens: 24)
        let body = #"{"model": "smollm2", "messages": [{"role": "user", "content": "\#(question)"}], "max_tokens": 24, "temperature": 0}"#
        let (status, text) = try await curl(f.baseURL + "/v1/chat/completions", json: body)
        XCTAssertEqual(status, 200, text)
        let o = try jsonObject(text)
        let choice = (o["choices"] as! [[String: Any]])[0]
        let content = (choice["message"] as! [String: Any])["content"] as! String
        XCTAssertEqual(content, direct.text)
        XCTAssertFalse(content.isEmpty)
        XCTAssertEqual(choice["finish_reason"] as? String, direct.finishReason == .length ? "length" : "stop")
        let usage = o["usage"] as! [String: Int]
        XCTAssertEqual(usage["prompt_tokens"], direct.promptTokens)
        XCTAssertEqual(usage["completion_tokens"], direct.tokens.count)
        XCTAssertEqual(usage["total_tokens"], direct.promptTokens + direct.tokens.count)

        let streamBody = body.replacingOccurrences(of: "\"temperature\": 0}", with: "\"temperature\": 0, \"stream\": true, \"stream_options\": {\"include_usage\": true}}")
        let (s2, sse) = try await curl(f.baseURL + "/v1/chat/completions", json: streamBody, extra: ["-N"])
        XCTAssertEqual(s2, 200)
        let events = sseEvents(sse)
        XCTAssertEqual(events.last, "[DONE]")
        var streamed = "", finish: String?, streamUsage: [String: Int]?
        for e in events.dropLast() {
            let chunk = try jsonObject(e)
            XCTAssertEqual(chunk["object"] as? String, "chat.completion.chunk")
            if let u = chunk["usage"] as? [String: Int] { streamUsage = u; continue }
            let c = (chunk["choices"] as! [[String: Any]])[0]
            streamed += ((c["delta"] as! [String: Any])["content"] as? String) ?? ""
            if let r = c["finish_reason"] as? String { finish = r }
        }
        XCTAssertEqual(streamed, direct.text)
        XCTAssertEqual(finish, choice["finish_reason"] as? String)
        XCTAssertEqual(streamUsage, usage)
        print("chat: \(events.count) SSE events; text \(direct.text.debugDescription)")
    }

    /// `repetition_stop` is off unless the request asks (OpenAI semantics); asked, a looping greedy
    /// answer ends with `finish_reason: "repetition"`, streamed or not.
    func testRepetitionStopOnlyWhenRequested() async throws {
        let f = try await ServerFixture.get()
        let question = "Is there still a need for living-related liver transplantation in children?"
        func ask(_ extra: String, stream: Bool = false) async throws -> (status: Int, finish: String?, text: String) {
            let body = #"{"model": "smollm2", "messages": [{"role": "user", "content": "\#(question)"}], "max_tokens": 200, "temperature": 0\#(extra)\#(stream ? ", \"stream\": true" : "")}"#
            let (status, text) = try await curl(f.baseURL + "/v1/chat/completions", json: body, extra: stream ? ["-N"] : [])
            guard status == 200 else { return (status, nil, text) }
            if !stream {
                let choice = ((try jsonObject(text))["choices"] as! [[String: Any]])[0]
                return (status, choice["finish_reason"] as? String, (choice["message"] as! [String: Any])["content"] as! String)
            }
            var content = "", finish: String?
            for e in sseEvents(text).dropLast() {
                let c = ((try jsonObject(e))["choices"] as! [[String: Any]])[0]
                content += ((c["delta"] as! [String: Any])["content"] as? String) ?? ""
                if let r = c["finish_reason"] as? String { finish = r }
            }
            return (status, finish, content)
        }
        let off = try await ask("")
        let on = try await ask(#", "repetition_stop": true"#)
        let onStream = try await ask(#", "repetition_stop": true"#, stream: true)
        let custom = try await ask(#", "repetition_stop": {"repeats": 3, "min_tokens": 48}"#)
        print("repetition_stop: off \(off.finish ?? "-") (\(off.text.count) chars), on \(on.finish ?? "-") (\(on.text.count) chars), "
              + "3 copies \(custom.finish ?? "-") (\(custom.text.count) chars)")
        XCTAssertEqual(off.finish, "length")
        XCTAssertEqual(on.finish, "repetition")
        XCTAssertEqual(onStream.finish, "repetition")
        XCTAssertEqual(onStream.text, on.text)
        XCTAssertTrue(off.text.hasPrefix(on.text) && on.text.count < off.text.count)
        XCTAssertEqual(custom.finish, "repetition")
        XCTAssertGreaterThan(custom.text.count, on.text.count, "a third copy is written before it stops")
        let offExplicit = try await ask(#", "repetition_stop": false"#)
        XCTAssertEqual(offExplicit.finish, "length")
        let bad = try await ask(#", "repetition_stop": {"repeats": 1}"#)
        XCTAssertEqual(bad.status, 400)
        XCTAssertTrue(bad.text.contains("repetition_stop.repeats"), bad.text)
        let misspelt = try await ask(#", "repetition_stop": {"repeat": 3}"#)
        XCTAssertEqual(misspelt.status, 400)
        let wrongType = try await ask(#", "repetition_stop": "yes""#)
        XCTAssertEqual(wrongType.status, 400)
    }

    func testCurlErrorsAreOpenAIStyleWithTheRightStatus() async throws {
        let f = try await ServerFixture.get()
        let chat = f.baseURL + "/v1/chat/completions"
        let cases: [(String, String, String?, Int, String?, String?)] = [
            // (what, body, path override, status, code, param)
            ("malformed", #"{"messages": [ "#, nil, 400, nil, nil),
            ("not an object", #"[1, 2]"#, nil, 400, nil, nil),
            ("unknown field", #"{"messages": [{"role": "user", "content": "hi"}], "max_token": 5}"#, nil, 400, "unknown_field", "max_token"),
            ("wrong type", #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "ten"}"#, nil, 400, nil, "max_tokens"),
            ("bool for int", #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": true}"#, nil, 400, nil, "max_tokens"),
            ("bad role", #"{"messages": [{"role": "robot", "content": "hi"}]}"#, nil, 400, nil, "messages[0].role"),
            ("no messages", #"{"model": "smollm2"}"#, nil, 400, nil, "messages"),
            ("temperature range", #"{"messages": [{"role": "user", "content": "hi"}], "temperature": 5}"#, nil, 400, nil, "temperature"),
            ("max_tokens limit", #"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}"#, nil, 400, nil, "max_tokens"),
            ("unknown model", #"{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}"#, nil, 404, "model_not_found", "model"),
            ("context overflow", #"{"prompt": ""# + String(repeating: "the ", count: 4500) + #"", "max_tokens": 4000}"#, "/v1/completions", 422, "unprocessable", "prompt"),
            ("unknown route", "{}", "/v1/nothing", 404, "not_found", nil),
            ("search filter", #"{"query": "x", "filters": {"author": "me"}}"#, "/v1/search", 400, "unknown_field", "filters.author"),
            ("embeddings input", #"{"input": 42}"#, "/v1/embeddings", 400, nil, "input"),
        ]
        for (what, body, path, status, code, param) in cases {
            let (s, text) = try await curl(path.map { f.baseURL + $0 } ?? chat, json: body)
            XCTAssertEqual(s, status, "\(what): \(text)")
            let error = try jsonObject(text)["error"] as? [String: Any]
            XCTAssertNotNil(error, what)
            XCTAssertFalse((error?["message"] as? String ?? "").isEmpty, what)
            XCTAssertNotNil(error?["type"] as? String, what)
            if let code { XCTAssertEqual(error?["code"] as? String, code, what) }
            if let param { XCTAssertEqual(error?["param"] as? String, param, what) }
            print("\(what): \(s) \(error?["message"] as? String ?? "")")
        }
        // 405: GET on a POST route; 413: a body over the 64 KiB limit.
        let (s405, t405) = try await curl(chat, method: "GET")
        XCTAssertEqual(s405, 405, t405)
        let big = #"{"messages": [{"role": "user", "content": ""# + String(repeating: "a", count: 100_000) + #""}]}"#
        let (s413, t413) = try await curl(chat, json: big)
        XCTAssertEqual(s413, 413, t413)
        XCTAssertEqual((try jsonObject(t413)["error"] as? [String: Any])?["code"] as? String, "request_too_large")
    }

    func testAPIKeyIsCheckedOnEveryRoute() async throws {
        let f = try await ServerFixture.get()
        for (path, method) in [("/v1/models", "GET"), ("/v1/chat/completions", "POST"), ("/v1/embeddings", "POST"), ("/v1/search", "POST"), ("/v1/nothing", "GET")] {
            for key in [nil, "wrong-key"] {
                let (s, text) = try await curl(f.baseURL + path, method: method, json: method == "POST" ? "{}" : nil, key: key)
                XCTAssertEqual(s, 401, "\(path) key \(key ?? "none"): \(text)")
                XCTAssertEqual((try jsonObject(text)["error"] as? [String: Any])?["type"] as? String, "authentication_error")
            }
        }
        let (s, text) = try await curl(f.baseURL + "/v1/models", method: "GET")
        XCTAssertEqual(s, 200)
        let ids = (try jsonObject(text)["data"] as! [[String: Any]]).map { $0["id"] as! String }
        XCTAssertEqual(ids, ["smollm2"])
    }

    // MARK: Batching

    func testConcurrentRequestsGiveTheSameTextAsOneAtATime() async throws {
        let f = try await ServerFixture.get()
        let prompts = ["The heart pumps", "Diabetes is a disease in which", "Antibiotics are used to",
                       "The human genome contains", "Vaccines work by", "A randomized controlled trial is"]
        func request(_ p: String) -> String { #"{"prompt": "\#(p)", "max_tokens": 20, "temperature": 0}"# }
        func text(_ body: String) throws -> String {
            ((try jsonObject(body)["choices"] as! [[String: Any]])[0]["text"] as! String)
        }
        var sequential: [String] = []
        for p in prompts {
            let (s, body) = try await curl(f.baseURL + "/v1/completions", json: request(p))
            XCTAssertEqual(s, 200, body)
            sequential.append(try text(body))
        }
        let concurrent = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (i, p) in prompts.enumerated() {
                group.addTask { let (_, body) = try await curl(f.baseURL + "/v1/completions", json: request(p)); return (i, try text(body)) }
            }
            var out = [String](repeating: "", count: prompts.count)
            for try await (i, t) in group { out[i] = t }
            return out
        }
        for i in prompts.indices { XCTAssertEqual(concurrent[i], sequential[i], prompts[i]) }
        XCTAssertTrue(sequential.allSatisfy { !$0.isEmpty })
        print("6 prompts: concurrent == sequential (\(sequential.map(\.count)) characters)")
    }

    func testDisconnectedStreamingClientFreesItsSlot() async throws {
        let f = try await ServerFixture.get()
        await f.served.scheduler.waitUntilIdle()
        let before = f.served.scheduler.snapshot
        // A stream of up to 3000 tokens; curl gives up after 2 s and closes the connection.
        let body = #"{"prompt": "Once upon a time", "max_tokens": 3000, "temperature": 0.8, "seed": 1, "stream": true}"#
        let (_, sse) = try await curl(f.baseURL + "/v1/completions", json: body, extra: ["-N", "--max-time", "2"])
        XCTAssertFalse(sseEvents(sse).isEmpty, "some text streamed before the disconnect")
        let start = Date()
        while f.served.scheduler.snapshot.active > 0 && Date().timeIntervalSince(start) < 10 { try await Task.sleep(nanoseconds: 50_000_000) }
        let after = f.served.scheduler.snapshot
        XCTAssertEqual(after.active, 0, "the slot was freed")
        XCTAssertEqual(after.dropped, before.dropped + 1, "the request was dropped, not run to its 3000 tokens")
        print("disconnect: slot freed \(String(format: "%.2f", Date().timeIntervalSince(start))) s after curl exited")
    }

    func testFullQueueAnswers429AndShutdownIsGraceful() async throws {
        // A server of its own: one slot, no waiting room.
        let served = try ServerFixture.servedModel(id: "tiny", options: .init(maxBatch: 1, maxQueue: 0))
        let server = OpenAIServer(models: [served], configuration: .init(port: 0, drainSeconds: 30))
        let (port, run) = try await ServerFixture.start(server)
        let url = "http://127.0.0.1:\(port)/v1/completions"
        let long = Task { try await curl(url, json: #"{"prompt": "Once upon a time", "max_tokens": 64, "temperature": 0, "stream": true}"#, key: nil, extra: ["-N"]) }
        while served.scheduler.snapshot.active == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        let (s, text) = try await curl(url, json: #"{"prompt": "Another", "max_tokens": 4}"#, key: nil)
        XCTAssertEqual(s, 429, text)
        let error = try jsonObject(text)["error"] as? [String: Any]
        XCTAssertEqual(error?["type"] as? String, "rate_limit_error")
        XCTAssertEqual(error?["code"] as? String, "queue_full")
        // Shut down while the stream is in flight: it runs to its end (not cancelled), then run returns.
        await server.shutdown()
        let (ls, sse) = try await long.value
        XCTAssertEqual(ls, 200)
        let events = sseEvents(sse)
        XCTAssertEqual(events.last, "[DONE]")
        let finish = try events.dropLast().compactMap { e -> String? in
            ((try jsonObject(e)["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String)
        }.last
        XCTAssertTrue(finish == "length" || finish == "stop", "the in-flight stream ran to its end during the graceful shutdown, not \(finish ?? "nil")")
        try await run.value
        let refused = try await runProcess("/usr/bin/curl", ["-sS", "-o", "/dev/null", url])
        XCTAssertNotEqual(refused.status, 0, "no longer listening after shutdown")
    }

    func testPortInUseIsAClearError() async throws {
        let f = try await ServerFixture.get()
        let second = OpenAIServer(models: [f.served], configuration: .init(port: f.port))
        do {
            try await second.run()
            XCTFail("a second server on port \(f.port) started")
        } catch let error as ServerError {
            XCTAssertEqual(error, .portInUse(host: "127.0.0.1", port: f.port))
            XCTAssertTrue(error.localizedDescription.contains("in use"), error.localizedDescription)
        }
    }

    // MARK: Embeddings and search

    func testEmbeddingsAndSearchMatchTheLibraries() async throws {
        let f = try await ServerFixture.get()
        let texts = ["insulin resistance in type 2 diabetes", "a randomized trial of statins"]
        let (s, text) = try await curl(f.baseURL + "/v1/embeddings", json: #"{"input": ["\#(texts[0])", "\#(texts[1])"], "model": "all-MiniLM-L6-v2"}"#)
        XCTAssertEqual(s, 200, text)
        let data = try jsonObject(text)["data"] as! [[String: Any]]
        let expected = try f.embedder.embed(texts)
        var maxDiff: Float = 0
        for (i, d) in data.enumerated() {
            let v = (d["embedding"] as! [Double]).map(Float.init)
            XCTAssertEqual(v.count, 384)
            maxDiff = max(maxDiff, zip(v, expected[i]).map { abs($0 - $1) }.max()!)
        }
        print("embeddings over HTTP vs in-process: max |diff| \(maxDiff)")
        XCTAssertLessThan(maxDiff, 1e-6)

        let query = "main finding of the study"
        let (s2, t2) = try await curl(f.baseURL + "/v1/search", json: #"{"query": "\#(query)", "k": 3, "mode": "hybrid"}"#)
        XCTAssertEqual(s2, 200, t2)
        let hits = try jsonObject(t2)["data"] as! [[String: Any]]
        let direct = try f.retriever.search(query, k: 3, mode: .hybrid)
        XCTAssertEqual(hits.count, 3)
        XCTAssertEqual(hits.map { ($0["passage_id"] as! NSNumber).int64Value }, direct.map(\.passageID))
        XCTAssertEqual(hits.map { $0["pmid"] as? Int }, direct.map(\.pmid))
    }

    // MARK: The openai Python client

    func testOfficialOpenAIPythonClient() async throws {
        let f = try await ServerFixture.get()
        let python = ServerFixture.repo.appendingPathComponent(".venv-test/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            XCTFail("no \(python): run scripts/python-clients")
            return
        }
        let script = """
        import json, sys, openai
        c = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key=sys.argv[2], max_retries=0)
        out = {"models": [m.id for m in c.models.list()]}
        msgs = [{"role": "user", "content": "What is the function of insulin?"}]
        r = c.chat.completions.create(model="smollm2", messages=msgs, max_tokens=24, temperature=0)
        out["chat"] = r.choices[0].message.content
        out["chat_usage"] = [r.usage.prompt_tokens, r.usage.completion_tokens]
        s = c.chat.completions.create(model="smollm2", messages=msgs, max_tokens=24, temperature=0, stream=True)
        out["chat_stream"] = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
        r = c.completions.create(model="smollm2", prompt="The heart pumps", max_tokens=20, temperature=0)
        out["completion"] = r.choices[0].text
        s = c.completions.create(model="smollm2", prompt="The heart pumps", max_tokens=20, temperature=0, stream=True)
        out["completion_stream"] = "".join(ch.choices[0].text for ch in s if ch.choices)
        e = c.embeddings.create(model="all-MiniLM-L6-v2", input=["insulin resistance in type 2 diabetes"])
        out["embedding"] = list(e.data[0].embedding)
        try:
            c.chat.completions.create(model="nope", messages=msgs)
        except openai.NotFoundError as err:
            out["not_found"] = err.status_code
        try:
            openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="wrong", max_retries=0).models.list()
        except openai.AuthenticationError as err:
            out["unauthorized"] = err.status_code
        print(json.dumps(out))
        """
        let out = try await runProcess(python, ["-c", script, f.baseURL, ServerFixture.apiKey])
        XCTAssertEqual(out.status, 0, out.stderr)
        let o = try jsonObject(out.stdout)
        let direct = try directChat(f, "What is the function of insulin?", maxTokens: 24)
        XCTAssertEqual(o["models"] as? [String], ["smollm2"])
        XCTAssertEqual(o["chat"] as? String, direct.text)
        XCTAssertEqual(o["chat_stream"] as? String, direct.text)
        XCTAssertEqual(o["chat_usage"] as? [Int], [direct.promptTokens, direct.tokens.count])
        XCTAssertEqual(o["completion"] as? String, o["completion_stream"] as? String)
        XCTAssertFalse((o["completion"] as? String ?? "").isEmpty)
        XCTAssertEqual(o["not_found"] as? Int, 404)
        XCTAssertEqual(o["unauthorized"] as? Int, 401)
        // The client asks for base64 embeddings by default: decoded, they equal the library's.
        let v = (o["embedding"] as! [Double]).map(Float.init)
        let expected = try f.embedder.embed("insulin resistance in type 2 diabetes")
        let maxDiff = zip(v, expected).map { abs($0 - $1) }.max()!
        print("openai client: chat \((o["chat"] as! String).debugDescription); embedding max |diff| \(maxDiff)")
        XCTAssertEqual(v.count, 384)
        XCTAssertEqual(maxDiff, 0, "base64 float32 is exact")
    }
}
