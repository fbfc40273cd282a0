public import Configuration
public import Foundation
import Phylactery
import PhylacteryEmbedded
public import SystemPackage

/// Where a daemon's configuration comes from, highest priority first: command-line flags,
/// `PHYLACTERY_…` environment variables, a configuration file, then the defaults.
///
/// ```swift
/// let sources = try await ConfigurationSources.standard()
/// let configuration = try await PhylacteryConfiguration(reader: sources.reader)
/// ```
///
/// Flags are the keys in dash case (`--server-port 5433`, `--database-url …`); environment variables
/// are `PHYLACTERY_` and the key in upper snake case (`PHYLACTERY_SERVER_PORT`). The file is the one
/// `--config` (or `PHYLACTERY_CONFIG`) names, else `phylactery.json`, `phylactery.yaml` or
/// `phylactery.yml` in the home, if there is one; it nests keys (`{"server": {"port": 5433}}`).
/// The database URL and password are marked secret in every provider.
public struct ConfigurationSources: Sendable {
    /// The providers, highest priority first.
    public let providers: [any ConfigProvider]
    /// A name per provider for ``ConfigurationReport``: `flags`, `environment`, `file /path`.
    public let labels: [String]
    /// The configuration file in use, if any.
    public let file: String?
    /// The environment the default home is derived from.
    let environment: [String: String]

    /// Sources made of your own providers (tests, daemons with a remote configuration store).
    public init(providers: [any ConfigProvider], labels: [String]? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.providers = providers
        self.labels = labels ?? providers.map(\.providerName)
        self.file = nil
        self.environment = environment
    }

    init(providers: [any ConfigProvider], labels: [String], file: String?, environment: [String: String]) {
        self.providers = providers
        self.labels = labels
        self.file = file
        self.environment = environment
    }

    /// A reader over these sources.
    public var reader: ConfigReader { ConfigReader(providers: self.providers) }

    /// The secret keys' flags and environment variables.
    static let secretKeys: [ConfigurationKey] = ConfigurationKey.all.filter(\.isSecret)

    /// Flags, the environment (`PHYLACTERY_…`) and the configuration file, if there is one.
    ///
    /// - Parameters:
    ///   - arguments: the command line (default: this process's).
    ///   - environment: the environment (default: this process's).
    /// - Throws: when a named file does not exist or does not parse (``PhylacteryError`` naming it).
    public static func standard(
        arguments: [String] = CommandLine.arguments,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> ConfigurationSources {
        let flags = CommandLineArgumentsProvider(arguments: arguments, secretsSpecifier: .specific(Set(secretKeys.map(\.flag))))
        let variables = EnvironmentVariablesProvider(
            environmentVariables: environment, secretsSpecifier: .specific(Set(secretKeys.map(\.environmentVariable))))
            .prefixKeys(with: ConfigKey(["phylactery"]))
        var providers: [any ConfigProvider] = [flags, variables]
        var labels = ["flags", "environment"]

        // The file: named, or found in the home (which only flags, environment and defaults decide).
        let early = ConfigReader(providers: [flags, variables])
        var file = early.string(forKey: ConfigKey(ConfigurationKey.config.name))
        let named = file != nil
        if file == nil {
            var base = environment
            base["PHYLACTERY_HOME"] = nil
            let home = early.string(forKey: ConfigKey(ConfigurationKey.home.name)) ?? EmbeddedServer.Configuration.fromEnvironment(base).home
            file = ["json", "yaml", "yml"].map { "\(home)/phylactery.\($0)" }.first { FileManager.default.fileExists(atPath: $0) }
        }
        if let path = file {
            guard FileManager.default.fileExists(atPath: path) else {
                throw PhylacteryError(.invalidConfiguration, "the configuration file \(path) (\(named ? "--config / PHYLACTERY_CONFIG" : "found in the home")) does not exist")
            }
            // The file's keys are dotted (`database.url`).
            let secretNames = Set(secretKeys.map(\.name))
            do {
                if path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
                    providers.append(try await FileProvider<YAMLSnapshot>(
                        parsingOptions: .init(secretsSpecifier: .specific(secretNames)), filePath: FilePath(path)))
                } else {
                    providers.append(try await FileProvider<JSONSnapshot>(
                        parsingOptions: .init(secretsSpecifier: .specific(secretNames)), filePath: FilePath(path)))
                }
            } catch {
                throw PhylacteryError(.invalidConfiguration, "the configuration file \(path) cannot be read: \(error)")
            }
            labels.append("file \(path)")
        }
        return ConfigurationSources(providers: providers, labels: labels, file: file, environment: environment)
    }
}
