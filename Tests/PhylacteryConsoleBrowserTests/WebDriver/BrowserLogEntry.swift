/// One line of the browser's console as chromedriver reports it (`goog:loggingPrefs` + its log endpoint).
///
/// A failed resource load, an uncaught exception and a Content-Security-Policy violation all arrive with
/// level `SEVERE`.
struct BrowserLogEntry: Decodable, Sendable, CustomStringConvertible {
    /// `SEVERE`, `WARNING`, `INFO`, `DEBUG`.
    let level: String
    let message: String
    /// Where it came from: `javascript`, `network`, `security` (CSP), `console-api`, …
    let source: String?
    /// Milliseconds since the epoch.
    let timestamp: Double

    /// What the console shows as an error.
    var isError: Bool { self.level == "SEVERE" }

    var description: String { "[\(self.level)\(self.source.map { " \($0)" } ?? "")] \(self.message)" }
}
