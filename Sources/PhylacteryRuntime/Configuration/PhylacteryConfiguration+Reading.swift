public import Configuration
import Foundation
public import Phylactery
import PhylacteryEmbedded

extension PhylacteryConfiguration {
    /// Reads every key of ``ConfigurationKey/all`` from `reader`, checking each value against its type
    /// and range; unset keys keep their defaults.
    ///
    /// `database.url` and `database.password` are read as secrets, and so are the contents of the
    /// files `database.urlFile` and `database.passwordFile` name (container secrets). Nothing of a
    /// secret value appears in an error.
    ///
    /// - Parameters:
    ///   - reader: flags, environment, file… (``ConfigurationSources/standard(arguments:environment:)``
    ///     builds the usual ones), with keys such as `server.port`.
    ///   - queueNames: queues whose `queues.<name>.…` keys to read, besides those named by
    ///     `queue.names`, `default` and the housekeeping queue (``PhylacteryRuntime`` passes its
    ///     handlers' queues).
    ///   - environment: where the default home is derived from (`$XDG_DATA_HOME`, `$HOME`); default
    ///     this process's.
    /// - Throws: ``PhylacteryError`` with ``PhylacteryError/Code/invalidConfiguration`` naming the key,
    ///   its environment variable and flag, and what it accepts.
    public init(reader: ConfigReader, queueNames: some Sequence<String> = [String](), environment: [String: String]? = nil) async throws {
        try await self.init(reader: reader, queueNames: Array(queueNames), environment: environment, recorder: nil)
    }

    init(reader: ConfigReader, queueNames: [String], environment: [String: String]?, recorder: ConfigurationRecorder?) async throws {
        let read = KeyReader(reader: reader, recorder: recorder)
        self.init()
        var base = environment ?? ProcessInfo.processInfo.environment
        base["PHYLACTERY_HOME"] = nil
        base["PHYLACTERY_PG_BIN"] = nil
        self.server.home = try await read.string(.home) ?? EmbeddedServer.Configuration.fromEnvironment(base).home
        self.server.pgBin = try await read.string(.pgBin)
        self.server.mode = try await read.choice(.serverMode, ServerMode.self) ?? .auto
        self.server.tcp = try await read.bool(.serverTCP) ?? false
        self.server.port = try await read.int(.serverPort) ?? 5432
        self.server.wheel = try await read.string(.serverWheel)
        self.server.startTimeout = try await read.duration(.serverStartTimeout) ?? .seconds(60)
        self.server.restartDelay = try await read.duration(.serverRestartDelay) ?? .seconds(1)
        self.server.restartMaximumDelay = try await read.duration(.serverRestartMaximumDelay) ?? .seconds(30)
        self.server.maximumStartFailures = try await read.int(.serverMaximumStartFailures) ?? 5

        let urlText = try await read.secret(.databaseURL, file: .databaseURLFile)
        if let urlText {
            do {
                self.database.url = try DatabaseURL(parsing: urlText)
            } catch {
                throw PhylacteryError(.invalidConfiguration, "\(ConfigurationKey.databaseURL.name) (\(ConfigurationKey.databaseURL.environmentVariable)): \(error.message)")
            }
        }
        if let password = try await read.secret(.databasePassword, file: .databasePasswordFile) {
            guard self.database.url != nil else {
                throw PhylacteryError(.invalidConfiguration, "database.password is set but database.url is not: the password is for an external server's URL")
            }
            self.database.url?.password = password
        }
        self.database.name = try await read.string(.databaseName) ?? "phylactery"
        self.database.waitTimeout = try await read.duration(.databaseWaitTimeout) ?? .seconds(120)
        self.database.connectTimeout = try await read.duration(.databaseConnectTimeout) ?? .seconds(10)
        self.database.maximumConnections = try await read.int(.databaseMaximumConnections) ?? 20
        self.database.applicationName = try await read.string(.databaseApplicationName) ?? "phylactery"
        self.database.maximumReplicaLag = try await read.duration(.databaseMaximumReplicaLag) ?? .seconds(5)
        self.database.failoverTimeout = try await read.duration(.databaseFailoverTimeout) ?? .seconds(30)
        self.database.topologyCheckInterval = try await read.duration(.databaseTopologyCheckInterval) ?? .seconds(1)
        if let sessionText = try await read.string(.databaseSessionURL) {
            do {
                self.database.sessionURL = try DatabaseURL(parsing: sessionText)
            } catch {
                throw PhylacteryError(.invalidConfiguration, "\(ConfigurationKey.databaseSessionURL.name) (\(ConfigurationKey.databaseSessionURL.environmentVariable)): \(error.message)")
            }
        }
        self.defaultSensitivity = try await read.choice(.memoryDefaultSensitivity, Sensitivity.self) ?? .private

        self.migrations.policy = try await read.choice(.migrationsPolicy, MigrationPolicy.self) ?? .auto
        self.migrations.directory = try await read.string(.migrationsDirectory)
        self.migrations.lockTimeout = try await read.duration(.migrationsLockTimeout) ?? .seconds(5)

        self.disabledExtensions = Set(try await read.list(.extensionsDisabled) ?? [])

        self.queue.enabled = try await read.bool(.queueEnabled) ?? true
        self.queue.names = try await read.list(.queueNames)
        self.queue.concurrency = try await read.int(.queueConcurrency) ?? 10
        self.queue.lease = try await read.duration(.queueLease) ?? .seconds(30)
        self.queue.pollInterval = try await read.duration(.queuePollInterval) ?? .seconds(1)
        self.queue.listen = try await read.bool(.queueListen) ?? true
        self.queue.shutdownGracePeriod = try await read.duration(.queueShutdownGracePeriod) ?? .seconds(10)
        let retention = try await read.duration(.queueRetention) ?? .seconds(7 * 86_400)
        self.queue.retention = retention == .zero ? nil : retention
        let queues = Set(queueNames + (self.queue.names ?? []) + [JobOptions.defaultQueue, PhylacteryRuntime.housekeepingQueue])
        for name in queues.sorted() {
            let concurrency = try await read.int(ConfigurationKey.queueConcurrencyPerQueue.forQueue(name))
            let global = try await read.int(ConfigurationKey.queueGlobalConcurrencyPerQueue.forQueue(name))
            let rate = try await read.int(ConfigurationKey.queueRateLimitPerQueue.forQueue(name))
            let interval = try await read.duration(ConfigurationKey.queueRateIntervalPerQueue.forQueue(name))
            guard concurrency != nil || global != nil || rate != nil || interval != nil else { continue }
            self.queue.queues[name] = QueueConfiguration(
                concurrency: concurrency ?? self.queue.concurrency, globalConcurrency: global,
                rateLimit: rate.map { QueueRateLimit(jobs: $0, per: interval ?? .seconds(1)) })
        }

        self.traces.enabled = try await read.bool(.tracesEnabled) ?? true
        self.traces.service = try await read.string(.tracesService) ?? "phylactery"
        let traceRetention = try await read.duration(.tracesRetention) ?? .seconds(7 * 86_400)
        self.traces.retention = traceRetention == .zero ? nil : traceRetention
        self.traces.partitionsAhead = try await read.int(.tracesPartitionsAhead) ?? 2
        self.housekeepingInterval = try await read.duration(.housekeepingInterval) ?? .seconds(3600)
        try self.validate()
        if let recorder {
            for (key, value) in self.renderedValues { recorder.noteDefault(key, value: value) }
        }
    }

    /// Every key's effective value as text (secrets as `<redacted>`), for the report.
    var renderedValues: [(String, String)] {
        func text(_ duration: Duration?) -> String { duration.map(ConfigurationValues.render) ?? "0" }
        return [
            ("home", self.server.home), ("pgBin", self.server.pgBin ?? "none"),
            ("server.mode", self.server.mode.rawValue), ("server.tcp", "\(self.server.tcp)"), ("server.port", "\(self.server.port)"),
            ("server.wheel", self.server.wheel ?? "none"), ("server.startTimeout", text(self.server.startTimeout)),
            ("server.restartDelay", text(self.server.restartDelay)), ("server.restartMaximumDelay", text(self.server.restartMaximumDelay)),
            ("server.maximumStartFailures", "\(self.server.maximumStartFailures)"),
            ("database.url", self.database.url == nil ? "none" : "<redacted>"), ("database.name", self.database.name),
            ("database.waitTimeout", text(self.database.waitTimeout)), ("database.connectTimeout", text(self.database.connectTimeout)),
            ("database.maximumConnections", "\(self.database.maximumConnections)"), ("database.applicationName", self.database.applicationName),
            ("database.maximumReplicaLag", text(self.database.maximumReplicaLag)), ("database.failoverTimeout", text(self.database.failoverTimeout)),
            ("database.topologyCheckInterval", text(self.database.topologyCheckInterval)),
            ("database.sessionURL", self.database.sessionURL == nil ? "none" : "<redacted>"),
            ("memory.defaultSensitivity", self.defaultSensitivity.rawValue),
            ("migrations.policy", self.migrations.policy.rawValue), ("migrations.directory", self.migrations.directory ?? "none"),
            ("migrations.lockTimeout", text(self.migrations.lockTimeout)),
            ("extensions.disabled", self.disabledExtensions.isEmpty ? "none" : self.disabledExtensions.sorted().joined(separator: ",")),
            ("queue.enabled", "\(self.queue.enabled)"), ("queue.names", self.queue.names?.joined(separator: ",") ?? "(the handlers' queues)"),
            ("queue.concurrency", "\(self.queue.concurrency)"), ("queue.lease", text(self.queue.lease)),
            ("queue.pollInterval", text(self.queue.pollInterval)), ("queue.listen", "\(self.queue.listen)"),
            ("queue.shutdownGracePeriod", text(self.queue.shutdownGracePeriod)), ("queue.retention", text(self.queue.retention)),
            ("traces.enabled", "\(self.traces.enabled)"), ("traces.service", self.traces.service), ("traces.retention", text(self.traces.retention)),
            ("traces.partitionsAhead", "\(self.traces.partitionsAhead)"), ("housekeeping.interval", text(self.housekeepingInterval)),
        ]
    }
}

/// Reads one key at a time through the reader, checks it against its ``ConfigurationKey`` and tells
/// the recorder (if any) what value was taken.
struct KeyReader {
    let reader: ConfigReader
    let recorder: ConfigurationRecorder?

    func invalid(_ key: ConfigurationKey, _ problem: String) -> PhylacteryError {
        PhylacteryError(.invalidConfiguration, "\(key.name) (\(key.environmentVariable), \(key.flag)): \(problem); it takes \(key.type.rawValue) values, \(key.range)")
    }

    /// The reader's own error, with the key named; a secret's value is never part of it.
    func failure(_ key: ConfigurationKey, _ error: any Error) -> PhylacteryError {
        if let error = error as? PhylacteryError { return error }
        return self.invalid(key, key.isSecret ? "the value could not be read" : "\(error)")
    }

    func note(_ key: ConfigurationKey, _ value: String?, source: String? = nil) {
        guard let value else { return }
        self.recorder?.note(key.name, value: key.isSecret ? "<redacted>" : value, secret: key.isSecret, source: source)
    }

    func string(_ key: ConfigurationKey) async throws -> String? {
        let value: String?
        do {
            value = try await self.reader.fetchString(forKey: ConfigKey(key.name), isSecret: key.isSecret)
        } catch {
            throw self.failure(key, error)
        }
        if let value, value.isEmpty { return nil }
        if let choices = key.choices, let value, !choices.contains(value) {
            throw self.invalid(key, "'\(value)' is not one of them")
        }
        self.note(key, value)
        return value
    }

    func choice<Value: RawRepresentable>(_ key: ConfigurationKey, _ type: Value.Type) async throws -> Value? where Value.RawValue == String {
        try await self.string(key).flatMap(Value.init(rawValue:))
    }

    func int(_ key: ConfigurationKey) async throws -> Int? {
        let value: Int?
        do {
            value = try await self.reader.fetchInt(forKey: ConfigKey(key.name))
        } catch {
            throw self.invalid(key, "the value is not a whole number")
        }
        if let value, let range = key.intRange, !range.contains(value) {
            throw self.invalid(key, "\(value) is out of range")
        }
        self.note(key, value.map(String.init))
        return value
    }

    func bool(_ key: ConfigurationKey) async throws -> Bool? {
        let value: Bool?
        do {
            value = try await self.reader.fetchBool(forKey: ConfigKey(key.name))
        } catch {
            throw self.invalid(key, "the value is not true or false")
        }
        self.note(key, value.map { String($0) })
        return value
    }

    /// Text (`30s`, `250ms`, `7d`) or a number of seconds (in a file).
    func duration(_ key: ConfigurationKey) async throws -> Duration? {
        var value: Duration?
        do {
            if let text = try await self.reader.fetchString(forKey: ConfigKey(key.name)), !text.isEmpty {
                guard let parsed = ConfigurationValues.duration(text) else {
                    throw self.invalid(key, "'\(text)' is not a duration such as 250ms, 30s, 5m, 6h or 7d")
                }
                value = parsed
            }
        } catch let error as PhylacteryError {
            throw error
        } catch {
            // A file holds a number: seconds.
            do {
                if let seconds = try await self.reader.fetchDouble(forKey: ConfigKey(key.name)) {
                    guard let parsed = ConfigurationValues.duration(seconds: seconds) else {
                        throw self.invalid(key, "\(seconds) seconds is not a usable duration")
                    }
                    value = parsed
                }
            } catch let error as PhylacteryError {
                throw error
            } catch {
                throw self.invalid(key, "the value is not a duration")
            }
        }
        if let value, let range = key.durationRange, !range.contains(value) {
            throw self.invalid(key, "\(ConfigurationValues.render(value)) is out of range")
        }
        self.note(key, value.map(ConfigurationValues.render))
        return value
    }

    func list(_ key: ConfigurationKey) async throws -> [String]? {
        let value: [String]?
        do {
            value = try await self.reader.fetchStringArray(forKey: ConfigKey(key.name))
        } catch {
            throw self.invalid(key, "the value is not a list")
        }
        let cleaned = value?.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        self.note(key, cleaned.map { $0.joined(separator: ",") })
        return cleaned
    }

    /// A secret given directly (`key`) or as the contents of the file named by `fileKey` (trailing
    /// newlines dropped); both at once is refused.
    func secret(_ key: ConfigurationKey, file fileKey: ConfigurationKey) async throws -> String? {
        let direct = try await self.string(key)
        guard let path = try await self.string(fileKey) else { return direct }
        guard direct == nil else {
            throw PhylacteryError(.invalidConfiguration, "both \(key.name) and \(fileKey.name) are set (\(key.environmentVariable), \(fileKey.environmentVariable)); give one of them")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw self.invalid(fileKey, "the file \(path) cannot be read")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
        guard !text.isEmpty else { throw self.invalid(fileKey, "the file \(path) is empty") }
        self.note(key, text, source: "file \(path) (\(fileKey.name))")
        return text
    }
}
