import Foundation
import Logging
import Phylactery
import PhylacteryEmbedded
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The private directory a restore builds in (`home/.restore-<time>`, on the same disk as the data
/// directory so the final swap is a rename):
///
/// ```
/// data/          the cluster being built, recovered and checked
/// wal-archive/   archived WAL decrypted for replay (encrypted backups only)
/// wal-extra/     WAL from the backups themselves and from the current data directory's pg_wal
/// <label>/       a backup of the chain, unpacked (until combined)
/// run/, log/     the recovery server's socket and log
/// ```
struct RestoreWorkspace {
    let crypt: Crypt
    let tools: PostgresTools
    let key: BackupKey?
    let progress: BackupProgress
    let root: String

    init(crypt: Crypt, tools: PostgresTools, key: BackupKey?, progress: @escaping BackupProgress) {
        self.crypt = crypt
        self.tools = tools
        self.key = key
        self.progress = progress
        let stamp = Crypt.label(at: RecoveryTime(Date()), kind: .full).prefix(16)
        self.root = crypt.server.configuration.home + "/.restore-\(stamp)"
    }

    var server: EmbeddedServer { crypt.server }
    var access: ServerAccess { crypt.access }
    var data: String { root + "/data" }
    var extraWAL: String { root + "/wal-extra" }
    var decryptedWAL: String { root + "/wal-archive" }
    /// Where restore_command looks first: the backup directory's archive, or its decrypted copy.
    var archiveWAL: String { key == nil ? crypt.settings.walDirectory : decryptedWAL }
    /// An embedded server over the workspace: its data directory is `data`, its socket in `run/`.
    var recoveryServer: EmbeddedServer {
        let c = server.configuration
        return EmbeddedServer(configuration: .init(
            home: root, pgBinOverride: tools.binDirectory, port: c.port, listensOnTCP: false,
            database: c.database, superuser: c.superuser, serverUser: c.serverUser))
    }

    func create() throws(BackupError) {
        // Leftovers of an interrupted restore are ours to remove.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: server.configuration.home)) ?? [] where name.hasPrefix(".restore-") {
            try? FileManager.default.removeItem(atPath: server.configuration.home + "/" + name)
        }
        for directory in [root, extraWAL, root + "/run", root + "/log"] {
            try access.createDirectory(directory, forServer: false)
        }
    }

    func stopRecoveryServerQuietly() {
        if case .running = recoveryServer.pidFileState() { _ = try? recoveryServer.stop() }
    }

    func remove() {
        if case .running = recoveryServer.pidFileState() { _ = try? recoveryServer.stop() }
        try? FileManager.default.removeItem(atPath: root)
    }

    // MARK: - The steps

    mutating func restore(catalog: BackupCatalog, target: RestoreTarget, usingCurrentWAL: Bool) async throws(BackupError) -> Restore.Outcome {
        var notes: [String] = []
        let archive = crypt.archive(segmentSize: catalog.newest?.walSegmentSize)
        let listing = archive.listing()

        // WAL the archive may lack: what the current data directory still holds.
        if usingCurrentWAL, target.usesWAL, let system = catalog.newest?.systemIdentifier {
            let copied = try await self.saveCurrentWAL(matching: system, archived: Set(listing.keys), archive: archive)
            if copied > 0 { notes.append("replayed with \(copied) WAL file(s) from the current data directory (not all archived yet)") }
        }
        let extra = Set((try? FileManager.default.contentsOfDirectory(atPath: extraWAL)) ?? [])
        let history = try archive.newestHistory(names: Set(listing.keys).union(extra)) { name throws(BackupError) -> Data in
            if listing[name] != nil { return try archive.read(name, key: key) }
            guard let data = FileManager.default.contents(atPath: extraWAL + "/" + name) else { throw BackupError(.fileSystem, "Could not read \(name).") }
            return data
        }
        let plan = try RestorePlan.make(catalog: catalog, history: history, target: target)
        progress(.step("Restoring to \(target) from \(plan.chain.map(\.label).joined(separator: " + ")) (timeline \(history.timeline))"))

        try await self.unpack(plan.chain)
        try await self.combine(plan.chain)
        let start = plan.chain.first!.startLSN.segment(size: archive.segmentSize)
        if key != nil { try self.decryptArchive(archive, listing: listing, from: start) }

        // Which segments replay may read, and the newest commit among them.
        var effective = plan.target
        let available = Set(listing.keys).union(try self.names(in: extraWAL))
        let segments = available.compactMap { WALFileName($0, segmentsPerId: archive.segmentsPerId) }
            .filter { $0.kind == .segment && $0.segment >= start && (!plan.followsNewestTimeline || history.contains(LSN($0.segment * archive.segmentSize), onTimeline: $0.timeline)) }
        if case .time(let time, let inclusive) = plan.target {
            let newestFirst = segments.sorted { ($0.segment, $0.timeline) > ($1.segment, $1.timeline) }
            let last = try await WALScan.lastCommit(in: newestFirst.map(\.name), tools: tools) { name throws(BackupError) -> String in
                for directory in [archiveWAL, extraWAL] where FileManager.default.fileExists(atPath: directory + "/" + name) { return directory + "/" + name }
                throw BackupError(.fileSystem, "\(name) vanished from the archive during the restore.")
            }
            if last.map({ inclusive ? time >= $0 : time > $0 }) ?? true {
                effective = .latest
                notes.append("no transaction in the available WAL committed after \(time): everything it holds was replayed (the newest commit in it is at \(last.map(\.description) ?? "none")); work committed later, if any, was never archived")
            }
        }
        let replay = try await self.recover(to: effective, followingNewestTimeline: plan.followsNewestTimeline, expectedSegments: Set(segments.map(\.segment)).count)
        let archivedSegments = segments.filter { listing[$0.name] != nil }
        if case .latest = effective, let newest = archivedSegments.max(by: { ($0.segment, $0.timeline) < ($1.segment, $1.timeline) }),
           let last = replay.lastRestored.flatMap({ WALFileName($0, segmentsPerId: archive.segmentsPerId) }), last.segment < newest.segment {
            notes.append("replay stopped after \(last.name): the next WAL file is missing, so the WAL archived after it (up to \(newest.name)) could not be used")
        }
        let checks = try await RestoreChecks(server: recoveryServer, tools: tools, logger: crypt.logger, progress: progress).run()
        try self.stopRecoveryServer()
        try await self.markNewTimelineForArchiving(archived: Set(listing.keys), timeline: replay.timeline, segmentsPerId: archive.segmentsPerId)
        return Restore.Outcome(
            target: target.description, chain: plan.chain.map(\.label), recoveredTo: replay.recoveredTo, timeline: replay.timeline,
            previousDataDirectory: nil, checks: checks.lines, notes: notes, migrationHead: checks.migrationHead,
            startedAt: RecoveryTime(Date()), finishedAt: RecoveryTime(Date()))
    }

    func names(in directory: String) throws(BackupError) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    }

    /// Copies the WAL of the current data directory (if it is a cluster with the same system
    /// identifier) that the archive lacks into `wal-extra`; returns how many files. Segments whose
    /// first page does not carry their own position are recycled files waiting to be reused, not
    /// WAL, and are left out.
    func saveCurrentWAL(matching system: String, archived: Set<String>, archive: WALArchive) async throws(BackupError) -> Int {
        let current = server.configuration.dataDirectory
        guard FileManager.default.fileExists(atPath: current + "/PG_VERSION") else { return 0 }
        let control = (try? await tools.runWatching("pg_controldata", ["-D", current], failure: "Reading the current cluster's control file")) ?? ""
        guard control.split(separator: "\n").contains(where: { $0.hasPrefix("Database system identifier:") && $0.hasSuffix(" " + system) }) else {
            progress(.note("the current data directory belongs to another cluster; its WAL is not used"))
            return 0
        }
        var copied = 0
        for name in try names(in: current + "/pg_wal") where !archived.contains(name) {
            guard let file = WALFileName(name, segmentsPerId: archive.segmentsPerId), file.kind == .segment || file.kind == .history else { continue }
            let path = current + "/pg_wal/" + name
            // Only regular files (never a link the server's user placed), and only real segments.
            guard FileSystem.metadata(path)?.isRegularFile == true else { continue }
            if file.kind == .segment, Self.pageAddress(of: path) != file.segment * archive.segmentSize { continue }
            do {
                try FileManager.default.copyItem(atPath: path, toPath: extraWAL + "/" + name)
                copied += 1
            } catch {
                throw BackupError(.fileSystem, "Could not copy \(name) from the current data directory: \(error).")
            }
        }
        return copied
    }

    /// `xlp_pageaddr` of a WAL segment's first page (bytes 8–15 of its header, little-endian).
    static func pageAddress(of path: String) -> UInt64? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: 16), header.count == 16 else { return nil }
        return header.suffix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    /// Checks each backup of the chain (refusing a damaged one, naming the file) and unpacks it into
    /// `<label>/`, its WAL into `<label>/pg_wal` and a copy into `wal-extra`.
    func unpack(_ chain: [BackupRecord]) async throws(BackupError) {
        for record in chain {
            let scratch = root + "/sealed-" + record.label
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let (plain, problems) = try await crypt.check(record, key: key, tools: tools, scratch: scratch, progress: progress)
            guard problems.isEmpty else {
                throw BackupError(.invalidArchive, "Backup \(record.label) is damaged, so nothing was restored:\n" + problems.map { "  - \($0)" }.joined(separator: "\n") + "\nRestore from another backup (--backup LABEL, or a time before it), and take a new backup.")
            }
            let target = root + "/" + record.label
            progress(.step("Unpacking \(record.label) (\(ByteSize.format(record.dataSize)))"))
            try crypt.extract(plain + "/base.tar.gz", into: target)
            try crypt.extract(plain + "/pg_wal.tar.gz", into: target + "/pg_wal")
            do {
                try FileManager.default.copyItem(atPath: plain + "/backup_manifest", toPath: target + "/backup_manifest")
                for name in try names(in: target + "/pg_wal") where !FileManager.default.fileExists(atPath: extraWAL + "/" + name) {
                    try FileManager.default.copyItem(atPath: target + "/pg_wal/" + name, toPath: extraWAL + "/" + name)
                }
            } catch {
                throw BackupError(.fileSystem, "Could not stage \(record.label): \(error).")
            }
        }
    }

    /// The chain becomes `data/`: the full backup itself, or `pg_combinebackup` of the chain.
    func combine(_ chain: [BackupRecord]) async throws(BackupError) {
        defer { for record in chain { try? FileManager.default.removeItem(atPath: root + "/" + record.label) } }
        if chain.count == 1 {
            guard rename(root + "/" + chain[0].label, data) == 0 else { throw DurableFile.failure("move the unpacked backup to", data) }
        } else {
            progress(.step("Combining \(chain.map(\.label).joined(separator: " + ")) into one data directory (pg_combinebackup)"))
            let total = chain[0].dataSize
            var polls = 0
            try await tools.runWatching("pg_combinebackup", chain.map { root + "/" + $0.label } + ["-o", data], failure: "pg_combinebackup could not combine the backups") { _ in
                polls += 1
                if polls % 4 == 0 { progress(.advanced(done: FileSystem.size(of: data), total: total, unit: .bytes)) }
            }
        }
        try DurableFile.syncTree(data)
    }

    /// Decrypts the archived WAL a replay from segment `start` on may read into `wal-archive`.
    func decryptArchive(_ archive: WALArchive, listing: [String: String], from start: UInt64) throws(BackupError) {
        try access.createDirectory(decryptedWAL, forServer: false)
        let needed = listing.keys.compactMap { WALFileName($0, segmentsPerId: archive.segmentsPerId) }
            .filter { $0.kind == .history || ($0.kind == .segment && $0.segment >= start) }
        progress(.step("Decrypting \(needed.count) archived WAL file(s) into a private directory"))
        var done: UInt64 = 0
        for file in needed {
            let plain = try archive.read(file.name, key: key)
            try DurableFile.replace(decryptedWAL + "/" + file.name, with: plain)
            done += 1
            progress(.advanced(done: done, total: UInt64(needed.count), unit: .segments))
        }
        try access.giveToServer(decryptedWAL)
    }

    /// The settings of the recovery run, written over the backup's `phylactery.conf`.
    func recoverySettings(_ target: RestoreTarget, followingNewestTimeline: Bool) -> String {
        let c = server.configuration
        let fetch = "cp \(Shell.quote(archiveWAL))/%f %p 2>/dev/null || cp \(Shell.quote(extraWAL))/%f %p"
        var lines = [
            "# Written by Phylactery for a restore; rewritten at the next start.",
            "listen_addresses = ''",
            "port = \(c.port)",
            "unix_socket_directories = \(ServerSetting.quote(root + "/run"))",
            "unix_socket_permissions = 0700",
            "max_connections = 500",
            "archive_mode = off",
            "restore_command = \(ServerSetting.quote(fetch))",
            "recovery_target_action = 'promote'",
            "recovery_target_timeline = '\(followingNewestTimeline ? "latest" : "current")'",
        ]
        switch target {
        case .latest: break
        case .time(let time, let inclusive):
            lines.append("recovery_target_time = '\(time)'")
            lines.append("recovery_target_inclusive = \(inclusive ? "on" : "off")")
        case .backup: lines.append("recovery_target = 'immediate'")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    struct Replay {
        var recoveredTo: RecoveryTime?
        var timeline: UInt32
        /// The last WAL file restore_command delivered.
        var lastRestored: String?
    }

    /// Starts a server on `data/` in recovery, follows its log (segments restored, the end of
    /// recovery, a fatal error) and returns once it is promoted.
    func recover(to target: RestoreTarget, followingNewestTimeline: Bool, expectedSegments: Int) async throws(BackupError) -> Replay {
        try access.writeForServer(recoverySettings(target, followingNewestTimeline: followingNewestTimeline), to: data + "/phylactery.conf")
        try DurableFile.replace(data + "/recovery.signal", with: Data())
        for stale in ["postmaster.pid", "postmaster.opts"] { try? FileManager.default.removeItem(atPath: data + "/" + stale) }
        try access.giveToServer(root)
        chmod(data, 0o700)
        let log = root + "/log/postgresql.log"
        progress(.step("Replaying WAL to \(target) (PostgreSQL archive recovery)"))
        try await tools.runWatching("pg_ctl", ["start", "-W", "-D", data, "-l", log, "-o", "-c archive_mode=off"], as: PostgresTools.serverUser(of: server),
                            failure: "The recovery server did not start")
        var seenServer = false
        var restored = 0
        let quietLimit = ContinuousClock.now + .seconds(120)
        while true {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let count = text.components(separatedBy: "restored log file \"").count - 1
            if count != restored {
                restored = count
                progress(.advanced(done: UInt64(restored), total: UInt64(max(expectedSegments, restored)), unit: .segments))
            }
            if text.contains("database system is ready to accept connections") {
                return Replay(recoveredTo: Self.lastTransaction(in: text), timeline: Self.newTimeline(in: text) ?? 1, lastRestored: Self.lastRestored(in: text))
            }
            switch recoveryServer.pidFileState() {
            case .running: seenServer = true
            case .absent, .stale:
                if seenServer || ContinuousClock.now > quietLimit {
                    throw Self.failure(log: text, target: target)
                }
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// `last completed transaction was at log time 2026-11-29 22:43:45.143517+00`.
    static func lastTransaction(in log: String) -> RecoveryTime? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("last completed transaction was at log time ") }),
              let range = line.range(of: "log time ")
        else { return nil }
        return RecoveryTime(serverText: line[range.upperBound...])
    }

    /// The last `restored log file "…"` of the log.
    static func lastRestored(in log: String) -> String? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("restored log file \"") && !$0.contains(".history") }),
              let start = line.range(of: "restored log file \"")
        else { return nil }
        return String(line[start.upperBound...].prefix { $0 != "\"" })
    }

    /// `selected new timeline ID: 2`.
    static func newTimeline(in log: String) -> UInt32? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("selected new timeline ID: ") }),
              let range = line.range(of: "timeline ID: ")
        else { return nil }
        return UInt32(line[range.upperBound...].trimmingCharacters(in: .whitespaces))
    }

    /// Why recovery stopped, in the operator's terms.
    static func failure(log: String, target: RestoreTarget) -> BackupError {
        let fatal = log.split(separator: "\n").filter { $0.contains("FATAL") || $0.contains("PANIC") }
        let tail = (fatal.isEmpty ? log.split(separator: "\n").suffix(8) : fatal.suffix(4)).joined(separator: "\n")
        if log.contains("recovery ended before configured recovery target was reached") {
            let last = lastRestored(in: log).map { " after \($0) (the next WAL file is missing from the archive)" } ?? ""
            return BackupError(.notRestorable, "The WAL needed to reach \(target) is not in the archive: replay ran out\(last). Restore to an earlier time, or --latest; `phylactery db backups` shows the range the archive covers and any gap in it.", details: tail)
        }
        if log.contains("before consistent recovery point") {
            return BackupError(.notRestorable, "\(target) lies before the end of the backup chosen; pick a later time.", details: tail)
        }
        return BackupError(.notRestorable, "WAL replay failed; nothing was swapped in. The recovery server's log ends with:\n\(tail)", details: tail)
    }

    func stopRecoveryServer() throws(BackupError) {
        do {
            _ = try recoveryServer.stop()
        } catch {
            throw BackupError(.serverState, "The recovery server did not stop: \(error.message)")
        }
    }

    /// Recovery ran with archiving off (nothing of a restore that is not swapped in may reach the
    /// archive), so the new timeline's history file, and any segment of it finished before the last
    /// checkpoint, are marked `.ready`: the server archives them at its next start, through the normal
    /// path. The segment being written is not (the server marks it when it is finished; archived early
    /// it would be a stale copy the archive never lets it replace).
    func markNewTimelineForArchiving(archived: Set<String>, timeline: UInt32, segmentsPerId: UInt64) async throws(BackupError) {
        guard timeline > 1 else { return }
        let control = try await tools.runWatching("pg_controldata", ["-D", data], failure: "Reading the restored cluster's control file")
        let redo = control.split(separator: "\n").first { $0.hasPrefix("Latest checkpoint's REDO WAL file:") }
            .flatMap { WALFileName(String($0.split(separator: " ").last ?? ""), segmentsPerId: segmentsPerId) }
        let walDirectory = data + "/pg_wal"
        for name in try names(in: walDirectory) where !archived.contains(name) {
            guard let file = WALFileName(name, segmentsPerId: segmentsPerId) else { continue }
            let finished = file.kind == .segment && file.timeline == timeline && redo.map { file.segment < $0.segment } ?? false
            guard file.kind == .history || finished else { continue }
            if !FileManager.default.fileExists(atPath: walDirectory + "/archive_status/" + name + ".done") {
                try access.writeForServer("", to: walDirectory + "/archive_status/" + name + ".ready")
            }
        }
    }

    /// Swaps `data/` in for the home's data directory, records the outcome for reanimation.
    func publish(_ outcome: inout Restore.Outcome) throws(BackupError) {
        let stamp = Crypt.label(at: outcome.finishedAt, kind: .full).prefix(16)
        let aside = server.configuration.home + "/data.previous-\(stamp)"
        progress(.step("Swapping the restored cluster in for \(server.configuration.dataDirectory)"))
        outcome.previousDataDirectory = try DataDirectorySwap.swap(data, into: server.configuration.dataDirectory, keepingOldAt: aside)
        let home = BackupHome(server.configuration)
        try access.createDirectory(home.directory, forServer: false, mode: 0o711)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let data = try? encoder.encode(outcome) {
            try DurableFile.replace(home.reanimationFile, with: data)
        }
    }
}

extension RestoreTarget {
    /// Whether the restore replays WAL past the backup (not for a restore to a backup's own end).
    var usesWAL: Bool {
        if case .backup = self { return false }
        return true
    }
}
