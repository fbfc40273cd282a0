import ArgumentParser
import Foundation
import Phylactery
import PhylacteryBackup
import PhylacteryEmbedded

/// The physical-backup commands under `phylactery db`: archive, backups (and the server's hidden
/// archive step), and what `db backup` and `db restore` do without `--logical`. Parsing and printing
/// only; the work is in `PhylacteryBackup`.
enum BackupCommands {

    /// This executable's absolute path: the server runs it to encrypt WAL.
    static var executablePath: String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        let argument = CommandLine.arguments[0]
        if argument.hasPrefix("/") { return argument }
        if argument.contains("/") { return FileManager.default.currentDirectoryPath + "/" + argument }
        return Subprocess.which(argument) ?? argument
    }

    static func key(_ path: String?) throws -> BackupKey? {
        try path.map { try BackupKey.load(from: absolute($0)) }
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    /// Progress for this terminal (or plain lines when output is not one).
    static func printer() -> ProgressPrinter {
        ProgressPrinter(isTerminal: isatty(STDOUT_FILENO) == 1)
    }

    static func applyRetention(_ crypt: Crypt, keepFull: Int, printer: ProgressPrinter) async throws {
        let retention = try await crypt.applyRetention(keepFull: keepFull, progress: printer.handle)
        printer.finish()
        print("Retention (keep \(keepFull) full): removed \(retention.removedBackups.count) backup(s) and \(retention.removedWALFiles) WAL file(s), freed \(ByteSize.format(retention.freedBytes)).")
    }

    struct KeyOption: ParsableArguments {
        @Option(name: .customLong("key-file"), help: "The key file of encrypted backups (default: the server's copy in the home).")
        var path: String?
    }

    // MARK: - db archive

    struct Archive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Archive WAL continuously to a backup directory (a local disk, drive or NAS path), optionally encrypted.",
            discussion: """
                Sets archive_mode, archive_timeout and summarize_wal for the embedded server; a running \
                server must be restarted once to start archiving. With --key-file (or --new-key) base \
                backups and WAL are encrypted with AES-256-GCM; the server keeps a copy of the key in \
                the home, never in the backup directory. Keep your own copy elsewhere.
                """)

        @OptionGroup var server: ServerOptions
        @Option(help: "The backup directory.")
        var to: String?
        @Option(name: .customLong("archive-timeout"), help: "Longest time committed work waits to be archived (e.g. 60s, 5m).")
        var archiveTimeout: String = "60s"
        @Option(name: .customLong("key-file"), help: "Encrypt with this key file (32 random bytes).")
        var keyFile: String?
        @Option(name: .customLong("new-key"), help: "Create a new key file here and encrypt with it.")
        var newKey: String?
        @Flag(help: "Stop archiving (the backup directory is left as it is).")
        var off = false

        func validate() throws {
            if off { return }
            guard to != nil else { throw ValidationError("Name the backup directory: --to DIR (or --off to stop archiving).") }
            guard keyFile == nil || newKey == nil else { throw ValidationError("Give --key-file or --new-key, not both.") }
            _ = try DurationOption.parse(archiveTimeout, option: "--archive-timeout")
        }

        func run() async throws {
            try await reportingErrors {
                let embedded = EmbeddedServer(configuration: server.configuration)
                if off {
                    let running = try await WALArchiving.disable(for: embedded)
                    print("Archiving is off for \(embedded.configuration.home)\(running ? "; restart the server for it to stop (phylactery db stop && phylactery db start)" : "").")
                    return
                }
                var key = try BackupCommands.key(keyFile)
                if let newKey {
                    key = try BackupKey.generate(at: BackupCommands.absolute(newKey))
                    print("Wrote a new key (id \(key!.id)) to \(newKey). Keep a copy away from this machine: without it no backup can be restored.")
                }
                let settings = BackupSettings(
                    directory: BackupCommands.absolute(to!), archiveTimeout: try DurationOption.parse(archiveTimeout, option: "--archive-timeout"),
                    encrypted: key != nil, archiveHelper: key == nil ? nil : [BackupCommands.executablePath, "db", "archive-wal"])
                let outcome = try await WALArchiving.configure(settings, for: embedded, key: key)
                let how = settings.encrypted ? "encrypted (key \(key!.id)) by \(settings.archiveHelper![0]) db archive-wal" : "basic_archive"
                print("Archiving WAL to \(settings.walDirectory) (\(how)); committed work waits at most \(ProgressMeter.format(settings.archiveTimeout)).")
                for note in outcome.notes { print("· \(note)") }
                if outcome.needsRestart {
                    print("Restart the server to start archiving: phylactery db stop && phylactery db start")
                }
            }
        }
    }

    /// The server's `archive_command` when backups are encrypted.
    struct ArchiveWAL: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "archive-wal", abstract: "Encrypt one WAL file into the archive (run by the server as its archive_command).",
            shouldDisplay: false)

        @Argument(help: "The WAL file (%p).") var source: String
        @Argument(help: "Its name (%f).") var name: String
        @Option(help: "The archive directory.") var to: String
        @Option(name: .customLong("key-file"), help: "The key.") var keyFile: String

        func run() throws {
            do {
                try WALArchive.push(segment: source, name: name, to: to, key: try BackupKey.load(from: keyFile))
            } catch {
                FileHandle.standardError.write(Data("phylactery archive-wal: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }

    // MARK: - db backup

    /// `db backup [--incremental] [--keep-full N]`.
    static func baseBackup(server: EmbeddedServer.Configuration, incremental: Bool, keepFull: Int?, keyPath: String?) async throws {
        let crypt = try Crypt.open(EmbeddedServer(configuration: server))
        let printer = BackupCommands.printer()
        let outcome = try await crypt.backup(incremental ? .incremental : .full, key: try BackupCommands.key(keyPath), progress: printer.handle)
        printer.finish()
        for note in outcome.notes { print("· \(note)") }
        let record = outcome.record
        print("Backup \(record.label): \(record.kind.rawValue)\(record.parent.map { " on \($0)" } ?? ""), \(ByteSize.format(record.size)) stored for \(ByteSize.format(record.dataSize)) of cluster\(record.isEncrypted ? ", encrypted (key \(record.keyID!))" : ""), verified.")
        print("  WAL \(record.startLSN) – \(record.stopLSN) on timeline \(record.timeline); restorable from \(record.stopTime); PostgreSQL \(record.postgresVersion); migration head \(record.migrationHead ?? "none")")
        if let keepFull { try await BackupCommands.applyRetention(crypt, keepFull: keepFull, printer: printer) }
    }

    // MARK: - db backups

    struct Backups: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List backups with their sizes and the time range a restore can reach; verify them; apply retention.")

        @OptionGroup var server: ServerOptions
        @OptionGroup var key: KeyOption
        @Flag(help: "Verify the backups (all, or those labelled): checksums, pg_verifybackup, their WAL. Exit 1 when one fails.")
        var verify = false
        @Argument(help: "Labels to verify (default: all).")
        var labels: [String] = []
        @Option(name: .customLong("keep-full"), help: "Keep only the newest N full backups (with their incrementals and the WAL they need).")
        var keepFull: Int?

        func validate() throws {
            if let keepFull, keepFull < 1 { throw ValidationError("--keep-full must be at least 1.") }
            if !labels.isEmpty && !verify { throw ValidationError("Labels are for --verify.") }
        }

        func run() async throws {
            try await reportingErrors {
                let crypt = try Crypt.open(EmbeddedServer(configuration: server.configuration))
                let printer = BackupCommands.printer()
                let key = try BackupCommands.key(self.key.path)
                if let keepFull { try await BackupCommands.applyRetention(crypt, keepFull: keepFull, printer: printer) }
                let overview = try await crypt.overview(key: key)
                print("Backups in \(crypt.directory):")
                if overview.backups.isEmpty { print("  none yet (phylactery db backup)") }
                let width = overview.backups.map(\.label.count).max() ?? 0
                for record in overview.backups {
                    let kind = record.kind == .full ? "full" : "incremental on \(record.parent ?? "?")"
                    print("  \(record.label.padding(toLength: width, withPad: " ", startingAt: 0))  ended \(record.stopTime)  \(ByteSize.format(record.size).leftPadded(9)) (\(ByteSize.format(record.dataSize)) of data)  \(kind)\(record.isEncrypted ? ", encrypted" : "")")
                }
                print("WAL archive: \(overview.walFiles) file(s), \(ByteSize.format(overview.walBytes)); timeline \(overview.timeline)")
                if let from = overview.restorableFrom {
                    print("Restorable: from \(from) to \(overview.restorableUntil.map(\.description) ?? "the end of the newest backup") (--at any time in between; --latest also replays WAL still in the data directory)")
                }
                for gap in overview.gaps { print("WARNING: WAL missing from the archive: \(gap); points after it need a backup taken after it") }
                guard verify else { return }
                let results = try await crypt.verify(labels.isEmpty ? nil : labels, key: key, progress: printer.handle)
                printer.finish()
                for result in results {
                    if result.passed {
                        print("ok      \(result.label)")
                    } else {
                        print("FAILED  \(result.label)")
                        for problem in result.problems { print("        \(problem)") }
                    }
                }
                if results.contains(where: { !$0.passed }) { throw ExitCode.failure }
            }
        }
    }

    // MARK: - db restore

    /// `db restore --latest | --at TIME | --backup LABEL | --discard-previous` (`target` `nil`).
    static func pointInTimeRestore(server: EmbeddedServer.Configuration, target: RestoreTarget?, keyPath: String?, usingCurrentWAL: Bool, start: Bool) async throws {
        let embedded = EmbeddedServer(configuration: server)
        guard let target else {
            let removed = try PhylacteryBackup.Restore.discardPrevious(of: embedded)
            print(removed.isEmpty ? "No previous data directory to discard." : "Removed \(removed.joined(separator: ", ")).")
            return
        }
        let crypt = try Crypt.open(embedded)
        let printer = BackupCommands.printer()
        let outcome = try await PhylacteryBackup.Restore(crypt: crypt).run(
            to: target, key: try BackupCommands.key(keyPath), usingCurrentWAL: usingCurrentWAL, progress: printer.handle)
        printer.finish()
        for note in outcome.notes { print("· \(note)") }
        print("Restored \(outcome.target) from \(outcome.chain.joined(separator: " + ")): last transaction \(outcome.recoveredTo.map(\.description) ?? "none replayed"), timeline \(outcome.timeline).")
        for check in outcome.checks { print("  checked: \(check)") }
        if let previous = outcome.previousDataDirectory {
            print("The previous data directory is kept in \(previous) (phylactery db restore --discard-previous removes it).")
        }
        guard start else {
            print("The server is stopped; the runtime reanimates the cluster at its next start.")
            return
        }
        let started = try await embedded.start()
        print("PostgreSQL started (pid \(started.pid)).")
        let reanimated = try await PhylacteryClient.withClient(configuration: .init(url: embedded.url)) { client in
            try await Reanimation.runIfPending(for: embedded, client: client)
        }
        if let reanimated {
            let jobs = reanimated.jobs
            let recorded = reanimated.fact.map { "recorded as fact \(Reanimation.factNamespace)/\(Reanimation.factKey) v\($0.version)" } ?? "not recorded as a fact (the federation is not migrated)"
            print("Reanimated: \(jobs.requeued) running job(s) back in their queue, \(jobs.discarded) discarded (last attempt)\(jobs.stillLeased > 0 ? ", \(jobs.stillLeased) return when their lease expires" : ""); \(reanimated.partitionsCreated) trace partition(s) created; \(recorded).")
        }
    }
}
