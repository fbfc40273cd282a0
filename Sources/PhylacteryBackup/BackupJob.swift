public import Logging
public import Phylactery
public import PhylacteryEmbedded

/// A base backup run as a job of the runtime's ghouls, followed by retention when it succeeds.
///
/// ```swift
/// let schedule = BackupSchedule()                         // daily full, hourly incremental, keep 7 full
/// var handlers = federation.jobHandlers
/// schedule.register(in: &handlers, server: server)
/// let ghouls = Ghouls(client: client, handlers: handlers, configuration: GhoulsConfiguration(
///     queues: [JobOptions.defaultQueue: .init(), BackupJob.queue: schedule.queueConfiguration],
///     periodicJobs: schedule.periodicJobs))
/// ```
public struct BackupJob: Job {
    /// The job kind.
    public static let kind = "phylactery.backup"
    /// Backups have a queue of their own, worked one at a time.
    public static let queue = "phylactery.backups"
    /// A failed backup is tried three times (with the queue's backoff), then kept as discarded.
    public static let maxAttempts = 3

    /// Full or incremental (an incremental becomes full when it cannot be one; see ``Crypt/backup(_:key:lockWait:progress:)``).
    public var mode: BackupRecord.Kind
    /// Retention applied after the backup succeeded: keep this many full backups (`nil`: none applied).
    public var keepFull: Int?

    /// A backup of `mode`, then retention keeping `keepFull` full backups (none when `nil`).
    public init(mode: BackupRecord.Kind, keepFull: Int? = nil) {
        self.mode = mode
        self.keepFull = keepFull
    }

    /// Takes the backup in `server`'s configured backup directory, then applies retention. Waits up to
    /// an hour for another backup of the same directory to finish.
    public func run(server: EmbeddedServer, logger: Logger) async throws {
        let crypt = try Crypt.open(server, logger: logger)
        let outcome = try await crypt.backup(mode, lockWait: .seconds(3600))
        logger.info("backup taken", metadata: [
            "label": "\(outcome.record.label)", "kind": "\(outcome.record.kind.rawValue)", "bytes": "\(outcome.record.size)",
        ])
        for note in outcome.notes { logger.notice("\(note)") }
        if let keepFull {
            let retention = try await crypt.applyRetention(keepFull: keepFull, lockWait: .seconds(3600))
            if !retention.removedBackups.isEmpty || retention.removedWALFiles > 0 {
                logger.info("retention applied", metadata: [
                    "removed": "\(retention.removedBackups.joined(separator: ","))", "walFiles": "\(retention.removedWALFiles)", "freed": "\(retention.freedBytes)",
                ])
            }
        }
    }
}

/// When the runtime takes backups: ``PeriodicJob``s enqueuing ``BackupJob``s, and their handler.
public struct BackupSchedule: Sendable {
    /// When full backups are taken. Default daily at 03:00 UTC.
    public var full: PeriodicSchedule
    /// When incremental backups are taken, `nil` for none. Default every hour at half past.
    public var incremental: PeriodicSchedule?
    /// Full backups kept by the retention applied after each backup. Default 7.
    public var keepFull: Int

    /// A schedule of `full` and (unless `nil`) `incremental` backups.
    public init(full: PeriodicSchedule, incremental: PeriodicSchedule?, keepFull: Int = 7) throws(BackupError) {
        guard keepFull >= 1 else { throw BackupError(.invalidArgument, "A backup schedule keeps at least one full backup (keepFull ≥ 1).") }
        self.full = full
        self.incremental = incremental
        self.keepFull = keepFull
    }

    /// A schedule from five-field cron expressions (UTC); by default a full backup daily at 03:00 and
    /// an incremental one every hour at half past, keeping 7 full backups.
    public init(fullCron: String = "0 3 * * *", incrementalCron: String? = "30 * * * *", keepFull: Int = 7) throws {
        try self.init(full: .cron(CronSchedule(fullCron)), incremental: try incrementalCron.map { .cron(try CronSchedule($0)) }, keepFull: keepFull)
    }

    /// The periodic jobs to add to ``GhoulsConfiguration/periodicJobs``. A full backup missed while the
    /// machine slept is made up within 20 hours, an incremental one within 50 minutes.
    public var periodicJobs: [PeriodicJob] {
        let keep = keepFull
        var jobs = [PeriodicJob(name: "phylactery.backup.full", schedule: full, catchUp: .seconds(20 * 3600)) { BackupJob(mode: .full, keepFull: keep) }]
        if let incremental {
            jobs.append(PeriodicJob(name: "phylactery.backup.incremental", schedule: incremental, catchUp: .seconds(50 * 60)) { BackupJob(mode: .incremental, keepFull: keep) })
        }
        return jobs
    }

    /// One backup at a time per process (the backup directory's lock serialises processes).
    public var queueConfiguration: QueueConfiguration { QueueConfiguration(concurrency: 1) }

    /// Registers the ``BackupJob`` handler for `server`.
    public func register(in handlers: inout JobHandlers, server: EmbeddedServer, logger: Logger = Logger(label: "phylactery.backup")) {
        handlers.register(BackupJob.self) { job, _ in
            try await job.run(server: server, logger: logger)
        }
    }
}
