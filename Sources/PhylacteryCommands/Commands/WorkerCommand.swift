import ArgumentParser
import Foundation
import Logging
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded
import ServiceLifecycle
import UnixSignals

/// `phylactery worker`: runs ghouls for the jobs of every hosted extension until SIGTERM or SIGINT.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run queue workers (ghouls) for the registered extensions' jobs until SIGTERM.",
        discussion: """
            Applies hazard-free migrations first (the core's and the extensions' tables), then works \
            the queues the handled job kinds use, plus `default`. SIGTERM or SIGINT stops claiming, \
            lets running jobs finish within --grace seconds and gives the rest back to the queue.
            """)

    @Option(name: .long, parsing: .singleValue, help: "A queue to work, as NAME or NAME=CONCURRENCY (repeatable; default: the handlers' queues).")
    var queue: [String] = []
    @Option(name: .long, help: "Handlers running at once per queue, unless the queue says otherwise.")
    var concurrency: Int = 10
    @Option(name: .long, help: "Seconds a claim holds a job without a heartbeat.")
    var lease: Double = 30
    @Option(name: .long, help: "Seconds running jobs get to finish after SIGTERM.")
    var grace: Double = 10
    @Option(name: .long, help: "Seconds between polls when no notification arrives.")
    var poll: Double = 1
    @Option(name: .long, help: "Delete finished jobs older than this many hours (0 keeps them).")
    var retentionHours: Double = 24 * 7
    @Flag(name: .long, help: "Do not LISTEN for enqueues (for a transaction-pooling proxy); poll only.")
    var noListen = false
    @Flag(name: .long, help: "Do not apply migrations at start.")
    var noMigrate = false
    @Flag(name: .long, help: "Take scheduled backups of the local server (after `phylactery db archive`), applying retention after each.")
    var backups = false
    @Option(name: .customLong("backup-full"), help: "When full backups are taken (cron, UTC).")
    var backupFull = "0 3 * * *"
    @Option(name: .customLong("backup-incremental"), help: "When incremental backups are taken (cron, UTC; 'none' for none).")
    var backupIncremental = "30 * * * *"
    @Option(name: .customLong("keep-full"), help: "Full backups kept by the retention after each scheduled backup.")
    var keepFull = 7

    func validate() throws {
        guard self.concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1.") }
        _ = try self.durations()
        guard self.lease > 0, self.poll > 0 else { throw ValidationError("--lease and --poll must be positive.") }
        for spec in self.queue { _ = try Self.parseQueue(spec, defaultConcurrency: self.concurrency) }
    }

    /// The lease, grace period, poll interval and retention as durations (non-finite or huge numbers refused).
    func durations() throws -> (lease: Duration, grace: Duration, poll: Duration, retention: Duration) {
        (try DurationOption.seconds(self.lease, option: "--lease"),
         try DurationOption.seconds(self.grace, option: "--grace"),
         try DurationOption.seconds(self.poll, option: "--poll"),
         try DurationOption.seconds(self.retentionHours, scale: 3600, option: "--retention-hours"))
    }

    static func parseQueue(_ spec: String, defaultConcurrency: Int) throws -> (String, Int) {
        let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
        guard let name = parts.first, !name.isEmpty else { throw ValidationError("--queue '\(spec)': expected NAME or NAME=CONCURRENCY.") }
        guard parts.count == 2 else { return (name, defaultConcurrency) }
        guard let concurrency = Int(parts[1]), concurrency >= 1 else {
            throw ValidationError("--queue '\(spec)': the concurrency must be a whole number of at least 1.")
        }
        return (name, concurrency)
    }

    func run() async throws {
        try await reportingErrors {
            let federation = try PhylacteryCommands.federation()
            var handlers = federation.jobHandlers
            // On the local server: hold its home while running (a restore waits for this worker to
            // stop), reanimate after a restore, and take the scheduled backups when asked.
            let embedded: EmbeddedServer? = try PhylacteryClient.Configuration.fromEnvironment() == nil ? EmbeddedServer() : nil
            let usage = try embedded?.holdUsage(for: "the worker")
            defer { usage?.release() }
            var schedule: BackupSchedule?
            if self.backups {
                guard let embedded else { throw ValidationError("--backups backs up the local server; unset PHYLACTERY_DATABASE_URL.") }
                let backupSchedule = try BackupSchedule(fullCron: self.backupFull, incrementalCron: self.backupIncremental == "none" ? nil : self.backupIncremental, keepFull: self.keepFull)
                backupSchedule.register(in: &handlers, server: embedded)
                schedule = backupSchedule
            }
            var queues = [String: QueueConfiguration]()
            if self.queue.isEmpty {
                for name in handlers.queues.union([JobOptions.defaultQueue]) { queues[name] = QueueConfiguration(concurrency: self.concurrency) }
            } else {
                for spec in self.queue {
                    let (name, concurrency) = try Self.parseQueue(spec, defaultConcurrency: self.concurrency)
                    queues[name] = QueueConfiguration(concurrency: concurrency)
                }
            }
            if let schedule { queues[BackupJob.queue] = schedule.queueConfiguration }
            let durations = try self.durations()
            let configuration = GhoulsConfiguration(
                queues: queues, lease: durations.lease, pollInterval: durations.poll,
                listens: !self.noListen, shutdownGracePeriod: durations.grace,
                retention: self.retentionHours > 0 ? durations.retention : nil,
                periodicJobs: (schedule?.periodicJobs ?? []) + federation.periodicJobs)
            let url = try EmbeddedServer.resolveDatabaseURL()
            let logger = Logger(label: "phylactery.worker")
            let client = PhylacteryClient(configuration: .init(url: url), logger: logger)
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: configuration, logger: Logger(label: "phylactery.ghouls"))
            let migrate = !self.noMigrate
            // The client runs as a service; the workers start once migrations are in place.
            let worker = WorkerService(client: client, ghouls: ghouls, federation: federation, migrate: migrate, reanimating: embedded)
            let group = ServiceGroup(configuration: .init(
                services: [
                    .init(service: client),
                    .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
            print("\(PhylacteryCommands.host.commandName) worker \(ProcessInfo.processInfo.processIdentifier): queues \(queues.keys.sorted().joined(separator: ", ")); kinds \(handlers.kinds.joined(separator: ", "))")
            try await group.run()
            print("\(PhylacteryCommands.host.commandName) worker stopped")
        }
    }
}

/// Migrates, then runs the ghouls in the same task so SIGTERM reaches them as a graceful shutdown.
struct WorkerService: Service {
    let client: PhylacteryClient
    let ghouls: Ghouls
    let federation: Federation
    let migrate: Bool
    /// The local server, whose pending restore (if any) is reanimated before jobs run.
    let reanimating: EmbeddedServer?

    func run() async throws {
        if self.migrate {
            if let applied = try await Migrator(client: self.client, federation: self.federation).auto() {
                print("applied migration \(applied.revision) (\(applied.up.count) statements)")
            }
        }
        if let server = self.reanimating, let reanimated = try await Reanimation.runIfPending(for: server, client: self.client) {
            print("reanimated after the restore to \(reanimated.restore.target): \(reanimated.jobs.requeued) running job(s) back in their queue")
        }
        try await self.ghouls.run()
    }
}
