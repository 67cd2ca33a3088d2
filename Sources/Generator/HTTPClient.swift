import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client over a POSIX socket, for `http://` endpoints.
///
/// Why not URLSession: on Linux, FoundationNetworking's libcurl event loop keeps a core 25–80 %
/// busy while a request waits for a slow response (measured with a server that answers after
/// 5 s), and a local model server needs those cycles. A blocking `recv` sleeps. `https://` still
/// goes through URLSession (TLS).
enum PlainHTTP {
    struct Response { var status: Int; var body: Data }

    enum Failure: Error { case connect(String), timeout, io(String), malformed(String) }

    /// POSTs `body` and waits for the whole response (`Connection: close`; Content-Length,
    /// chunked, or read-to-close bodies).
    static func post(_ url: URL, headers: [String: String], body: Data, timeout: TimeInterval) throws -> Response {
        guard let host = url.host else { throw Failure.connect("no host in \(url)") }
        let port = url.port ?? 80
        let fd = try connect(host: host, port: port, timeout: timeout)
        defer { close(fd) }
        var path = url.path.isEmpty ? "/" : url.path
        if let q = url.query { path += "?" + q }
        var head = "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        try send(fd, Data(head.utf8) + body)
        return try parse(readAll(fd))
    }

    static func connect(host: String, port: Int, timeout: TimeInterval) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else { throw Failure.connect("cannot resolve \(host): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if fd >= 0 {
                var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - floor(timeout)) * 1e6))
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
                lastError = String(cString: strerror(errno))
                close(fd)
            }
            ai = a.pointee.ai_next
        }
        throw Failure.connect("Failed to connect to \(host) port \(port): \(lastError)")
    }

    static func send(_ fd: Int32, _ data: Data) throws {
        try data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
            var off = 0
            while off < buf.count {
                let n = Glibc.send(fd, buf.baseAddress! + off, buf.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw errno == EAGAIN || errno == EWOULDBLOCK ? Failure.timeout : Failure.io(String(cString: strerror(errno)))
                }
                off += n
            }
        }
    }

    static func readAll(_ fd: Int32) throws -> Data {
        var out = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n == 0 { return out }
            if n < 0 {
                if errno == EINTR { continue }
                throw errno == EAGAIN || errno == EWOULDBLOCK ? Failure.timeout : Failure.io(String(cString: strerror(errno)))
            }
            out.append(contentsOf: buf[0..<n])
        }
    }

    static func parse(_ raw: Data) throws -> Response {
        guard let split = raw.firstRange(of: Data("\r\n\r\n".utf8)) else { throw Failure.malformed("no end of headers in \(raw.count) bytes") }
        let lines = String(decoding: raw[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else { throw Failure.malformed("status line \"\(lines[0])\"") }
        var headers: [String: String] = [:]
        for l in lines.dropFirst() {
            if let c = l.firstIndex(of: ":") { headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces) }
        }
        var body = Data(raw[split.upperBound...])
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            body = try dechunk(body)
        } else if let len = headers["content-length"].flatMap(Int.init) {
            guard body.count >= len else { throw Failure.malformed("body has \(body.count) of \(len) bytes") }
            body = body.prefix(len)
        }
        return Response(status: status, body: body)
    }

    static func dechunk(_ data: Data) throws -> Data {
        var out = Data()
        var i = data.startIndex
        while true {
            guard let eol = data[i...].firstRange(of: Data("\r\n".utf8)) else { throw Failure.malformed("chunk size line") }
            let sizeText = String(decoding: data[i..<eol.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { throw Failure.malformed("chunk size \"\(sizeText)\"") }
            if size == 0 { return out }
            let start = eol.upperBound
            guard data.distance(from: start, to: data.endIndex) >= size + 2 else { throw Failure.malformed("chunk of \(size) bytes cut short") }
            let end = data.index(start, offsetBy: size)
            out.append(data[start..<end])
            i = data.index(end, offsetBy: 2)
        }
    }
}
