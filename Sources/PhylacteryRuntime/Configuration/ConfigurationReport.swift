public import Configuration
import Foundation
import Synchronization

/// The effective configuration: every key that was read, its value and where the value came from
/// (a flag, the environment, the file, a secret file, or the default). Secret values are shown as
/// `<redacted>`. What `phylactery config show` prints.
public struct ConfigurationReport: Sendable, CustomStringConvertible {
    /// One key.
    public struct Entry: Sendable, Hashable {
        /// The dotted key.
        public var key: String
        /// The value as text; `<redacted>` for a secret.
        public var value: String
        /// `flags`, `environment`, `file /path`, `file /run/secrets/x (database.urlFile)` or `default`.
        public var source: String
        /// Whether the value is secret.
        public var isSecret: Bool
    }

    /// The keys, in the order of ``ConfigurationKey/all`` (per-queue keys after their template).
    public var entries: [Entry]

    /// The entry of `key`, if it was read.
    public subscript(key: String) -> Entry? { self.entries.first { $0.key == key } }

    /// One line per key: `key = value   (source)`.
    public var description: String {
        let width = self.entries.map(\.key.count).max() ?? 0
        return self.entries.map { entry in
            entry.key.padding(toLength: width, withPad: " ", startingAt: 0) + " = " + entry.value + "   (" + entry.source + ")"
        }.joined(separator: "\n")
    }
}

extension PhylacteryConfiguration {
    /// Reads the configuration from `sources` and reports each value with its source, secrets redacted.
    ///
    /// - Parameter queueNames: as in ``init(reader:queueNames:environment:)``.
    public static func load(
        from sources: ConfigurationSources, queueNames: some Sequence<String> = [String]()
    ) async throws -> (configuration: PhylacteryConfiguration, report: ConfigurationReport) {
        let recorder = ConfigurationRecorder(labels: sources.labels)
        let reader = ConfigReader(providers: sources.providers, accessReporter: recorder)
        let configuration = try await PhylacteryConfiguration(
            reader: reader, queueNames: Array(queueNames), environment: sources.environment, recorder: recorder)
        return (configuration, recorder.report())
    }
}

/// Sees every read (as swift-configuration's `AccessReporter`: which provider answered) and the
/// value each key took, and turns them into a ``ConfigurationReport``. It keeps no secret value:
/// secrets are noted as `<redacted>`, and a provider's raw answer is never stored.
final class ConfigurationRecorder: AccessReporter, Sendable {
    private struct Seen {
        var source: String
        var value: String?
        var isSecret = false
    }

    private let labels: [String]
    private let state = Mutex<(order: [String], seen: [String: Seen])>(([], [:]))

    init(labels: [String]) {
        self.labels = labels
    }

    /// Where `event`'s value came from: the first provider that had one, or the default.
    func report(_ event: AccessEvent) {
        let key = event.metadata.key.components.joined(separator: ".")
        let index = event.providerResults.firstIndex { result in
            if case .success(let lookup) = result.result { return lookup.value != nil }
            return false
        }
        let source = index.map { $0 < self.labels.count ? self.labels[$0] : event.providerResults[$0].providerName } ?? "default"
        self.state.withLock { state in
            if state.seen[key] == nil { state.order.append(key) }
            // A duration read as text and then as a number: keep the answer that had a value.
            if state.seen[key]?.source != nil, index == nil { return }
            state.seen[key, default: Seen(source: source)].source = source
        }
    }

    /// The value `key` took (already redacted when secret), from `source` when it was derived
    /// (a secret file) rather than read.
    func note(_ key: String, value: String, secret: Bool, source: String?) {
        self.state.withLock { state in
            if state.seen[key] == nil { state.order.append(key) }
            var seen = state.seen[key] ?? Seen(source: "default")
            seen.value = value
            seen.isSecret = secret
            if let source { seen.source = source }
            state.seen[key] = seen
        }
    }

    /// `value` for `key` unless a value was noted already: the default, for keys no source set.
    func noteDefault(_ key: String, value: String) {
        self.state.withLock { state in
            if state.seen[key] == nil { state.order.append(key) }
            var seen = state.seen[key] ?? Seen(source: "default")
            if seen.value == nil { seen.value = value }
            state.seen[key] = seen
        }
    }

    func report() -> ConfigurationReport {
        self.state.withLock { state in
            let rank = Dictionary(ConfigurationKey.all.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { first, _ in first })
            func position(_ key: String) -> Int {
                if let exact = rank[key] { return exact }
                // queues.<name>.x sorts with its template.
                let parts = key.split(separator: ".")
                if parts.count == 3, parts[0] == "queues" { return rank["queues.<name>.\(parts[2])"] ?? Int.max }
                return Int.max
            }
            let keys = state.order.enumerated().sorted { (position($0.element), $0.offset) < (position($1.element), $1.offset) }.map(\.element)
            return ConfigurationReport(entries: keys.compactMap { key in
                guard let seen = state.seen[key], let value = seen.value else { return nil }
                return ConfigurationReport.Entry(key: key, value: value, source: seen.source, isSecret: seen.isSecret)
            })
        }
    }
}
