import Foundation
import Logging
import Phylactery
import PhylacteryConsole
import PhylacteryTestSupport
import ServiceLifecycle
import Synchronization

/// The console served in this process on a free loopback port, the way a daemon mounts it (a `Service`
/// in a `ServiceGroup`), for one test; stopped by a graceful shutdown afterwards.
enum RunningConsole {
    /// Runs the console over `client` with a token in a temporary home and hands `body` the URL it
    /// printed (with the token). Pages refresh themselves every second.
    static func with<Result>(_ client: PhylacteryClient, _ body: (String) async throws -> Result) async throws -> Result {
        let home = try TestDatabase.temporaryHome("console")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let announced = Announced()
        let console = try PhylacteryConsole(
            client: client, configuration: ConsoleConfiguration(home: home, port: 0, refreshInterval: .seconds(1), streamLifetime: .seconds(10)),
            logger: Logger(label: "browser-test.console"),
            onReady: { url in announced.url.withLock { $0 = url } })
        let group = ServiceGroup(configuration: .init(services: [console], logger: Logger(label: "browser-test.group")))
        let serving = Task { try await group.run() }
        do {
            var url: String?
            try await eventually("the console to listen and print its URL", timeout: .seconds(30)) {
                url = announced.url.withLock { $0 }
                return url != nil
            }
            let result = try await body(url!)
            await group.triggerGracefulShutdown()
            try await serving.value
            return result
        } catch {
            await group.triggerGracefulShutdown()
            _ = try? await serving.value
            throw error
        }
    }

    /// The URL the console announces from its server's thread.
    private final class Announced: Sendable {
        let url = Mutex<String?>(nil)
    }
}
