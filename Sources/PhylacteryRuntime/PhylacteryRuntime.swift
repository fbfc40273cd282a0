public import Foundation
public import Logging
public import Phylactery
public import PhylacteryEmbedded
public import ServiceLifecycle
import Tracing

/// Everything a daemon needs from Phylactery, as one `Service` for its `ServiceGroup`.
///
/// ```swift
/// let runtime = try await PhylacteryRuntime(extensions: [Notebook(), Tasks()])   // flags, PHYLACTERY_…, phylactery.json
/// let group = ServiceGroup(services: [runtime, MyAPI(client: runtime.client)],
///                          gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
///
/// ``run()`` goes through the ``StartupStage``s in order: the server (the embedded one started and
/// supervised — restarted with backoff when it dies — or the external one waited for), the client
/// and the chambers, the ``MigrationPolicy``, the tracer, then the workers (ghouls for every handler
/// the enabled extensions registered, with per-queue settings) and the housekeeping jobs
/// (``Housekeeping``). Then it is ready (``health``). On graceful shutdown everything stops in
/// reverse order: the workers drain, the tracer flushes, the client closes, and the embedded server
/// stops last — if the runtime started it.
///
/// Spans made in the runtime's tasks (jobs, handlers, migrations) go to its tracer through
/// swift-distributed-tracing's task-local tracer; nothing is bootstrapped globally.
public final class PhylacteryRuntime: Service, Sendable {
    /// The queue of the ``Housekeeping`` jobs.
    public static let housekeepingQueue = "housekeeping"

    /// The settings.
    public let configuration: PhylacteryConfiguration
    /// The core's models and the enabled extensions'; ``Federation/dormant`` lists the disabled ones.
    public let federation: Federation
    /// The client every part of the runtime uses: hand it to the daemon's own services. It works
    /// while ``run()`` runs; wait for ``RuntimeHealth/waitUntilReady()`` before the first query.
    public let client: PhylacteryClient
    /// The tracer, unless `traces.enabled` is off.
    public let tracer: PhylacteryTracer?
    /// The workers, unless `queue.enabled` is off.
    public let ghouls: Ghouls?
    /// The embedded server, when the runtime runs one.
    public let embeddedServer: EmbeddedServer?
    /// Ready and live, for a daemon to expose.
    public let health = RuntimeHealth()
    let steps: [StartupStep]
    let logger: Logger
    let supervisor: EmbeddedServerSupervisor?

    /// A runtime for `configuration` hosting `extensions` (those in
    /// ``PhylacteryConfiguration/disabledExtensions`` left out).
    ///
    /// - Parameters:
    ///   - steps: extra start-up steps, each run before its ``StartupStage``.
    /// - Throws: ``PhylacteryError`` for an invalid configuration, or a federation that is refused
    ///   before any DDL (two owners of one name; an enabled extension's foreign key into a disabled
    ///   one's table; a disabled slug that is not compiled in).
    public init(
        configuration: PhylacteryConfiguration,
        extensions: [any PhylacteryExtension],
        steps: [StartupStep] = [],
        logger: Logger = Logger(label: "phylactery.runtime")
    ) throws {
        try configuration.validate()
        self.configuration = configuration
        self.steps = steps
        self.logger = logger
        self.federation = try Federation.standard(extensions: extensions, disabled: configuration.disabledExtensions)
        self.client = PhylacteryClient(configuration: configuration.clientConfiguration, logger: logger)
        if configuration.usesEmbeddedServer {
            let server = EmbeddedServer(configuration: configuration.embeddedServer, logger: logger)
            self.embeddedServer = server
            self.supervisor = EmbeddedServerSupervisor(server: server, settings: configuration.server, health: self.health, logger: logger)
        } else {
            self.embeddedServer = nil
            self.supervisor = nil
        }
        if configuration.traces.enabled {
            var settings = PhylacteryTracer.Configuration(service: configuration.traces.service)
            settings.partitionsAhead = configuration.traces.partitionsAhead
            self.tracer = PhylacteryTracer(client: self.client, configuration: settings, logger: logger)
        } else {
            self.tracer = nil
        }
        if configuration.queue.enabled {
            var handlers = self.federation.jobHandlers
            Housekeeping.register(into: &handlers)
            self.ghouls = Ghouls(client: self.client, handlers: handlers, configuration: Self.ghoulsConfiguration(configuration, handlers: handlers, federation: self.federation), logger: logger)
        } else {
            self.ghouls = nil
        }
    }

    /// A runtime configured from the command line, `PHYLACTERY_…` environment variables and the
    /// configuration file (``ConfigurationSources/standard(arguments:environment:)``), hosting `extensions`.
    public convenience init(
        extensions: [any PhylacteryExtension],
        arguments: [String] = CommandLine.arguments,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        steps: [StartupStep] = [],
        logger: Logger = Logger(label: "phylactery.runtime")
    ) async throws {
        let sources = try await ConfigurationSources.standard(arguments: arguments, environment: environment)
        let queues = try Federation.standard(extensions: extensions).jobHandlers.queues
        let configuration = try await PhylacteryConfiguration.load(from: sources, queueNames: queues).configuration
        try self.init(configuration: configuration, extensions: extensions, steps: steps, logger: logger)
    }

    /// The workers' settings: the queues of every handler (or `queue.names`), `default` and
    /// ``housekeepingQueue``, each with its `queues.<name>.…` settings; the disabled extensions'
    /// kinds left unclaimed; the housekeeping jobs and the extensions' scheduled jobs on their schedules.
    static func ghoulsConfiguration(_ configuration: PhylacteryConfiguration, handlers: JobHandlers, federation: Federation) -> GhoulsConfiguration {
        let names = configuration.queue.names.map(Set.init) ?? handlers.queues.union([JobOptions.defaultQueue, Self.housekeepingQueue])
        var queues: [String: QueueConfiguration] = [:]
        for name in names {
            // Housekeeping is one job at a time unless configured otherwise.
            let fallback = QueueConfiguration(concurrency: name == Self.housekeepingQueue ? 1 : configuration.queue.concurrency)
            queues[name] = configuration.queue.queues[name] ?? fallback
        }
        var settings = GhoulsConfiguration(
            queues: queues, lease: configuration.queue.lease, pollInterval: configuration.queue.pollInterval,
            listens: configuration.queue.listen, shutdownGracePeriod: configuration.queue.shutdownGracePeriod,
            // Pruning is a housekeeping job here, done once for the whole fleet.
            retention: nil, periodicJobs: Housekeeping.periodicJobs(configuration) + federation.periodicJobs)
        settings.skippedKinds = federation.dormantJobKinds
        return settings
    }

    // MARK: - Running

    /// Runs the stages, then serves until graceful shutdown (or until the server cannot be kept
    /// running), then stops everything in reverse order.
    ///
    /// - Throws: what stopped the start-up (a server that cannot start, with its log's tail; a wrong
    ///   password; a migration policy that refuses to start) or the serving.
    public func run() async throws {
        do {
            try await withGracefulShutdownHandler {
                if let tracer = self.tracer {
                    try await withTracer(tracer) { try await self.runStages() }
                } else {
                    try await self.runStages()
                }
            } onGracefulShutdown: {
                self.health.enter(.stopping)
            }
        } catch {
            self.health.enter(.failed, detail: "\(error)", failure: error)
            throw error
        }
        self.health.enter(.stopped)
        self.logger.info("phylactery runtime stopped")
    }

    private enum Ending: Sendable {
        case startedUp
        case startFailed(any Error)
        case groupEnded((any Error)?)
    }

    private func runStages() async throws {
        self.logStart()
        var initial: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let supervisor = self.supervisor { initial.append(Self.part(supervisor, "embedded server")) }
        initial.append(Self.part(self.client, "client"))
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: initial, logger: self.logger))

        let (startError, groupError) = await withTaskGroup(of: Ending.self) { tasks -> ((any Error)?, (any Error)?) in
            tasks.addTask {
                do {
                    try await group.run()
                    return .groupEnded(nil)
                } catch {
                    return .groupEnded(error)
                }
            }
            tasks.addTask {
                do {
                    try await self.startUp(adding: group)
                    return .startedUp
                } catch {
                    return .startFailed(error)
                }
            }
            var startError: (any Error)?, groupError: (any Error)?
            while let ending = await tasks.next() {
                switch ending {
                case .startedUp:
                    break
                case .startFailed(let error):
                    if !(error is CancellationError) { startError = error }
                    await group.triggerGracefulShutdown()
                case .groupEnded(let error):
                    groupError = error
                    tasks.cancelAll()
                }
            }
            return (startError, groupError)
        }
        if let error = startError ?? groupError { throw error }
    }

    /// A part of the runtime in its service group: whatever way it ends, the rest shut down.
    private static func part(_ service: any Service, _ name: String) -> ServiceGroupConfiguration.ServiceConfiguration {
        .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: name)
    }

    /// The stages in order, with the extra steps before each.
    private func startUp(adding group: ServiceGroup) async throws {
        let context = StartupContext(
            configuration: self.configuration, client: self.client, federation: self.federation, embeddedServer: self.embeddedServer, logger: self.logger)
        for stage in StartupStage.allCases {
            for step in self.steps where step.stage == stage {
                self.logger.info("start-up step", metadata: ["step": "\(step.name)", "before": "\(stage)"])
                try await step.body(context)
            }
            try Task.checkCancellation()
            switch stage {
            case .server:
                self.health.enter(.waitingForServer)
                if let supervisor = self.supervisor {
                    try await supervisor.waitUntilReady()
                } else if let url = self.configuration.database.url {
                    let waiter = ExternalServerWaiter(
                        url: url, timeout: self.configuration.database.waitTimeout, clock: ContinuousClock(), logger: self.logger,
                        probe: ExternalServerWaiter<ContinuousClock>.connecting(to: url, options: self.client.configuration.options, logger: self.logger))
                    try await waiter.wait()
                    self.health.serverUp()
                }
            case .client:
                self.health.enter(.migrating)
                try await self.client.prepare()
            case .migrations:
                let options = Migrator.Options(lockTimeout: self.configuration.migrations.lockTimeout, directory: self.configuration.migrations.directory)
                let migrator = Migrator(client: self.client, federation: self.federation, options: options)
                if let line = try await self.configuration.migrations.policy.apply(with: migrator) {
                    self.logger.info("\(line)", metadata: ["policy": "\(self.configuration.migrations.policy.rawValue)"])
                }
                for dormant in self.federation.dormant {
                    self.logger.notice("extension disabled by the configuration: its tables are dormant, its jobs wait", metadata: [
                        "extension": "\(dormant.slug)", "tables": "\(dormant.tables.joined(separator: ","))",
                    ])
                }
            case .tracer:
                if let tracer = self.tracer { await group.addServiceUnlessShutdown(Self.part(tracer, "tracer")) }
            case .workers:
                if let ghouls = self.ghouls { await group.addServiceUnlessShutdown(Self.part(ghouls, "ghouls")) }
            }
        }
        try Task.checkCancellation()
        self.health.enter(.running)
        self.logger.info("phylactery runtime ready", metadata: [
            "queues": "\(self.ghouls?.configuration.queues.keys.sorted().joined(separator: ",") ?? "none")",
            "kinds": "\(self.ghouls?.handlers.kinds.joined(separator: ",") ?? "none")",
        ])
    }

    private func logStart() {
        if let server = self.embeddedServer {
            self.logger.info("phylactery runtime starting with the embedded server", metadata: [
                "home": "\(server.configuration.home)", "socket": "\(server.configuration.socketPath)",
                "migrations": "\(self.configuration.migrations.policy.rawValue)",
            ])
        } else if let url = self.configuration.database.url {
            // The URL's description hides its password.
            self.logger.info("phylactery runtime starting with an external server", metadata: [
                "server": "\(url.endpointDescription)", "user": "\(url.username)", "database": "\(url.database)",
                "migrations": "\(self.configuration.migrations.policy.rawValue)",
            ])
        }
    }
}
