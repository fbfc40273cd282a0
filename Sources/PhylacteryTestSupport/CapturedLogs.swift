import Foundation
public import Logging
import Synchronization

/// Every line a logger wrote, at every level (`trace` included): for tests that search what was
/// logged (a secret that must not appear, the protocol messages PostgresNIO logs at trace level).
///
/// Each line is `level [label] message key=value …` with the metadata sorted by key.
/// `PHYLACTERY_VERBOSE` also prints every line.
public final class CapturedLogs: Sendable {
    private let lines = Mutex<[String]>([])

    public init() {}

    /// The lines so far, oldest first.
    public var all: [String] { self.lines.withLock { $0 } }
    /// The lines so far, one per line.
    public var text: String { self.all.joined(separator: "\n") }
    public func append(_ line: String) { self.lines.withLock { $0.append(line) } }
    /// Forgets the lines so far.
    public func clear() { self.lines.withLock { $0.removeAll() } }

    /// A logger at `trace` level that writes here.
    public func logger(_ label: String = "phylactery.test") -> Logger {
        var logger = Logger(label: label) { label in Handler(label: label, sink: self) }
        logger.logLevel = .trace
        return logger
    }

    struct Handler: LogHandler {
        let label: String
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
            self.sink.append("\(event.level) [\(self.label)] \(event.message) \(merged.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")) \(event.error.map { "error=\($0)" } ?? "")")
            if ProcessInfo.processInfo.environment["PHYLACTERY_VERBOSE"] != nil {
                print("\(event.level) [\(self.label)] \(event.message) \(merged)")
            }
        }
    }
}
