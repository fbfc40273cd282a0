public import Foundation
public import Logging
public import Metrics
public import Phylactery
public import PhylacteryEmbedded
public import ServiceLifecycle

/// How WAL archiving is doing: the settings, the server's `pg_stat_archiver`, and the segments
/// waiting to be archived (`.ready` files in `pg_wal/archive_status`).
public struct ArchiveStatus: Sendable {
    /// The home's backup settings; `nil` when backups are not configured.
    public var settings: BackupSettings?
    /// `archive_mode` as the server runs it (`nil` when it could not be asked).
    public var archiveMode: String?
    /// `archive_mode` was changed but the server has not been restarted since.
    public var pendingRestart = false
    /// Segments archived since the statistics were reset (`pg_stat_archiver.archived_count`).
    public var archivedCount = 0
    /// The last file archived, and when.
    public var lastArchived: String?
    /// When ``lastArchived`` was archived.
    public var lastArchivedAt: Date?
    /// Failed attempts (`pg_stat_archiver.failed_count`).
    public var failedCount = 0
    /// The file of the last failed attempt.
    public var lastFailed: String?
    /// When the last attempt failed.
    public var lastFailedAt: Date?
    /// Finished segments not archived yet, and since when the oldest of them waits.
    public var waitingSegments = 0
    /// When the oldest waiting segment was finished.
    public var oldestWaitingSince: Date?
    /// The server's clock when this was read.
    public var checkedAt: Date?
    /// Why the server could not be asked, if it could not.
    public var problem: String?

    /// An empty status (nothing known yet).
    public init() {}

    /// The server archives now (configured, and running with `archive_mode = on`).
    public var isActive: Bool { settings != nil && archiveMode == "on" }

    /// The last attempt failed (the archiver retries every few seconds until it succeeds).
    public var isFailing: Bool {
        guard let failed = lastFailedAt else { return false }
        return lastArchivedAt.map { failed > $0 } ?? true
    }

    /// How long the oldest waiting segment has waited.
    public var oldestWait: Duration? {
        guard let since = oldestWaitingSince, let now = checkedAt else { return nil }
        return .milliseconds(Int64(max(0, now.timeIntervalSince(since)) * 1000))
    }

    /// The bound archiving must keep: ``BackupSettings/archiveTimeout``.
    public var bound: Duration? { settings?.archiveTimeout }

    /// The check `phylactery doctor` prints: failed once archiving is configured but inactive, or a
    /// segment has waited longer than the bound; a warning while attempts fail within it.
    public var check: HealthReport.Check {
        guard let settings else {
            return .init(name: "backups", status: .warning, detail: "not configured: nothing is archived, a lost disk loses everything",
                         fix: "phylactery db archive --to DIR (a drive or NAS path), then phylactery db backup")
        }
        if let problem, archiveMode == nil {
            return .init(name: "backups", status: .failed, detail: "archiving to \(settings.walDirectory) cannot be checked: \(problem)",
                         fix: "Start the server (phylactery db start).")
        }
        guard archiveMode == "on", !pendingRestart else {
            return .init(name: "backups", status: .failed, detail: "configured (\(settings.directory)) but the server does not archive yet",
                         fix: "Restart the server: phylactery db stop && phylactery db start")
        }
        let waited = oldestWait ?? .zero
        let failure = [lastFailed.map { "last failure: \($0)" }, lastFailedAt.map { "at \($0)" }].compactMap { $0 }.joined(separator: " ")
        if waited > settings.archiveTimeout {
            return .init(name: "backups", status: .failed,
                         detail: "\(waitingSegments) WAL segment\(waitingSegments == 1 ? "" : "s") not archived, the oldest for \(ProgressMeter.format(waited)) (bound \(ProgressMeter.format(settings.archiveTimeout)))\(failure.isEmpty ? "" : "; " + failure)",
                         fix: "Check that \(settings.walDirectory) is mounted, writable by the server's user and not full; the server log (log/postgresql.log) says why archiving fails. The server retries by itself.")
        }
        if isFailing {
            return .init(name: "backups", status: .warning, detail: "archiving failed (\(failure)); retrying, \(waitingSegments) segment(s) waiting",
                         fix: "See the server log (log/postgresql.log) if this persists.")
        }
        let last = lastArchived.map { name in "last \(name)" + (lastArchivedAt.map { " at \(RecoveryTime($0))" } ?? "") } ?? "nothing archived yet"
        return .init(name: "backups", status: .ok,
                     detail: "archiving to \(settings.walDirectory)\(settings.encrypted ? " (encrypted)" : ""): \(archivedCount) segments, \(last), \(waitingSegments) waiting")
    }
}

/// A `Service` that reads ``ArchiveStatus`` every `interval`, publishes it as metrics and logs
/// failures — the runtime runs it next to the embedded server.
///
/// Gauges: `phylactery_backup_archive_waiting_segments`, `phylactery_backup_archive_oldest_wait_seconds`,
/// `phylactery_backup_archive_failing` (1 while the last attempt failed), `phylactery_backup_archive_over_bound`
/// (1 once a segment waited longer than the archive timeout), `phylactery_backup_archive_failed_count`.
public struct ArchiveMonitor: Service {
    let server: EmbeddedServer
    let interval: Duration
    let logger: Logger
    let waiting: Gauge
    let oldestWait: Gauge
    let failing: Gauge
    let overBound: Gauge
    let failedCount: Gauge

    /// Watches `server`'s archiving every `interval` (default 15 s); metrics go to `factory`
    /// (default: the bootstrapped `MetricsSystem`).
    public init(server: EmbeddedServer, interval: Duration = .seconds(15), factory: (any MetricsFactory)? = nil, logger: Logger = Logger(label: "phylactery.backup")) {
        self.server = server
        self.interval = interval
        self.logger = logger
        let factory = factory ?? MetricsSystem.factory
        self.waiting = Gauge(label: "phylactery_backup_archive_waiting_segments", factory: factory)
        self.oldestWait = Gauge(label: "phylactery_backup_archive_oldest_wait_seconds", factory: factory)
        self.failing = Gauge(label: "phylactery_backup_archive_failing", factory: factory)
        self.overBound = Gauge(label: "phylactery_backup_archive_over_bound", factory: factory)
        self.failedCount = Gauge(label: "phylactery_backup_archive_failed_count", factory: factory)
    }

    /// Reads the status once and publishes it.
    @discardableResult
    public func sample() async -> ArchiveStatus {
        let status = await WALArchiving.status(of: server, logger: logger)
        self.publish(status)
        return status
    }

    func publish(_ status: ArchiveStatus) {
        guard let settings = status.settings else { return }
        let wait = status.oldestWait ?? .zero
        let over = wait > settings.archiveTimeout
        waiting.record(status.waitingSegments)
        oldestWait.record(wait.seconds)
        failing.record(status.isFailing ? 1 : 0)
        overBound.record(over ? 1 : 0)
        failedCount.record(status.failedCount)
        if over || (!status.isActive && status.problem == nil) {
            logger.error("WAL archiving is behind its bound", metadata: ["detail": "\(status.check.detail)"])
        } else if status.isFailing {
            logger.warning("WAL archiving failed; the server retries", metadata: ["segment": "\(status.lastFailed ?? "?")"])
        }
    }

    /// Samples until the task is cancelled or the service group shuts down.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.sample()
                do { try await Task.sleep(for: self.interval) } catch { return }
            }
        }
    }
}
