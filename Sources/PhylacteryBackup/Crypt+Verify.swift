import Foundation
import PhylacteryEmbedded

extension Crypt {
    /// The result of verifying one stored backup.
    public struct Verification: Sendable {
        /// The backup verified.
        public var label: String
        /// What is wrong, each naming the file (empty when the backup is sound).
        public var problems: [String]
        /// No problem was found.
        public var passed: Bool { problems.isEmpty }
    }

    /// Verifies stored backups (all, or those labelled): each stored file against the catalog's
    /// SHA-256; then — decrypted into a private directory when encrypted — every file in the archives
    /// against the manifest's checksums (`pg_verifybackup`), and the WAL each needs to be consistent
    /// (`pg_waldump` from its start to its end).
    public func verify(_ labels: [String]? = nil, key explicit: BackupKey? = nil, progress: BackupProgress = { _ in }) async throws(BackupError) -> [Verification] {
        let catalog = try self.catalog()
        let records = try labels.map { (wanted: [String]) throws(BackupError) -> [BackupRecord] in
            try wanted.map { (label: String) throws(BackupError) -> BackupRecord in
                guard let record = catalog[label] else { throw BackupError(.invalidArgument, "No backup is labelled \(label); `phylactery db backups` lists them.") }
                return record
            }
        } ?? catalog.backups
        let key = records.contains(where: \.isEncrypted) ? try self.key(explicit) : explicit
        let tools = try PostgresTools.forPhysicalBackups(of: server)
        return try await withLock("verification") { () throws(BackupError) -> [Verification] in
            var results: [Verification] = []
            for record in records {
                let scratch = home.workDirectory + "/verify-" + record.label
                defer { try? FileManager.default.removeItem(atPath: scratch) }
                let problems = try await self.check(record, key: key, tools: tools, scratch: scratch, progress: progress).problems
                results.append(Verification(label: record.label, problems: problems))
            }
            try self.record(results)
            return results
        }
    }

    /// Records each verification's outcome in the catalog: ``BackupRecord/lastVerification``, and
    /// ``BackupRecord/verifiedAt`` when it passed. Runs under the crypt's lock.
    func record(_ results: [Verification]) throws(BackupError) {
        var catalog = try self.catalog()
        let now = RecoveryTime(Date())
        for result in results {
            guard let index = catalog.backups.firstIndex(where: { $0.label == result.label }) else { continue }
            catalog.backups[index].lastVerification = BackupVerification(label: result.label, at: now, passed: result.passed, problems: result.problems)
            if result.passed { catalog.backups[index].verifiedAt = now }
        }
        try self.save(catalog)
    }

    /// Checks one stored backup and returns the directory holding its plain tar files (its own
    /// folder, or `scratch` when it had to be decrypted there), with the problems found.
    func check(_ record: BackupRecord, key: BackupKey?, tools: PostgresTools, scratch: String, progress: BackupProgress) async throws(BackupError) -> (plain: String, problems: [String]) {
        let folder = folder(of: record.label)
        var problems: [String] = []
        for file in record.files {
            let path = folder + "/" + file.name
            guard FileManager.default.fileExists(atPath: path) else {
                problems.append("\(path) is missing")
                continue
            }
            progress(.step("Checking \(record.label)/\(file.name) against the catalog (SHA-256)"))
            let digest = try BackupFiles.sha256(path) { done in progress(.advanced(done: done, total: file.size, unit: .bytes)) }
            if digest != file.sha256 {
                problems.append("\(path) has changed since it was stored (SHA-256 \(digest.prefix(16))…, the catalog says \(file.sha256.prefix(16))…)")
            }
        }
        var plain = folder
        if record.isEncrypted {
            guard let key else { throw BackupError(.keyRequired, "Backup \(record.label) is encrypted; pass its key file (--key-file KEY).") }
            try access.createDirectory(scratch, forServer: false)
            plain = scratch
            for name in Self.backupFiles {
                let sealed = folder + "/" + name + SealedFile.suffix
                guard FileManager.default.fileExists(atPath: sealed) else { continue }
                let total = BackupFiles.fileSize(sealed)
                progress(.step("Decrypting \(record.label)/\(name) into a private directory"))
                do {
                    try SealedFile.open(file: sealed, to: scratch + "/" + name, key: key, name: sealed) { done in
                        progress(.advanced(done: done, total: total, unit: .bytes))
                    }
                } catch let error as BackupError where error.code == .wrongKey || error.code == .keyRequired {
                    throw error
                } catch {
                    problems.append(String(describing: error))
                }
            }
            guard problems.isEmpty else { return (plain, problems) }
        }
        do throws(BackupError) {
            let manifest = try BackupManifest.read(plain + "/backup_manifest")
            try await verifyPlain(plain, label: record.label, manifest: manifest, tools: tools, scratch: scratch, progress: progress)
        } catch {
            guard error.code == .invalidArchive else { throw error }
            problems.append(error.message)
        }
        return (plain, problems)
    }

    /// `pg_verifybackup` on a tar-format backup in `directory`, then its WAL read with `pg_waldump`
    /// over every range the manifest names. Throws ``BackupError/Code/corrupted`` listing what fails.
    func verifyPlain(
        _ directory: String, label: String, manifest: BackupManifest, tools: PostgresTools, scratch: String? = nil, progress: BackupProgress
    ) async throws(BackupError) {
        progress(.step("Verifying \(label) against its manifest (pg_verifybackup)"))
        var problems: [String] = []
        do throws(BackupError) {
            try await tools.runWatching("pg_verifybackup", ["-F", "t", "-n", "-P", directory], failure: "pg_verifybackup found problems") { output in
                if let figures = PostgresTools.kilobyteProgress(in: output) {
                    progress(.advanced(done: figures.done, total: figures.total, unit: .bytes))
                }
            }
        } catch {
            guard error.code == .toolFailed else { throw error }
            let lines = (error.details ?? error.message).split(whereSeparator: { $0 == "\n" || $0 == "\r" })
                .filter { $0.contains("error:") }.map { $0.replacingOccurrences(of: "pg_verifybackup: error: ", with: "") }
            problems += lines.isEmpty ? [error.message] : lines.map { "\(label): \($0)" }
        }
        progress(.step("Reading the WAL \(label) needs to be consistent (pg_waldump)"))
        let walDirectory = (scratch ?? directory) + "/.wal-check-\(label)"
        defer { try? FileManager.default.removeItem(atPath: walDirectory) }
        do {
            try extract(directory + "/pg_wal.tar.gz", into: walDirectory)
            for range in manifest.walRanges {
                try await tools.runWatching("pg_waldump", [
                    "--quiet", "--path=\(walDirectory)", "--timeline=\(range.timeline)", "--start=\(range.start)", "--end=\(range.end)",
                ], failure: "\(label): the WAL from \(range.start) to \(range.end) on timeline \(range.timeline) does not read")
            }
        } catch {
            problems.append(error.message)
        }
        guard problems.isEmpty else {
            throw BackupError(.invalidArchive, problems.joined(separator: "\n"))
        }
    }

    /// Unpacks a gzip-compressed tar file into `directory` (created).
    func extract(_ archive: String, into directory: String) throws(BackupError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw BackupError(.fileSystem, "Could not create \(directory): \(error).")
        }
        let tar = Subprocess.which("tar") ?? "/bin/tar"
        let outcome: Subprocess.Outcome
        do {
            outcome = try Subprocess.run(tar, ["-xzf", archive, "-C", directory], environment: PostgresTools.watchedEnvironment)
        } catch {
            throw BackupError(.toolFailed, "Could not run tar: \(error).")
        }
        guard outcome.succeeded else {
            throw BackupError(.invalidArchive, "\(archive) does not unpack: \(outcome.output.trimmingCharacters(in: .whitespacesAndNewlines))", details: outcome.output)
        }
    }
}
