import Configuration
import Foundation
import Phylactery
@testable import PhylacteryRuntime
import Testing

/// The runtime's configuration: flags over environment over file over defaults, every value checked
/// against its key, secrets marked and redacted, secret files, and the one table of keys.
@Suite struct ConfigurationTests {
    static let password = "pw-3f9a1c77e2"

    /// Sources built the way a daemon builds them, from a given command line and environment.
    static func load(arguments: [String] = ["daemon"], environment: [String: String] = [:], queues: [String] = []) async throws
        -> (configuration: PhylacteryConfiguration, report: ConfigurationReport) {
        var environment = environment
        environment["HOME"] = environment["HOME"] ?? "/home/someone"
        let sources = try await ConfigurationSources.standard(arguments: arguments, environment: environment)
        return try await PhylacteryConfiguration.load(from: sources, queueNames: queues)
    }

    static func refusal(arguments: [String] = ["daemon"], environment: [String: String] = [:]) async -> PhylacteryError? {
        do {
            _ = try await load(arguments: arguments, environment: environment)
            return nil
        } catch let error as PhylacteryError {
            return error
        } catch {
            Issue.record("not a PhylacteryError: \(error)")
            return nil
        }
    }

    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/phyl-config-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func defaults() async throws {
        let (configuration, report) = try await Self.load(environment: ["XDG_DATA_HOME": "/data"])
        #expect(configuration.server.home == "/data/phylactery" || configuration.server.home == "/var/lib/phylactery")
        #expect(configuration.usesEmbeddedServer)
        #expect(configuration.migrations.policy == .auto)
        #expect(configuration.queue.concurrency == 10 && configuration.queue.lease == .seconds(30))
        #expect(configuration.queue.retention == .seconds(7 * 86_400))
        #expect(report["server.port"] == .init(key: "server.port", value: "5432", source: "default", isSecret: false))
        #expect(report["queue.retention"]?.value == "7d")
    }

    @Test func severalHostsAndTheTopologySettingsReachTheClient() async throws {
        let (configuration, report) = try await Self.load(
            arguments: ["daemon", "--database-failover-timeout", "45s"],
            environment: [
                "PHYLACTERY_DATABASE_URL": "postgres://app:\(Self.password)@db1:5432,db2:5433/app",
                "PHYLACTERY_DATABASE_MAXIMUM_REPLICA_LAG": "250ms",
                "PHYLACTERY_DATABASE_TOPOLOGY_CHECK_INTERVAL": "2s",
            ])
        #expect(configuration.database.url?.endpoints == [.tcp(host: "db1", port: 5432), .tcp(host: "db2", port: 5433)])
        let options = configuration.clientConfiguration.options
        #expect(options.maximumReplicaLag == .milliseconds(250))
        #expect(options.failoverTimeout == .seconds(45))
        #expect(options.topologyCheckInterval == .seconds(2))
        #expect(report["database.failoverTimeout"]?.source == "flags")
        #expect(report["database.maximumReplicaLag"]?.value == "250ms")
        // Defaults when unset.
        let (defaults, _) = try await Self.load()
        #expect(defaults.clientConfiguration.options.maximumReplicaLag == .seconds(5))
        #expect(defaults.clientConfiguration.options.failoverTimeout == .seconds(30))
        #expect(defaults.clientConfiguration.options.topologyCheckInterval == .seconds(1))
        // Out of range is refused with the key named.
        let refused = await Self.refusal(environment: ["PHYLACTERY_DATABASE_TOPOLOGY_CHECK_INTERVAL": "1ms"])
        #expect(refused?.description.contains("database.topologyCheckInterval") == true)
    }

    @Test func flagsOverrideTheEnvironmentWhichOverridesTheFile() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("""
            {"server": {"port": 6001, "startTimeout": 45}, "queue": {"concurrency": 3, "lease": "1m"}, "migrations": {"policy": "check"}}
            """.utf8).write(to: URL(fileURLWithPath: directory + "/phylactery.json"))
        let (configuration, report) = try await Self.load(
            arguments: ["daemon", "--server-port", "6003"],
            environment: ["PHYLACTERY_HOME": directory, "PHYLACTERY_SERVER_PORT": "6002", "PHYLACTERY_QUEUE_CONCURRENCY": "4"])
        #expect(configuration.server.port == 6003)
        #expect(report["server.port"]?.source == "flags")
        #expect(configuration.queue.concurrency == 4)
        #expect(report["queue.concurrency"]?.source == "environment")
        #expect(configuration.queue.lease == .seconds(60))
        #expect(configuration.server.startTimeout == .seconds(45), "a number in the file is seconds")
        #expect(report["queue.lease"]?.source == "file \(directory)/phylactery.json")
        #expect(configuration.migrations.policy == .check)
        #expect(report["home"]?.source == "environment")
    }

    @Test func yamlFileNamedByFlag() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/daemon.yaml"
        try Data("""
            extensions:
              disabled: [tasks, notebook]
            queues:
              mail:
                concurrency: 2
                rateLimit: 100
                rateInterval: 1m
            traces:
              retention: 0
            """.utf8).write(to: URL(fileURLWithPath: path))
        let (configuration, report) = try await Self.load(arguments: ["daemon", "--config", path], queues: ["mail"])
        #expect(configuration.disabledExtensions == ["tasks", "notebook"])
        #expect(configuration.queue.queues["mail"] == QueueConfiguration(concurrency: 2, rateLimit: QueueRateLimit(jobs: 100, per: .seconds(60))))
        #expect(configuration.traces.retention == nil, "0 keeps every partition")
        #expect(report["queues.mail.concurrency"]?.source == "file \(path)")
    }

    @Test func aNamedFileThatDoesNotExistIsRefused() async {
        let error = await Self.refusal(environment: ["PHYLACTERY_CONFIG": "/nonexistent/phylactery.json"])
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("/nonexistent/phylactery.json") == true)
    }

    @Test func valuesAreCheckedAgainstTheirKey() async {
        let port = await Self.refusal(environment: ["PHYLACTERY_SERVER_PORT": "70000"])
        #expect(port?.message.contains("server.port (PHYLACTERY_SERVER_PORT, --server-port): 70000 is out of range") == true, "\(String(describing: port))")
        let notNumber = await Self.refusal(environment: ["PHYLACTERY_QUEUE_CONCURRENCY": "many"])
        #expect(notNumber?.message.contains("queue.concurrency") == true)
        let duration = await Self.refusal(environment: ["PHYLACTERY_QUEUE_LEASE": "soon"])
        #expect(duration?.message.contains("'soon' is not a duration") == true, "\(String(describing: duration))")
        let negative = await Self.refusal(environment: ["PHYLACTERY_QUEUE_LEASE": "-5s"])
        #expect(negative?.code == .invalidConfiguration)
        let policy = await Self.refusal(environment: ["PHYLACTERY_MIGRATIONS_POLICY": "sometimes"])
        #expect(policy?.message.contains("auto, files, check, off") == true)
        let files = await Self.refusal(environment: ["PHYLACTERY_MIGRATIONS_POLICY": "files"])
        #expect(files?.message.contains("migrations.directory") == true)
        let external = await Self.refusal(environment: ["PHYLACTERY_SERVER_MODE": "external"])
        #expect(external?.message.contains("database.url") == true)
    }

    @Test func theDatabaseURLIsSecretEverywhere() async throws {
        let url = "postgres://app:\(Self.password)@db.internal:5433/app?sslmode=require"
        let (configuration, report) = try await Self.load(environment: ["PHYLACTERY_DATABASE_URL": url])
        #expect(!configuration.usesEmbeddedServer)
        #expect(configuration.database.url?.password == Self.password)
        #expect(report["database.url"] == .init(key: "database.url", value: "<redacted>", source: "environment", isSecret: true))
        #expect(!report.description.contains(Self.password))
        #expect(!"\(configuration.database.url!)".contains(Self.password))
        #expect(!"\(configuration.clientConfiguration.url)".contains(Self.password))
        // On the command line too.
        let (_, flagged) = try await Self.load(arguments: ["daemon", "--database-url", url])
        #expect(flagged["database.url"]?.value == "<redacted>" && flagged["database.url"]?.source == "flags")
    }

    @Test func secretsFromFiles() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("postgres://app@db.internal/app\n".utf8).write(to: URL(fileURLWithPath: directory + "/url"))
        try Data("\(Self.password)\n".utf8).write(to: URL(fileURLWithPath: directory + "/password"))
        let (configuration, report) = try await Self.load(environment: [
            "PHYLACTERY_DATABASE_URL_FILE": directory + "/url", "PHYLACTERY_DATABASE_PASSWORD_FILE": directory + "/password",
        ])
        #expect(configuration.database.url?.password == Self.password, "the file's trailing newline is not part of it")
        #expect(configuration.database.url?.endpoint == .tcp(host: "db.internal", port: 5432))
        #expect(report["database.url"]?.source == "file \(directory)/url (database.urlFile)")
        #expect(report["database.password"] == .init(key: "database.password", value: "<redacted>", source: "file \(directory)/password (database.passwordFile)", isSecret: true))
        #expect(!report.description.contains(Self.password))
    }

    @Test func aSecretGivenTwiceOrInAnUnreadableFileIsRefusedWithoutShowingIt() async {
        let both = await Self.refusal(environment: [
            "PHYLACTERY_DATABASE_URL": "postgres://app:\(Self.password)@h/app", "PHYLACTERY_DATABASE_URL_FILE": "/run/secrets/url",
        ])
        #expect(both?.message.contains("both database.url and database.urlFile") == true)
        let missing = await Self.refusal(environment: ["PHYLACTERY_DATABASE_URL_FILE": "/nonexistent/secret"])
        #expect(missing?.message.contains("/nonexistent/secret cannot be read") == true)
        let malformed = await Self.refusal(environment: ["PHYLACTERY_DATABASE_URL": "mysql://app:\(Self.password)@h/app"])
        #expect(malformed?.code == .invalidConfiguration)
        for error in [both, missing, malformed] {
            #expect(!"\(String(describing: error))".contains(Self.password))
            #expect(!String(reflecting: error as Any).contains(Self.password))
        }
        let orphanPassword = await Self.refusal(environment: ["PHYLACTERY_DATABASE_PASSWORD": Self.password])
        #expect(orphanPassword?.message.contains("database.url is not") == true)
    }

    @Test func durations() {
        #expect(ConfigurationValues.duration("250ms") == .milliseconds(250))
        #expect(ConfigurationValues.duration("30s") == .seconds(30))
        #expect(ConfigurationValues.duration("1.5h") == .seconds(5400))
        #expect(ConfigurationValues.duration("7d") == .seconds(604_800))
        #expect(ConfigurationValues.duration("45") == .seconds(45))
        #expect(ConfigurationValues.duration("-1s") == nil)
        #expect(ConfigurationValues.duration("inf") == nil)
        #expect(ConfigurationValues.duration("soon") == nil)
        #expect(ConfigurationValues.render(.seconds(604_800)) == "7d")
        #expect(ConfigurationValues.render(.milliseconds(250)) == "250ms")
        #expect(ConfigurationValues.render(.seconds(90)) == "90s")
    }

    @Test func environmentVariablesAndFlagsOfTheKeys() {
        #expect(ConfigurationKey.serverStartTimeout.environmentVariable == "PHYLACTERY_SERVER_START_TIMEOUT")
        #expect(ConfigurationKey.serverStartTimeout.flag == "--server-start-timeout")
        #expect(ConfigurationKey.databaseURLFile.environmentVariable == "PHYLACTERY_DATABASE_URL_FILE")
        #expect(ConfigurationKey.databasePasswordFile.environmentVariable == "PHYLACTERY_DATABASE_PASSWORD_FILE")
        #expect(ConfigurationKey.home.environmentVariable == "PHYLACTERY_HOME")
        #expect(ConfigurationKey.pgBin.environmentVariable == "PHYLACTERY_PG_BIN")
        #expect(ConfigurationKey.queueConcurrencyPerQueue.environmentVariable == "PHYLACTERY_QUEUES_NAME_CONCURRENCY")
        #expect(Set(ConfigurationKey.all.map(\.name)).count == ConfigurationKey.all.count)
    }

    /// Every key read by the configuration is in the table, and set through its documented variable.
    @Test func everyDocumentedVariableIsRead() async throws {
        let samples: [String: String] = [
            "PHYLACTERY_PG_BIN": "/opt/pg/bin", "PHYLACTERY_SERVER_MODE": "embedded", "PHYLACTERY_SERVER_TCP": "true",
            "PHYLACTERY_SERVER_WHEEL": "/w.whl", "PHYLACTERY_SERVER_START_TIMEOUT": "61s", "PHYLACTERY_SERVER_RESTART_DELAY": "2s",
            "PHYLACTERY_SERVER_RESTART_MAXIMUM_DELAY": "9s", "PHYLACTERY_SERVER_MAXIMUM_START_FAILURES": "7",
            "PHYLACTERY_DATABASE_NAME": "daemon", "PHYLACTERY_DATABASE_WAIT_TIMEOUT": "3m", "PHYLACTERY_DATABASE_CONNECT_TIMEOUT": "4s",
            "PHYLACTERY_DATABASE_MAXIMUM_CONNECTIONS": "9", "PHYLACTERY_DATABASE_APPLICATION_NAME": "d",
            "PHYLACTERY_MEMORY_DEFAULT_SENSITIVITY": "secret",
            "PHYLACTERY_MIGRATIONS_POLICY": "off", "PHYLACTERY_MIGRATIONS_DIRECTORY": "/m", "PHYLACTERY_MIGRATIONS_LOCK_TIMEOUT": "3s",
            "PHYLACTERY_EXTENSIONS_DISABLED": "tasks", "PHYLACTERY_QUEUE_ENABLED": "false", "PHYLACTERY_QUEUE_NAMES": "a,b",
            "PHYLACTERY_QUEUE_POLL_INTERVAL": "2s", "PHYLACTERY_QUEUE_LISTEN": "false", "PHYLACTERY_QUEUE_SHUTDOWN_GRACE_PERIOD": "3s",
            "PHYLACTERY_QUEUE_RETENTION": "1d", "PHYLACTERY_QUEUES_A_GLOBAL_CONCURRENCY": "5", "PHYLACTERY_TRACES_ENABLED": "false",
            "PHYLACTERY_TRACES_SERVICE": "svc", "PHYLACTERY_TRACES_RETENTION": "2d", "PHYLACTERY_TRACES_PARTITIONS_AHEAD": "4",
            "PHYLACTERY_HOUSEKEEPING_INTERVAL": "10m",
        ]
        let (configuration, report) = try await Self.load(environment: samples)
        let documented = Set(ConfigurationKey.all.map(\.environmentVariable))
        for name in samples.keys where !name.hasPrefix("PHYLACTERY_QUEUES_A_") {
            #expect(documented.contains(name), "\(name) is in the table")
        }
        let variables = Dictionary(uniqueKeysWithValues: ConfigurationKey.all.map { ($0.name, $0.environmentVariable) })
        for entry in report.entries {
            let variable = variables[entry.key] ?? (entry.key == "queues.a.globalConcurrency" ? "PHYLACTERY_QUEUES_A_GLOBAL_CONCURRENCY" : "")
            #expect((entry.source == "environment") == (samples[variable] != nil), "\(entry.key) was read from \(variable) (\(entry.source))")
        }
        #expect(configuration.server.pgBin == "/opt/pg/bin" && configuration.server.tcp && configuration.server.maximumStartFailures == 7)
        #expect(configuration.database.waitTimeout == .seconds(180) && configuration.database.maximumConnections == 9)
        #expect(configuration.queue.names == ["a", "b"] && !configuration.queue.listen && !configuration.queue.enabled)
        #expect(configuration.queue.queues["a"]?.globalConcurrency == 5)
        #expect(configuration.traces.partitionsAhead == 4 && configuration.housekeepingInterval == .seconds(600))
        #expect(configuration.defaultSensitivity == .secret && configuration.clientConfiguration.options.defaultSensitivity == .secret)
    }

    /// The README's table is the one rendered from the keys: the documentation cannot drift.
    @Test func theReadmeShowsTheTableOfKeys() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(ConfigurationKey.markdownTable), "README.md must contain ConfigurationKey.markdownTable verbatim")
        let docc = try String(contentsOf: root.appendingPathComponent("Sources/PhylacteryRuntime/Documentation.docc/Configuration.md"), encoding: .utf8)
        #expect(docc.contains(ConfigurationKey.markdownTable), "the DocC article must contain it too")
    }
}
