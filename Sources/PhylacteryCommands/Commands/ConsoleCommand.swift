import ArgumentParser
import Foundation
import Logging
import Metrics
import Phylactery
import PhylacteryBackup
import PhylacteryConsole
import PhylacteryEmbedded
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Where the console listens: `--port`, `--listen ADDRESS` with `--tls-cert` and `--tls-key`.
struct ConsoleOptions: ParsableArguments {
    @Option(name: .customLong("port"), help: "The console's port on 127.0.0.1.")
    var port: Int = ConsoleConfiguration.defaultPort
    @Option(name: .customLong("listen"), help: "Serve on this address instead of 127.0.0.1 (requires --tls-cert and --tls-key).")
    var listen: String?
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain for HTTPS.")
    var tlsCertificate: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key for HTTPS.")
    var tlsKey: String?

    func validate() throws {
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together.") }
    }

    /// The console's configuration, its token kept in `home`.
    func configuration(home: String) -> ConsoleConfiguration {
        let tls = tlsCertificate.flatMap { certificate in tlsKey.map { ConsoleConfiguration.TLS(certificatePath: certificate, keyPath: $0) } }
        return ConsoleConfiguration(home: home, host: listen ?? "127.0.0.1", port: port, listen: listen != nil, tls: tls)
    }
}

/// The console's pieces for one process: the Prometheus registry the process's metrics go to.
enum ConsoleProcess {
    private static let registry = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Bootstraps the process's `MetricsSystem` with a Prometheus registry (once) and returns it.
    static func metricsRegistry() -> PrometheusCollectorRegistry {
        registry.withLock { registry in
            if let registry { return registry }
            let made = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: made))
            registry = made
            return made
        }
    }

    /// The home the token lives in: the local server's (PHYLACTERY_HOME or the default).
    static var home: String { EmbeddedServer.Configuration.fromEnvironment().home }

    /// The local server's backups, when it has them configured (`db archive`); `nil` for an external
    /// server (PHYLACTERY_DATABASE_URL) or without backup settings.
    static func localBackups() -> Crypt? {
        guard ProcessInfo.processInfo.environment["PHYLACTERY_DATABASE_URL"] == nil else { return nil }
        return try? Crypt.open(EmbeddedServer(configuration: .fromEnvironment()))
    }

    /// Prints the start line with the URL to open. Unbuffered: whoever waits for it sees it at once.
    static func announce(_ url: String) {
        FileHandle.standardOutput.write(Data("console on \(url) (SIGTERM or Ctrl-C stops it)\n".utf8))
    }
}

/// `console`: the operator's web console in the foreground.
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve the operator's web console (queue, traces, health; JSON API; /metrics) on 127.0.0.1.",
        discussion: """
            Uses the server named by PHYLACTERY_DATABASE_URL, or else the local server in $PHYLACTERY_HOME. \
            The first start creates an access token in the home (console-token, mode 0600); the start \
            line prints the URL with it. Other addresses need --listen ADDRESS with --tls-cert and --tls-key.
            """)

    @OptionGroup var options: ConsoleOptions

    func run() async throws {
        try await reportingErrors {
            let logger = Logger(label: "phylactery.console")
            // The bind rules are checked before anything connects.
            let configuration = self.options.configuration(home: ConsoleProcess.home)
            try configuration.validate()
            let registry = ConsoleProcess.metricsRegistry()
            let url = try EmbeddedServer.resolveDatabaseURL()
            try await PhylacteryClient.withClient(configuration: .init(url: url), logger: logger) { client in
                var console = try PhylacteryConsole(
                    client: client, configuration: configuration, metrics: registry, federation: try PhylacteryCommands.federation(), logger: logger,
                    onReady: ConsoleProcess.announce)
                console.backups = ConsoleProcess.localBackups()
                let group = ServiceGroup(configuration: .init(
                    services: [.init(service: console)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
            }
        }
    }
}
