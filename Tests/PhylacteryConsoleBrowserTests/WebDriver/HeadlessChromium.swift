import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Headless Chromium driven through chromedriver, for one test: starts both, hands the test a session,
/// and stops both (and removes the browser's temporary profile) whatever the test did.
enum HeadlessChromium {
    /// The browser's switches: headless, no GPU, a private profile in `profile`, a fixed window size so
    /// screenshots are comparable, nothing fetched from the network on its own.
    static func arguments(profile: String) -> [String] {
        var arguments = [
            "--headless=new",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--user-data-dir=\(profile)",
            "--window-size=1280,1000",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
        ]
        // Chromium refuses to start as root with its sandbox on (CI runs the test command as root).
        if geteuid() == 0 { arguments.append("--no-sandbox") }
        return arguments
    }

    /// Runs `body` with a fresh browser session; the browser and its driver are gone when this returns.
    static func withSession<Result>(_ body: (WebDriverSession) async throws -> Result) async throws -> Result {
        let installation = try BrowserInstallation.locate()
        let profile = FileManager.default.temporaryDirectory.path + "/phylactery-chromium-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let driver = try await Chromedriver.start(installation.chromedriver)
        let session: WebDriverSession
        do {
            session = try await WebDriverSession.create(
                driver.transport, capabilities: .init(binary: installation.chromium, arguments: Self.arguments(profile: profile)))
        } catch {
            await driver.stop()
            throw error
        }
        do {
            let result = try await body(session)
            try await session.delete()
            await driver.stop()
            return result
        } catch {
            try? await session.delete()
            await driver.stop()
            throw error
        }
    }
}
