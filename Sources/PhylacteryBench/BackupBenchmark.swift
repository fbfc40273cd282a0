import Foundation
import Logging
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded
import PostgresNIO
import Synchronization

/// `phylactery-bench backup`: backups of a cluster of about `--size-mb` (1 GB), on a private embedded
/// server in a temporary home with WAL archiving on.
///
/// - full backup (pg_basebackup tar + gzip, pg_verifybackup, pg_waldump, SHA-256, catalog), against
///   in the same run: `cp -a` of the data directory, raw `pg_basebackup` in plain format (no
///   compression, no verification) and raw `pg_basebackup` tar + gzip (the same compression, no
///   verification);
/// - incremental backups after 1% of the rows changed, once contiguous rows and once rows spread
///   over the whole table (1 in 100);
/// - restore of the full backup and both incrementals (`--latest`, with every check) against `cp -a`;
/// - WAL archive lag under the queue benchmark's processing load (no-op jobs through the ghouls, as
///   it runs them; 200,000 so the load lasts): how long a finished segment waits to be archived, and
///   how far the WAL runs ahead of the archive.
struct BackupBenchmark {
    let logger: Logger
    let sizeMB: Int
    var results: [String: Double] = [:]

    struct Noop: Job { static let kind = "bench.noop"; var n: Int }

    static func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
        let start = ContinuousClock.now
        let value = try await body()
        return (value, Measure.seconds(ContinuousClock.now - start))
    }

    static func shell(_ command: String) throws {
        let outcome = try Subprocess.run("/bin/sh", ["-c", command])
        guard outcome.succeeded else { throw PhylacteryError(.queryFailed, "`\(command)` failed: \(outcome.output)") }
    }

    mutating func run() async throws {
        let base = EmbeddedServer.Configuration.fromEnvironment()
        let installation: Installation
        if let found = try Installation.locate(base) {
            installation = found
        } else {
            guard case .installed(let fresh) = try Installer(configuration: base).install() else { throw PhylacteryError(.invalidConfiguration, "no PostgreSQL") }
            installation = fresh
        }
        let stamp = String(UInt32.random(in: .min ... .max), radix: 16)
        let home = "/tmp/phyl-bench-backup-\(stamp)", backups = "/tmp/phyl-bench-backups-\(stamp)", scratch = "/tmp/phyl-bench-copy-\(stamp)"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let server = EmbeddedServer(configuration: .init(home: home, pgBinOverride: installation.binDirectory), logger: logger)
        defer {
            _ = try? server.stop()
            for path in [home, backups, scratch] { try? FileManager.default.removeItem(atPath: path) }
        }
        try await WALArchiving.configure(BackupSettings(directory: backups), for: server, key: nil, logger: logger)
        _ = try await server.start(installIfNeeded: false)
        let crypt = try Crypt.open(server, logger: logger)
        let bin = installation.binDirectory
        let socket = server.configuration.socketDirectory, user = server.configuration.superuser

        // A cluster of about sizeMB: the federation, and one table of rows with a 128-byte payload.
        var rows = 0
        let clusterBytes: Double = try await PhylacteryClient.withClient(configuration: .init(url: server.url), logger: logger) { client in
            _ = try await Migrator(client: client, federation: try Federation.standard(extensions: [])).auto()
            try await client.execute("CREATE TABLE public.bench_rows (id bigint PRIMARY KEY, n int NOT NULL, payload text NOT NULL)")
            let chunk = 500_000
            while try await client.query("SELECT pg_database_size(current_database())").collect().first!.decode(Int64.self) < Int64(sizeMB) << 20 {
                try await client.execute("""
                    INSERT INTO public.bench_rows SELECT g, g % 1000, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) || md5((g + 3)::text)
                    FROM generate_series(\(rows + 1), \(rows + chunk)) g
                    """)
                rows += chunk
            }
            try await client.execute("VACUUM (ANALYZE) public.bench_rows")
            try await client.execute("CHECKPOINT")
            return Double(try await client.query("SELECT sum(pg_database_size(datname))::bigint FROM pg_database").collect().first!.decode(Int64.self))
        }
        line("Cluster: \(ByteSize.format(UInt64(clusterBytes))) (\(rows) rows of bench_rows + the federation), WAL archived to \(backups)/wal")

        // Baselines (pg_basebackup needs the replication rule a backup adds itself).
        try await WALArchiving.ensureReplicationAccess(server, logger: logger)
        let (_, copySeconds) = try await Self.timed { try Self.shell("cp -a '\(server.configuration.dataDirectory)' '\(scratch)'") }
        try FileManager.default.removeItem(atPath: scratch)
        line("baseline cp -a of the data directory: \(String(format: "%.1f", copySeconds)) s")
        let (_, rawPlainSeconds) = try await Self.timed {
            try Self.shell("'\(bin)/pg_basebackup' -D '\(scratch)' -F p -X stream -c fast -h '\(socket)' -U \(user) -w")
        }
        try FileManager.default.removeItem(atPath: scratch)
        line("baseline pg_basebackup, plain, no compression or verification: \(String(format: "%.1f", rawPlainSeconds)) s")
        let (_, rawTarSeconds) = try await Self.timed {
            try Self.shell("'\(bin)/pg_basebackup' -D '\(scratch)' -F t -Z gzip -X stream -c fast -h '\(socket)' -U \(user) -w")
        }
        let rawTarBytes = Double(FileSystem.size(of: scratch))
        try FileManager.default.removeItem(atPath: scratch)
        line("baseline pg_basebackup, tar + gzip, no verification: \(String(format: "%.1f", rawTarSeconds)) s, \(ByteSize.format(UInt64(rawTarBytes)))")

        // Ours.
        let (full, fullSeconds) = try await Self.timed { try await crypt.backup(.full) }
        line("phylactery db backup (full, verified): \(String(format: "%.1f", fullSeconds)) s, \(ByteSize.format(full.record.size)) stored — \(String(format: "%.2f", fullSeconds / rawTarSeconds))× raw tar+gzip, \(String(format: "%.2f", fullSeconds / copySeconds))× cp -a")

        let onePercent = rows / 100
        try await PhylacteryClient.withClient(configuration: .init(url: server.url), logger: logger) { client in
            try await client.execute("UPDATE public.bench_rows SET n = n + 1 WHERE id <= \(onePercent)")
        }
        let (contiguous, contiguousSeconds) = try await Self.timed { try await crypt.backup(.incremental) }
        line("incremental after 1% of rows changed (contiguous): \(String(format: "%.1f", contiguousSeconds)) s, \(ByteSize.format(contiguous.record.size)) (\(String(format: "%.1f", Double(contiguous.record.size) / Double(full.record.size) * 100))% of the full backup)")
        try await PhylacteryClient.withClient(configuration: .init(url: server.url), logger: logger) { client in
            try await client.execute("UPDATE public.bench_rows SET n = n + 1 WHERE id % 100 = 0")
        }
        let (scattered, scatteredSeconds) = try await Self.timed { try await crypt.backup(.incremental) }
        line("incremental after 1% of rows changed (1 row in 100, all over the table): \(String(format: "%.1f", scatteredSeconds)) s, \(ByteSize.format(scattered.record.size)) (\(String(format: "%.1f", Double(scattered.record.size) / Double(full.record.size) * 100))% of the full backup)")

        // Restore of the chain, with every check.
        _ = try server.stop()
        let (restored, restoreSeconds) = try await Self.timed { try await Restore(crypt: crypt).run(to: .latest) }
        line("phylactery db restore --latest (\(restored.chain.count) backups, verified, combined, replayed, checked, swapped): \(String(format: "%.1f", restoreSeconds)) s — \(String(format: "%.2f", restoreSeconds / copySeconds))× cp -a")
        _ = try Restore.discardPrevious(of: server)

        // WAL archive lag under the queue benchmark's load.
        _ = try await server.start(installIfNeeded: false)
        let lag = try await self.archiveLag(server: server)
        line("WAL archive lag under queue load (\(lag.jobs) jobs, \(String(format: "%.1f", lag.walMB)) MB of WAL in \(String(format: "%.1f", lag.seconds)) s): finished segments waited at most \(String(format: "%.2f", lag.maxWait)) s; WAL ahead of the archive: median \(ByteSize.format(UInt64(lag.medianAhead))), max \(ByteSize.format(UInt64(lag.maxAhead)))")

        results = [
            "cluster_bytes": clusterBytes,
            "cp_a_s": copySeconds,
            "raw_basebackup_plain_s": rawPlainSeconds,
            "raw_basebackup_tar_gzip_s": rawTarSeconds,
            "raw_basebackup_tar_gzip_bytes": rawTarBytes,
            "full_backup_s": fullSeconds,
            "full_backup_bytes": Double(full.record.size),
            "full_vs_raw_tar_gzip": fullSeconds / rawTarSeconds,
            "full_vs_cp_a": fullSeconds / copySeconds,
            "incremental_contiguous_1pct_s": contiguousSeconds,
            "incremental_contiguous_1pct_bytes": Double(contiguous.record.size),
            "incremental_scattered_1pct_s": scatteredSeconds,
            "incremental_scattered_1pct_bytes": Double(scattered.record.size),
            "restore_latest_s": restoreSeconds,
            "restore_vs_cp_a": restoreSeconds / copySeconds,
            "archive_max_wait_s": lag.maxWait,
            "archive_ahead_median_bytes": lag.medianAhead,
            "archive_ahead_max_bytes": lag.maxAhead,
            "queue_wal_mb_per_s": lag.walMB / lag.seconds,
        ]
    }

    struct Lag {
        var jobs: Int
        var seconds: Double
        var walMB: Double
        var maxWait: Double
        var medianAhead: Double
        var maxAhead: Double
    }

    /// Runs 200,000 no-op jobs through the ghouls while sampling, every 200 ms, how long the oldest
    /// finished segment has waited to be archived and how far the current WAL position is past the
    /// end of the last archived segment.
    func archiveLag(server: EmbeddedServer) async throws -> Lag {
        var options = PhylacteryClient.Configuration.Options()
        options.maximumConnections = 16
        return try await PhylacteryClient.withClient(configuration: .init(url: server.url, options: options), logger: logger) { client in
            let jobs = 200_000
            for chunk in stride(from: 0, to: jobs, by: 20_000) {
                try await client.enqueue(contentsOf: (chunk..<min(jobs, chunk + 20_000)).map { Noop(n: $0) })
            }
            let samples = Mutex<[(wait: Double, ahead: Double)]>([])
            let stop = Atomic<Bool>(false)
            let sampler = Task {
                while !stop.load(ordering: .relaxed) {
                    let row = try await client.query("""
                        SELECT CASE WHEN a.last_archived_wal ~ '^[0-9A-F]{24}$' THEN
                                 (pg_current_wal_lsn() - ('0/0'::pg_lsn + ((('x' || substr(a.last_archived_wal, 9, 8))::bit(32)::bigint * 256
                                   + ('x' || substr(a.last_archived_wal, 17, 8))::bit(32)::bigint + 1) * 16777216)))::float8 END,
                               coalesce(extract(epoch FROM now() - (SELECT min(modification) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready')), 0)::float8
                        FROM pg_stat_archiver a
                        """).collect().first!.decode((Double?, Double).self)
                    // The distance is only known when the last file archived was a segment (not a history file).
                    if let ahead = row.0 { samples.withLock { $0.append((row.1, max(0, ahead))) } }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            let startLSN = try await client.query("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8").collect().first!.decode(Double.self)
            var handlers = JobHandlers()
            handlers.register(Noop.self) { _, _ in }
            let ghouls = Ghouls(client: client, handlers: handlers, configuration: GhoulsConfiguration(
                queues: ["default": QueueConfiguration(concurrency: 512, claimBatch: 256)],
                completionBatchSize: 1000, completionFlushInterval: .milliseconds(2), retention: nil, workerName: "bench-backup"))
            let start = ContinuousClock.now
            let run = Task { try await ghouls.run() }
            while try await client.query("SELECT count(*) FROM queue.jobs WHERE state <> 'completed'").collect().first!.decode(Int64.self) > 0 {
                try await Task.sleep(for: .milliseconds(50))
            }
            let seconds = Measure.seconds(ContinuousClock.now - start)
            ghouls.beginShutdown()
            try await run.value
            stop.store(true, ordering: .relaxed)
            try await sampler.value
            let endLSN = try await client.query("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8").collect().first!.decode(Double.self)
            let taken = samples.withLock { $0 }
            return Lag(jobs: jobs, seconds: seconds, walMB: (endLSN - startLSN) / 1e6,
                       maxWait: taken.map(\.wait).max() ?? 0, medianAhead: Measure.median(taken.map(\.ahead)), maxAhead: taken.map(\.ahead).max() ?? 0)
        }
    }
}
