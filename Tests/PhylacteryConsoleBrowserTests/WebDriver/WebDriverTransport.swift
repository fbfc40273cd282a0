import Foundation
import NIOHTTP1

/// JSON over HTTP to a WebDriver endpoint (chromedriver): one request per command, the W3C envelope
/// `{"value": …}` unwrapped, and a W3C error answer thrown as ``WebDriverError`` with its error name.
struct WebDriverTransport: Sendable {
    /// The driver's address (loopback).
    let host: String
    let port: Int
    /// How long one command may take; a navigation waits for the page to load within it.
    var timeout: Duration = .seconds(120)

    /// `http://HOST:PORT`, for messages.
    var endpoint: String { "http://\(self.host):\(self.port)" }

    /// A value the command returns but the caller does not need (most commands answer `null`).
    struct Ignored: Decodable, Sendable {
        init(from decoder: any Decoder) throws {}
    }

    private struct Envelope<Value: Decodable>: Decodable {
        let value: Value
    }

    private struct W3CError: Decodable {
        let error: String
        let message: String
    }

    private struct EmptyBody: Encodable {}

    func get<Value: Decodable>(_ path: String, as type: Value.Type = Value.self) async throws -> Value {
        try await self.send(.GET, path, body: nil)
    }

    func post<Value: Decodable>(_ path: String, _ body: some Encodable, as type: Value.Type = Value.self) async throws -> Value {
        try await self.send(.POST, path, body: try JSONEncoder().encode(body))
    }

    /// A POST whose answer carries nothing the caller needs.
    func post(_ path: String, _ body: some Encodable) async throws {
        let _: Ignored? = try await self.send(.POST, path, body: try JSONEncoder().encode(body))
    }

    /// A POST with the empty JSON object W3C commands without parameters expect.
    func post(_ path: String) async throws {
        try await self.post(path, EmptyBody())
    }

    func delete(_ path: String) async throws {
        let _: Ignored? = try await self.send(.DELETE, path, body: nil)
    }

    private func send<Value: Decodable>(_ method: HTTPMethod, _ path: String, body: Data?) async throws -> Value {
        let response: LoopbackHTTPClient.Response
        do {
            response = try await LoopbackHTTPClient(host: self.host, port: self.port, timeout: self.timeout)
                .send(method, "/" + path, json: body.map { [UInt8]($0) })
        } catch let error as WebDriverError {
            throw error
        } catch {
            throw WebDriverError(.unexpectedResponse, "\(method) /\(path): no answer from the driver at \(self.endpoint): \(error)")
        }
        let status = response.status
        let data = Data(response.body)
        guard (200..<300).contains(status) else {
            if let failure = try? JSONDecoder().decode(Envelope<W3CError>.self, from: data) {
                throw WebDriverError(.command, "\(method) /\(path): \(failure.value.error): \(Self.firstLine(failure.value.message))", w3cError: failure.value.error)
            }
            throw WebDriverError(.unexpectedResponse, "\(method) /\(path): HTTP \(status): \(String(decoding: data.prefix(500), as: UTF8.self))")
        }
        do {
            return try JSONDecoder().decode(Envelope<Value>.self, from: data).value
        } catch {
            throw WebDriverError(.unexpectedResponse, "\(method) /\(path): the answer is not a \(Value.self): \(error); it was \(String(decoding: data.prefix(500), as: UTF8.self))")
        }
    }

    /// chromedriver's messages carry a multi-line "(Session info: …)" tail; the first line says it.
    private static func firstLine(_ message: String) -> String {
        String(message.split(separator: "\n", maxSplits: 1).first ?? Substring(message))
    }
}
