import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Phylactery

/// Error responses: JSON under `/api/`, a small HTML page elsewhere. Messages are the library's
/// (which never contain bound values) or the console's own.
enum ConsoleErrorPage {
    static func unauthorized() -> Response {
        self.page(.unauthorized, "The console needs its access token",
                  "Open the URL the console printed when it started (it ends with ?token=…), or send Authorization: Bearer with the token from the home's console-token file.")
    }

    static func forbidden() -> Response {
        self.page(.forbidden, "Missing or wrong CSRF token",
                  "Changes are made from the console's own forms (or with the X-CSRF-Token header from GET /api/v1/session). Reload the page and try again.")
    }

    static func response(for error: any Error, path: String, logger: Logger) -> Response {
        let status: HTTPResponse.Status
        let message: String
        switch error {
        case let error as PhylacteryError where error.code == .notFound:
            (status, message) = (.notFound, error.description)
        case let error as PhylacteryError where error.code == .invalidArgument:
            (status, message) = (.badRequest, error.description)
        case let error as PhylacteryError where [.factRetracted, .staleFact, .staleRow, .factExists, .lockNotAvailable].contains(error.code):
            // The page was out of date (someone else changed the row first): the message says what holds now.
            (status, message) = (.conflict, error.description)
        case let error as PhylacteryError where error.sqlState == "42P01" || error.sqlState == "3F000":
            // A table or schema the page reads is missing: the database has not been migrated yet.
            (status, message) = (.serviceUnavailable,
                                 "the database is not migrated yet (\(error.message)); run `phylactery migrate auto` (or start the runtime, which migrates by its policy) and reload")
        case let error as ConsoleError:
            (status, message) = (.badRequest, error.description)
        case let error as HTTPError:
            (status, message) = (error.status, error.body ?? error.status.reasonPhrase)
        default:
            logger.error("console request failed", metadata: ["path": "\(path)", "error": "\(String(reflecting: error))"])
            (status, message) = (.internalServerError, "\(error)")
        }
        if path.hasPrefix("/api/") || path == "/metrics" {
            return ConsoleJSON.response(["error": message], status: status)
        }
        return self.page(status, status.reasonPhrase, message)
    }

    static func page(_ status: HTTPResponse.Status, _ title: String, _ message: String) -> Response {
        let html = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(ConsoleHTML.escape(title))</title>\
            <link rel="stylesheet" href="/assets/console.css"></head><body><main id="page-error" class="error-page">\
            <h1>\(ConsoleHTML.escape(title))</h1><p>\(ConsoleHTML.escape(message))</p></main></body></html>
            """
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

/// JSON responses of the API.
enum ConsoleJSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? self.encoder.encode(value)) ?? Data("{\"error\":\"the response could not be encoded\"}".utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// HTML escaping for the few strings built outside templates (charts, error pages).
enum ConsoleHTML {
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
