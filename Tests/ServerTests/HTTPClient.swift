// A deliberately small HTTP/1.1 client over POSIX sockets, for testing the server byte by byte:
// raw request bytes out, status/headers/body back (Content-Length or chunked), and incremental
// reads so a test can see streamed events arrive and hang up in the middle of a stream.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct TestResponse {
    var status: Int
    var headers: [String: String]   // lower-cased names
    var body: Data
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    var text: String { String(decoding: body, as: UTF8.self) }
}

enum HTTPTestError: Error { case connect(Int32), closed, malformed(String), timeout }

final class HTTPConnection {
    let fd: Int32
    private var buffer = Data()

    init(port: Int, timeoutSeconds: Int = 900) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 { let e = errno; close(fd); throw HTTPTestError.connect(e) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func hangUp() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    func send(_ data: Data) throws {
        var sent = 0
        while sent < data.count {
            let n = data.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, data.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { throw HTTPTestError.closed }
            sent += n
        }
    }

    /// Sends a request; `body` with its Content-Type (nil: none).
    func send(method: String, path: String, headers: [String: String] = [:], body: Data? = nil, contentType: String? = "application/json") throws {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let body {
            if let contentType { head += "Content-Type: \(contentType)\r\n" }
            head += "Content-Length: \(body.count)\r\n"
        }
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        var data = Data(head.utf8)
        if let body { data.append(body) }
        try send(data)
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n < 0 { throw HTTPTestError.timeout }
        if n == 0 { throw HTTPTestError.closed }
        buffer.append(contentsOf: chunk[0..<n])
    }

    private func readLine() throws -> String {
        while true {
            if let r = buffer.range(of: Data("\r\n".utf8)) {
                let line = String(decoding: buffer[buffer.startIndex..<r.lowerBound], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex..<r.upperBound)
                return line
            }
            try fill()
        }
    }

    private func readExactly(_ n: Int) throws -> Data {
        while buffer.count < n { try fill() }
        let out = buffer.prefix(n)
        buffer.removeFirst(n)
        return Data(out)
    }

    /// Status line and headers.
    func readHead() throws -> (Int, [String: String]) {
        let status = try readLine()
        let parts = status.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else { throw HTTPTestError.malformed(status) }
        var headers: [String: String] = [:]
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { throw HTTPTestError.malformed(line) }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (code, headers)
    }

    /// The next piece of a chunked body (nil after the last chunk).
    func readChunk() throws -> Data? {
        let sizeLine = try readLine()
        guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { throw HTTPTestError.malformed("chunk size \(sizeLine)") }
        if size == 0 {
            while try !readLine().isEmpty {}   // trailers
            return nil
        }
        let data = try readExactly(size)
        guard try readLine().isEmpty else { throw HTTPTestError.malformed("chunk without CRLF") }
        return data
    }

    /// A whole response.
    func readResponse() throws -> TestResponse {
        let (status, headers) = try readHead()
        var body = Data()
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while let piece = try readChunk() { body.append(piece) }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            body = try readExactly(length)
        }
        return TestResponse(status: status, headers: headers, body: body)
    }
}

/// One request on a new connection.
func request(_ port: Int, _ method: String, _ path: String, json: Any? = nil, raw: Data? = nil, contentType: String? = "application/json",
             headers: [String: String] = [:]) throws -> TestResponse {
    let c = try HTTPConnection(port: port)
    let body = try raw ?? json.map { try JSONSerialization.data(withJSONObject: $0) }
    try c.send(method: method, path: path, headers: headers, body: body, contentType: contentType)
    return try c.readResponse()
}

/// Server-sent events of a body: the payload of every `data: ` line, checking the framing
/// (each event is `data: ...` lines ended by a blank line).
func sseEvents(_ body: Data, file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
    let text = String(decoding: body, as: UTF8.self)
    guard text.hasSuffix("\n\n") else { throw HTTPTestError.malformed("the stream does not end with a blank line") }
    var events: [String] = []
    for block in text.dropLast(2).components(separatedBy: "\n\n") {
        guard block.hasPrefix("data: "), !block.contains("\n") else { throw HTTPTestError.malformed("event \(block.debugDescription)") }
        events.append(String(block.dropFirst(6)))
    }
    return events
}
