import Foundation

/// One browser session behind a WebDriver endpoint: navigation, scripts, screenshots and the browser's
/// console. Elements: `WebDriverSession+Elements.swift`; waiting for a condition: `+Waiting.swift`.
///
/// Commands are W3C WebDriver (https://www.w3.org/TR/webdriver2/) as chromedriver speaks them, plus
/// chromedriver's log endpoint for the console.
struct WebDriverSession: Sendable {
    let transport: WebDriverTransport
    /// The driver's session id.
    let id: String

    /// How the browser is started: the capabilities of the new-session command.
    struct Capabilities: Encodable, Sendable {
        /// The browser program (`/usr/bin/chromium`).
        var binary: String
        /// Command-line switches for the browser.
        var arguments: [String]

        private struct AlwaysMatch: Encodable {
            let browserName = "chrome"
            let pageLoadStrategy = "normal"
            let chromeOptions: ChromeOptions
            let loggingPreferences: [String: String]

            enum CodingKeys: String, CodingKey {
                case browserName, pageLoadStrategy
                case chromeOptions = "goog:chromeOptions"
                case loggingPreferences = "goog:loggingPrefs"
            }
        }

        private struct ChromeOptions: Encodable {
            let binary: String
            let args: [String]
        }

        private enum CodingKeys: String, CodingKey { case alwaysMatch }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            // Every console message is kept, so a test can assert there was no error among them.
            try container.encode(
                AlwaysMatch(chromeOptions: ChromeOptions(binary: self.binary, args: self.arguments), loggingPreferences: ["browser": "ALL"]),
                forKey: .alwaysMatch)
        }
    }

    private struct NewSession: Encodable {
        let capabilities: Capabilities
    }

    private struct Created: Decodable {
        let sessionId: String
    }

    /// Starts a browser through the driver.
    static func create(_ transport: WebDriverTransport, capabilities: Capabilities) async throws -> WebDriverSession {
        let created: Created = try await transport.post("session", NewSession(capabilities: capabilities))
        return WebDriverSession(transport: transport, id: created.sessionId)
    }

    /// Ends the session; the driver closes the browser.
    func delete() async throws {
        try await self.transport.delete("session/\(self.id)")
    }

    var path: String { "session/\(self.id)" }

    // MARK: Navigation

    private struct URLBody: Encodable { let url: String }

    /// Loads `url` and returns once the page has loaded (the driver's "normal" load strategy).
    func navigate(to url: String) async throws {
        try await self.transport.post("\(self.path)/url", URLBody(url: url))
    }

    /// The address of the page shown now (after redirects).
    func currentURL() async throws -> String {
        try await self.transport.get("\(self.path)/url")
    }

    /// The page's `<title>`.
    func title() async throws -> String {
        try await self.transport.get("\(self.path)/title")
    }

    /// The page's HTML as the browser holds it now.
    func pageSource() async throws -> String {
        try await self.transport.get("\(self.path)/source")
    }

    private struct WindowRect: Encodable { let width: Int; let height: Int }

    /// Sets the window's outer size (what a screenshot shows).
    func setWindowSize(width: Int, height: Int) async throws {
        try await self.transport.post("\(self.path)/window/rect", WindowRect(width: width, height: height))
    }

    // MARK: Scripts

    private struct Script: Encodable {
        let script: String
        let args: [WebElement]
    }

    /// Runs `script` as a function body in the page (`arguments[i]` are `elements[i]`) and returns
    /// what it returns. The driver runs it through the DevTools protocol, outside the page's CSP.
    func executeScript<Value: Decodable>(_ script: String, elements: [WebElement] = [], as type: Value.Type = Value.self) async throws -> Value {
        try await self.transport.post("\(self.path)/execute/sync", Script(script: script, args: elements))
    }

    // MARK: Screenshots and the console

    /// The visible page as PNG bytes.
    func screenshot() async throws -> Data {
        let encoded: String = try await self.transport.get("\(self.path)/screenshot")
        guard let data = Data(base64Encoded: encoded) else {
            throw WebDriverError(.unexpectedResponse, "the screenshot is not base64 (\(encoded.prefix(40))…)")
        }
        return data
    }

    /// Saves ``screenshot()`` as a PNG file at `path` (its folder is created) and returns its bytes.
    @discardableResult
    func saveScreenshot(to path: String) async throws -> Data {
        let data = try await self.screenshot()
        let folder = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
        return data
    }

    private struct LogType: Encodable { let type: String }

    /// The browser console's messages since the last call (the driver hands each out once), errors
    /// such as Content-Security-Policy violations and failed loads included.
    func browserLog() async throws -> [BrowserLogEntry] {
        try await self.transport.post("\(self.path)/se/log", LogType(type: "browser"))
    }
}
