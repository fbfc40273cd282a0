/// Why talking to the browser failed: a missing browser, a driver that did not start, or a command the
/// driver refused (with the W3C error name it gave, e.g. `no such element`).
struct WebDriverError: Error, CustomStringConvertible {
    /// What kind of failure this is; compare with the static members.
    struct Code: Equatable, Sendable, CustomStringConvertible {
        private enum Kind: String, Sendable {
            case browserMissing, driverDidNotStart, command, unexpectedResponse, timedOut
        }
        private let kind: Kind

        /// Chromium or chromedriver is not installed where the test looks.
        static let browserMissing = Code(kind: .browserMissing)
        /// chromedriver exited, or did not say which port it listens on, or never became ready.
        static let driverDidNotStart = Code(kind: .driverDidNotStart)
        /// The driver answered a command with a W3C error (see ``WebDriverError/w3cError``).
        static let command = Code(kind: .command)
        /// The driver's answer was not the JSON the command expects.
        static let unexpectedResponse = Code(kind: .unexpectedResponse)
        /// A wait for the page to reach a state ran out of time (the message says what it saw last).
        static let timedOut = Code(kind: .timedOut)

        var description: String { self.kind.rawValue }
    }

    let code: Code
    let message: String
    /// The W3C error name for ``Code/command`` (`no such element`, `stale element reference`, …).
    let w3cError: String?

    init(_ code: Code, _ message: String, w3cError: String? = nil) {
        self.code = code
        self.message = message
        self.w3cError = w3cError
    }

    /// The element went away or is not there (yet): a page still loading or being replaced, which a
    /// wait treats as "not yet" rather than as a failure.
    var isTransientElementError: Bool {
        self.code == .command && (self.w3cError == "no such element" || self.w3cError == "stale element reference")
    }

    var description: String { "WebDriver (\(self.code)): \(self.message)" }
}
