import Foundation
import PhylacteryTestSupport
import Testing

/// The WebDriver client against pages the test writes itself (file:// URLs), so the client is known to
/// work before any console page exists: finding, reading, clicking, typing, submitting, waiting,
/// screenshots, and the console log catching a Content-Security-Policy violation.
@Suite(.serialized, .disabled(if: BrowserInstallation.skipReason != nil, "the test command could not install Chromium (see its message)"))
struct WebDriverTests {
    /// A page under the same strict policy the console sends (no inline script), with its one script
    /// in a file; the script answers a click after a delay, so the test has to wait for it.
    static let strictPage = """
        <!doctype html>
        <html><head>
        <meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self'">
        <title>WebDriver self-test</title>
        <script src="page.js"></script>
        </head><body>
        <main id="page-selftest">
        <p id="status" data-state="idle">idle</p>
        <button id="start" type="button">Start</button>
        <form method="get" action="done.html"><input id="query" name="q"><button type="submit" name="action" value="go">Go</button></form>
        </main>
        </body></html>
        """

    static let script = """
        document.addEventListener('DOMContentLoaded', () => {
          document.getElementById('start').addEventListener('click', () => {
            setTimeout(() => {
              const status = document.getElementById('status');
              status.textContent = 'started';
              status.dataset.state = 'started';
            }, 300);
          });
        });
        """

    static let donePage = """
        <!doctype html><html><head><title>done</title></head><body><main id="page-done"><p>done</p></main></body></html>
        """

    /// The same policy, broken by an inline script: the browser blocks it and logs an error.
    static let violatingPage = """
        <!doctype html>
        <html><head>
        <meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self'">
        <title>inline</title>
        </head><body>
        <p id="status">untouched</p>
        <script>document.getElementById('status').textContent = 'inline script ran';</script>
        </body></html>
        """

    /// Writes the pages into a fresh folder and returns its file:// base URL.
    static func writePages() throws -> (folder: String, base: String) {
        let folder = FileManager.default.temporaryDirectory.path + "/phylactery-webdriver-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, content) in [("strict.html", strictPage), ("page.js", script), ("done.html", donePage), ("violating.html", violatingPage)] {
            try content.write(toFile: "\(folder)/\(name)", atomically: true, encoding: .utf8)
        }
        return (folder, "file://\(folder)")
    }

    @Test func drivesAPageItWroteItself() async throws {
        let pages = try Self.writePages()
        defer { try? FileManager.default.removeItem(atPath: pages.folder) }
        try await HeadlessChromium.withSession { browser in
            try await browser.navigate(to: "\(pages.base)/strict.html")
            #expect(try await browser.title() == "WebDriver self-test")
            _ = try await browser.findElement("main#page-selftest")
            let status = try await browser.findElement("#status")
            #expect(try await browser.text(of: status) == "idle")
            #expect(try await browser.attribute("data-state", of: status) == "idle")
            #expect(try await browser.attribute("data-missing", of: status) == nil)
            #expect(try await browser.tagName(of: status) == "p")
            #expect(try await browser.findElements("button").count == 2)
            #expect(try await browser.findElements(".nothing-has-this-class").isEmpty)

            // The script answers 300 ms after the click, so the test waits for the text to change.
            try await browser.click(try await browser.findElement("#start"))
            try await browser.waitForText("started", in: "#status")
            #expect(try await browser.attribute("data-state", of: try await browser.findElement("#status")) == "started")

            // Typing and submitting the form navigates to its action with the field's value.
            let query = try await browser.findElement("#query")
            try await browser.type("ghoul 7", into: query)
            try await browser.submit(query)
            try await browser.waitUntil("the form to lead to done.html") { try await browser.currentURL().contains("done.html?q=ghoul+7") }
            _ = try await browser.waitForElement("main#page-done")

            // A screenshot is a PNG of the window's width.
            let file = "\(pages.folder)/shot.png"
            let png = try await browser.saveScreenshot(to: file)
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
            #expect(Self.pngWidth(png) == 1280)
            #expect(FileManager.default.contents(atPath: file) == png)

            // Nothing on these pages broke the policy or failed to load.
            let errors = try await browser.browserLog().filter(\.isError)
            #expect(errors.isEmpty, "console errors: \(errors)")
        }
    }

    @Test func aPolicyViolationIsAConsoleError() async throws {
        let pages = try Self.writePages()
        defer { try? FileManager.default.removeItem(atPath: pages.folder) }
        try await HeadlessChromium.withSession { browser in
            try await browser.navigate(to: "\(pages.base)/violating.html")
            #expect(try await browser.text(of: try await browser.findElement("#status")) == "untouched")
            let errors = try await browser.browserLog().filter(\.isError)
            #expect(errors.contains { $0.source == "security" && $0.message.contains("Content Security Policy") }, "console: \(errors)")
            // The driver hands each message out once.
            #expect(try await browser.browserLog().isEmpty)
        }
    }

    @Test func aMissingElementIsANamedError() async throws {
        let pages = try Self.writePages()
        defer { try? FileManager.default.removeItem(atPath: pages.folder) }
        try await HeadlessChromium.withSession { browser in
            try await browser.navigate(to: "\(pages.base)/strict.html")
            let error = await #expect(throws: WebDriverError.self) { try await browser.findElement("#no-such-thing") }
            #expect(error?.w3cError == "no such element")
            let waited = await #expect(throws: ConditionTimedOut.self) {
                _ = try await browser.waitForElement("#no-such-thing", timeout: .milliseconds(300))
            }
            #expect(waited?.message.contains("#no-such-thing") == true)
        }
    }

    /// The width in a PNG's header (IHDR, big-endian, bytes 16–19).
    static func pngWidth(_ png: Data) -> Int? {
        guard png.count >= 24 else { return nil }
        let bytes = [UInt8](png[png.startIndex + 16 ..< png.startIndex + 20])
        return bytes.reduce(0) { $0 << 8 | Int($1) }
    }
}

/// The pieces of the client that need no browser.
struct WebDriverParsingTests {
    @Test func readsThePortFromChromedriversStartLine() {
        #expect(Chromedriver.port(in: "Starting ChromeDriver 156.0 on port 0\nOnly local connections are allowed.\nChromeDriver was started successfully on port 41717.\n") == 41717)
        #expect(Chromedriver.port(in: "Starting ChromeDriver 156.0 on port 0\n") == nil)
    }

    @Test func elementReferencesUseTheW3CKey() throws {
        let json = try JSONEncoder().encode(WebElement(id: "e.3"))
        #expect(String(decoding: json, as: UTF8.self) == #"{"element-6066-11e4-a52e-4f735466cecf":"e.3"}"#)
        #expect(try JSONDecoder().decode(WebElement.self, from: json) == WebElement(id: "e.3"))
    }

    @Test func theBrowserRunsHeadlessWithAPrivateProfile() {
        let arguments = HeadlessChromium.arguments(profile: "/tmp/p")
        #expect(arguments.contains("--headless=new"))
        #expect(arguments.contains("--user-data-dir=/tmp/p"))
        #expect(arguments.contains("--disable-gpu"))
    }
}
