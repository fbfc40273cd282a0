import Foundation
import Logging
import Phylactery
import PhylacteryTestSupport
import Testing

/// The console in headless Chromium against a seeded database with workers running: every page loads
/// with its expected elements and without a console error (a Content-Security-Policy violation is
/// one), retry on a discarded job completes it, and each page is saved as a PNG screenshot.
@Suite(.serialized, .disabled(if: BrowserInstallation.skipReason != nil, "the test command could not install Chromium (see its message)"))
struct ConsoleBrowserTests {
    static let logger: Logger = {
        var logger = Logger(label: "browser-test")
        logger.logLevel = .warning
        return logger
    }()

    /// A browser on the console: opens pages, checks each one's main element and the console, and
    /// keeps a screenshot of each.
    struct Tour {
        let browser: WebDriverSession
        /// `http://127.0.0.1:PORT` (no token: the cookie carries it after the first visit).
        let origin: String

        /// Waits for `main#page-NAME`, asserts the browser console holds no error since the last
        /// check, and saves the screenshot `NAME.png`.
        func arrive(at name: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            _ = try await self.browser.waitForElement("main#page-\(name)")
            let errors = try await self.browser.browserLog().filter(\.isError)
            let address = try await self.browser.currentURL()
            #expect(errors.isEmpty, "console errors on the \(name) page (\(address)): \(errors)", sourceLocation: sourceLocation)
            let png = try await self.browser.saveScreenshot(to: ConsoleScreenshots.path(name))
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "the \(name) screenshot is not a PNG", sourceLocation: sourceLocation)
        }

        /// Opens `path` of the console and arrives at the page `name`.
        func visit(_ path: String, expecting name: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            try await self.browser.navigate(to: self.origin + path)
            try await self.arrive(at: name, sourceLocation: sourceLocation)
        }

        /// Clicks the first link matching `selector` and arrives at the page `name`.
        func follow(_ selector: String, to name: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            try await self.browser.click(try await self.browser.waitForElement(selector))
            try await self.arrive(at: name, sourceLocation: sourceLocation)
        }

        /// The rendered text of the page's main element.
        func mainText() async throws -> String {
            try await self.browser.text(of: try await self.browser.findElement("main"))
        }
    }

    @Test func everyPageAndARetryInARealBrowser() async throws {
        try await TestDatabase.withFreshDatabase("console_browser") { client in
            // The federation's tables, as a daemon has them before it opens the console.
            try await Migrator(client: client, federation: try Federation.standard(extensions: [])).apply(allowing: [])
            let handlerSwitch = ConsoleSeed.HandlerSwitch()
            let workers = GhoulsConfiguration(
                pollInterval: .milliseconds(100), backoff: RetryBackoff(initial: .milliseconds(50), maximum: .milliseconds(200)),
                retention: nil, workerName: "browser-test")
            try await withGhouls(client, handlers: ConsoleSeed.handlers(handlerSwitch), configuration: workers) {
                let seed = try await ConsoleSeed.enqueueJobs(client)
                try await eventually("the seeded jobs to run (the flaky one discarded)", timeout: .seconds(60)) {
                    let flaky = try await client.jobs.job(seed.discardedJob)
                    var done = flaky.state == .discarded
                    for id in seed.completedJobs where try await client.jobs.job(id).state != .completed { done = false }
                    return done
                }
                // The bug behind the failure is fixed: a retry now succeeds.
                handlerSwitch.fix()
                try await ConsoleSeed.writeTrace(client, logger: Self.logger)
                try await ConsoleSeed.writeMemoriesAndFacts(client)

                try await RunningConsole.with(client) { url in
                    let origin = String(url[..<(url.range(of: "/?token=")?.lowerBound ?? url.endIndex)])
                    #expect(url.hasPrefix("http://127.0.0.1:") && url.contains("/?token="), "the console printed \(url)")
                    try await HeadlessChromium.withSession { browser in
                        let tour = Tour(browser: browser, origin: origin)
                        try await self.walk(tour, seed: seed, tokenURL: url)
                    }
                }
                #expect(try await client.jobs.job(seed.discardedJob).state == .completed)
            }
        }
    }

    func walk(_ tour: Tour, seed: ConsoleSeed, tokenURL: String) async throws {
        let browser = tour.browser
        // The URL with the token opens the overview and leaves the cookie every later page needs.
        try await browser.navigate(to: tokenURL)
        try await tour.arrive(at: "overview")

        // The queue: a row per job with its state; the discarded one among them.
        try await tour.visit("/queue", expecting: "queue")
        let rows = try await browser.findElements("tr.job-row")
        var states = [String: String]()
        for row in rows {
            if let id = try await browser.attribute("data-job-id", of: row), let state = try await browser.attribute("data-state", of: row) {
                states[id.lowercased()] = state
            }
        }
        #expect(states[seed.discardedJob.uuidString.lowercased()] == "discarded", "rows: \(states)")
        // Waiting for tomorrow: the queue's state is "available"; a page may call it "scheduled".
        #expect(["available", "scheduled"].contains(states[seed.scheduledJob.uuidString.lowercased()] ?? "-"), "rows: \(states)")
        for id in seed.completedJobs { #expect(states[id.uuidString.lowercased()] == "completed", "rows: \(states)") }

        // The discarded job's page: its state, its error, and the retry button in a POST form with the CSRF token.
        let discardedRow = try await self.row(of: seed.discardedJob, among: rows, in: browser)
        try await browser.click(try await browser.findElement("a", in: discardedRow))
        try await tour.arrive(at: "job")
        try await browser.waitForText("discarded", in: "#job-state")
        #expect(try await tour.mainText().contains("the mail relay refused"))
        let retry = try await browser.findElement("form[method=post] button[name=action][value=retry]")
        let form = try await browser.findElement("form[method=post]:has(button[name=action][value=retry])")
        let csrf = try await browser.findElement("input[type=hidden][name=csrf]", in: form)
        #expect(try await browser.attribute("value", of: csrf)?.isEmpty == false)

        // Retry: the workers run it again with the fixed handler, and the page (refreshing itself) says so.
        try await browser.click(retry)
        try await browser.waitForText("completed", in: "#job-state", timeout: .seconds(60))
        try await tour.arrive(at: "job")

        // Traces: the list, then the seeded trace's waterfall.
        try await tour.visit("/traces", expecting: "traces")
        #expect(try await tour.mainText().contains(ConsoleSeed.traceName))
        try await tour.follow("main a[href^='/traces/']", to: "trace")
        let waterfall = try await tour.mainText()
        for span in [ConsoleSeed.traceName, "browser.load_cart", "browser.charge_card"] {
            #expect(waterfall.contains(span), "the trace page lacks \(span)")
        }

        // Memory: the stats, a search by text, then one memory's detail.
        try await tour.visit("/memory", expecting: "memory")
        let search = try await browser.findElement("main form input[name=q]")
        try await browser.type("printer", into: search)
        try await browser.submit(search)
        try await browser.waitUntil("the memory search to list the printer memory") {
            try await browser.findElements("tr.memory-row").count == 1
        }
        try await tour.arrive(at: "memory")
        #expect(try await tour.mainText().contains(ConsoleSeed.memoryTexts[0]))
        try await tour.follow("tr.memory-row a[href^='/memory/']", to: "memory-item")
        #expect(try await tour.mainText().contains(ConsoleSeed.memoryTexts[0]))

        // Facts: a namespace's keys, then a key's whole history.
        try await tour.visit("/facts", expecting: "facts")
        let namespace = try await browser.findElement("main form input[name=namespace]")
        try await browser.type(ConsoleSeed.factNamespace, into: namespace)
        try await browser.submit(namespace)
        try await browser.waitUntil("the facts of \(ConsoleSeed.factNamespace) to be listed") {
            try await browser.findElements("tr.fact-row").count == 2
        }
        try await tour.arrive(at: "facts")
        try await tour.follow("tr.fact-row a[href*='key=\(ConsoleSeed.factKey)']", to: "fact-key")
        let history = try await tour.mainText()
        #expect(history.contains("10.0.0.254") && history.contains("10.0.0.1"), "the key's history: \(history)")

        // Migrations (read-only).
        try await tour.visit("/migrations", expecting: "migrations")

        // Backups: this test's server has none configured, and the page says how to set them up.
        try await tour.visit("/backups", expecting: "backups")
        #expect(try await tour.mainText().contains("phylactery db archive --to DIR"))
    }

    /// The row of job `id` (its data-job-id, in whichever case the page writes it).
    func row(of id: UUID, among rows: [WebElement], in browser: WebDriverSession) async throws -> WebElement {
        for row in rows where try await browser.attribute("data-job-id", of: row)?.lowercased() == id.uuidString.lowercased() {
            return row
        }
        throw WebDriverError(.command, "the queue page has no row for job \(id)", w3cError: "no such element")
    }
}
