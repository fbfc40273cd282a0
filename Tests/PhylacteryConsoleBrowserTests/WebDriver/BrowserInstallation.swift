import Foundation
import PhylacteryEmbedded

/// Where the browser test finds Debian's `chromium` and `chromedriver` (from `chromium-driver`), and
/// whether the test command asked to skip it.
///
/// `scripts/test` installs both with apt-get when they are missing; when it cannot, it says so loudly
/// and sets `PHYLACTERY_BROWSER_SKIP` to the reason, and the browser suites are skipped. Run outside the
/// test command without the browser, they fail with the fix instead of passing.
struct BrowserInstallation: Sendable {
    /// The browser program.
    let chromium: String
    /// The WebDriver server for it, of the same version.
    let chromedriver: String

    /// Why the test command could not provide the browser, when it could not (`PHYLACTERY_BROWSER_SKIP`).
    static var skipReason: String? {
        guard let reason = ProcessInfo.processInfo.environment["PHYLACTERY_BROWSER_SKIP"], !reason.isEmpty else { return nil }
        return reason
    }

    /// `PHYLACTERY_CHROMIUM` and `PHYLACTERY_CHROMEDRIVER` when set, else `chromium` and `chromedriver` on `PATH`.
    static func locate() throws -> BrowserInstallation {
        let environment = ProcessInfo.processInfo.environment
        let chromium = environment["PHYLACTERY_CHROMIUM"] ?? Subprocess.which("chromium") ?? Subprocess.which("chromium-browser")
        let chromedriver = environment["PHYLACTERY_CHROMEDRIVER"] ?? Subprocess.which("chromedriver")
        guard let chromium, let chromedriver,
              FileManager.default.isExecutableFile(atPath: chromium), FileManager.default.isExecutableFile(atPath: chromedriver) else {
            throw WebDriverError(.browserMissing, """
                the browser test needs Chromium and chromedriver (found chromium: \(chromium ?? "no"), chromedriver: \(chromedriver ?? "no")). \
                The test command `scripts/test` installs them (as root: apt-get install chromium chromium-driver); \
                or set PHYLACTERY_CHROMIUM and PHYLACTERY_CHROMEDRIVER to their paths, or PHYLACTERY_BROWSER_SKIP to a reason to skip this test.
                """)
        }
        return BrowserInstallation(chromium: chromium, chromedriver: chromedriver)
    }
}
