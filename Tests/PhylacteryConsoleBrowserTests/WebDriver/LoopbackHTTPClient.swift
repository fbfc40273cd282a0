import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 client over SwiftNIO for a server on this machine: one request per connection.
///
/// Why not `URLSession`: chromedriver writes its response headers without a space after the colon
/// (`Content-Length:250`), which is valid HTTP but which Foundation's libcurl-based URLSession on Linux
/// refuses ("Failed writing header"). NIO's parser reads them as the RFC allows.
struct LoopbackHTTPClient: Sendable {
    let host: String
    let port: Int
    /// The longest one exchange may take, from connecting to the end of the answer.
    var timeout: Duration

    struct Response: Sendable {
        let status: Int
        let body: [UInt8]
    }

    /// Sends `method path` with an optional JSON `body` and returns the status and the whole answer.
    func send(_ method: HTTPMethod, _ path: String, json body: [UInt8]?) async throws -> Response {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: self.host, port: self.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        // The deadline closes the connection, which ends the answer early; the exchange then fails.
        let deadline = channel.channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(self.timeout.components.seconds) * 1_000_000_000)) {
            channel.channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        let host = self.host
        let port = self.port
        let timeout = self.timeout
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
            head.headers.add(name: "Host", value: "\(host):\(port)")
            head.headers.add(name: "Connection", value: "close")
            head.headers.add(name: "Accept", value: "application/json")
            if let body {
                head.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
                head.headers.add(name: "Content-Length", value: String(body.count))
            }
            try await outbound.write(.head(head))
            if let body {
                try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
            }
            try await outbound.write(.end(nil))

            var status: Int?
            var collected = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let head):
                    status = Int(head.status.code)
                case .body(var chunk):
                    collected.writeBuffer(&chunk)
                case .end:
                    guard let status else { break }
                    return Response(status: status, body: Array(collected.readableBytesView))
                }
            }
            throw WebDriverError(.unexpectedResponse, "\(method) \(path): the connection to \(host):\(port) ended before a whole answer (no answer within \(timeout)?)")
        }
    }
}
