import ArgumentParser
import Foundation
import Logging
import Phylactery
import PhylacteryBackup
import PhylacteryConsole
import PhylacteryEmbedded
import PhylacteryRuntime
import ServiceLifecycle
import UnixSignals

/// `up`: the runtime in the foreground, as a daemon would run it.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run everything in the foreground: the server, migrations by policy, the workers, the tracer and housekeeping.",
        discussion: """
            The embedded server is started and supervised (or PHYLACTERY_DATABASE_URL's server waited \
            for), the hosted extensions' jobs run, and SIGTERM or SIGINT stop everything in reverse \
            order (exit 0). A local server left running by `db start` is used as it is. Settings come \
            from flags (e.g. --queue-concurrency 8), PHYLACTERY_… variables and phylactery.json or \
            .yaml in the home (or --config FILE): `config show` prints them with their sources. \
            Logs go to standard error.
            """)

    @Flag(name: .customLong("console"), help: "Also serve the operator's console on 127.0.0.1 (see `console`).")
    var console = false
    @Option(name: .customLong("console-port"), help: "The console's port with --console.")
    var consolePort: Int = ConsoleConfiguration.defaultPort

    @Argument(parsing: .allUnrecognized, help: "Settings, as flags (see `config show`).")
    var settings: [String] = []

    func run() async throws {
        try await reportingErrors {
            // The runtime says what it does: at least info (debug stays debug under PHYLACTERY_VERBOSE).
            PhylacteryCommands.logLevel = min(PhylacteryCommands.logLevel, .info)
            let logger = Logger(label: "phylactery.up")
            let name = PhylacteryCommands.host.commandName
            // After a restore, jobs that were running at the restore point go back to their queue
            // (the reanimation of PhylacteryBackup) before any worker claims one.
            let reanimate = StartupStep("reanimation after a restore", before: .workers) { context in
                guard let server = context.embeddedServer else { return }
                if let done = try await Reanimation.runIfPending(for: server, client: context.client) {
                    context.logger.notice("reanimated after the restore to \(done.restore.target): \(done.jobs.requeued) running job(s) back in their queue")
                }
            }
            // The console's /metrics shows what the runtime records: bootstrap before the runtime exists.
            let registry = self.console ? ConsoleProcess.metricsRegistry() : nil
            let runtime = try await PhylacteryRuntime(
                extensions: PhylacteryCommands.extensions, arguments: [name] + self.settings, steps: [reanimate], logger: logger)
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
            ]
            if let registry {
                let home = runtime.embeddedServer?.configuration.home ?? ConsoleProcess.home
                var console = try PhylacteryConsole(
                    client: runtime.client, configuration: ConsoleConfiguration(home: home, port: self.consolePort), metrics: registry,
                    federation: try PhylacteryCommands.federation(),
                    logger: Logger(label: "phylactery.console"), onReady: ConsoleProcess.announce)
                console.startsAfter = { try await runtime.health.waitUntilReady() }
                console.backups = runtime.embeddedServer.flatMap { try? Crypt.open($0) }
                services.append(.init(service: console, failureTerminationBehavior: .gracefullyShutdownGroup))
            }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            let announcer = Task {
                try await runtime.health.waitUntilReady()
                let server = runtime.embeddedServer.map { "the local server in \($0.configuration.home)" } ?? "\(runtime.configuration.clientConfiguration.url)"
                // Unbuffered: whoever waits for this line (a supervisor, a test) sees it at once.
                FileHandle.standardOutput.write(Data("\(name) up (pid \(ProcessInfo.processInfo.processIdentifier)) on \(server); SIGTERM or Ctrl-C stops it\n".utf8))
            }
            defer { announcer.cancel() }
            try await group.run()
            print("\(name) stopped")
        }
    }
}

/// `config show`: the effective configuration and where each value came from.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "The runtime's configuration.", subcommands: [Show.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every setting `up` would use, with its source (flag, environment, file, default); secrets redacted.")

        @Argument(parsing: .allUnrecognized, help: "Settings, as flags (as `up` takes them).")
        var settings: [String] = []

        func run() async throws {
            try await reportingErrors {
                let sources = try await ConfigurationSources.standard(arguments: [PhylacteryCommands.host.commandName] + self.settings)
                let queues = try PhylacteryCommands.federation().jobHandlers.queues
                let (_, report) = try await PhylacteryConfiguration.load(from: sources, queueNames: queues)
                print(report)
            }
        }
    }
}
