import Foundation

extension Crypt {
    /// What `phylactery db backups` shows: the backups, the archive, and the time range a restore can reach.
    public struct Overview: Sendable, Hashable, Codable {
        /// Backups, oldest first.
        public var backups: [BackupRecord]
        /// Archived WAL files and their stored bytes.
        public var walFiles: Int
        /// See ``walFiles``.
        public var walBytes: UInt64
        /// The newest timeline (it grows with each point-in-time restore).
        public var timeline: UInt32
        /// The earliest time a restore reaches: the end of the oldest backup on the current history.
        public var restorableFrom: RecoveryTime?
        /// The latest time a restore reaches from the archive alone: the newest commit in the archived
        /// WAL, or the end of the newest backup when that is later.
        public var restorableUntil: RecoveryTime?
        /// Stretches of WAL missing from the archive after the oldest backup (a restore cannot cross them).
        public var gaps: [String]
        /// The newest verification of any backup: a later ``Crypt/verify(_:key:progress:)`` run, or
        /// the check made when the backup was taken; `nil` without backups.
        public var lastVerification: BackupVerification?
    }

    /// Reads the catalog and the archive (decrypting the newest WAL segment to find its last commit).
    public func overview(key explicit: BackupKey? = nil) async throws(BackupError) -> Overview {
        let catalog = try self.catalog()
        let archive = self.archive()
        let listing = archive.listing()
        let key = settings.encrypted ? (try? self.key(explicit)) ?? nil : nil
        let readable = !settings.encrypted || key != nil
        let history = readable ? ((try? archive.newestHistory(names: listing.keys) { name throws(BackupError) in try archive.read(name, key: key) }) ?? .first) : .first
        let onPath = catalog.backups.filter { history.contains($0.stopLSN, onTimeline: $0.timeline) }
        var bytes: UInt64 = 0
        for stored in listing.values { bytes += BackupFiles.fileSize(archive.directory + "/" + stored) }
        var overview = Overview(
            backups: catalog.backups, walFiles: listing.count, walBytes: bytes, timeline: history.timeline,
            restorableFrom: onPath.map(\.stopTime).min(), restorableUntil: nil, gaps: [],
            lastVerification: catalog.backups.map { $0.lastVerification ?? BackupVerification(label: $0.label, at: $0.verifiedAt, passed: true, problems: []) }
                .max { ($0.at, $0.label) < ($1.at, $1.label) })
        let segments = listing.keys.compactMap { WALFileName($0, segmentsPerId: archive.segmentsPerId) }.filter { $0.kind == .segment }
        if let oldest = onPath.map({ $0.startLSN.segment(size: archive.segmentSize) }).min(), let newest = segments.map(\.segment).max(), oldest <= newest {
            let present = Set(segments.map(\.segment))
            var start: UInt64?
            for segment in oldest...newest {
                if present.contains(segment) {
                    if let first = start {
                        overview.gaps.append("segments \(first)–\(segment - 1) (after \(WALFileName.segmentName(timeline: history.timeline, segment: first - 1, segmentsPerId: archive.segmentsPerId)))")
                        start = nil
                    }
                } else if start == nil {
                    start = segment
                }
            }
        }
        if readable, let tools = try? PostgresTools.forPhysicalBackups(of: server) {
            let scratch = home.workDirectory + "/scan"
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let candidates = segments.filter { history.contains(LSN($0.segment * archive.segmentSize), onTimeline: $0.timeline) }
                .sorted { ($0.segment, $0.timeline) > ($1.segment, $1.timeline) }
            overview.restorableUntil = try? await WALScan.lastCommit(in: candidates.map(\.name), tools: tools) { name throws(BackupError) -> String in
                if listing[name] == name { return archive.directory + "/" + name }
                try access.createDirectory(scratch, forServer: false)
                let path = scratch + "/" + name
                try DurableFile.replace(path, with: try archive.read(name, key: key))
                return path
            }
        }
        let newestEnd = onPath.map(\.stopTime).max()
        overview.restorableUntil = [overview.restorableUntil, newestEnd].compactMap { $0 }.max()
        return overview
    }
}

/// Finds commit times in WAL with `pg_waldump`.
enum WALScan {
    /// The newest commit recorded in the WAL files `names` (newest first): pg_waldump reads each in
    /// turn until one holds a commit. `path` gives a readable path for a name (decrypting if needed).
    static func lastCommit(
        in names: [String], tools: PostgresTools, limit: Int = 64, path: (String) throws(BackupError) -> String
    ) async throws(BackupError) -> RecoveryTime? {
        for name in names.prefix(limit) {
            let file = try path(name)
            let output = try await tools.runWatching("pg_waldump", ["--rmgr=Transaction", file], accepting: [0, 1], failure: "Reading \(name)")
            if let last = commitTimes(in: output).max() { return last }
        }
        return nil
    }

    /// The times of the commit records in pg_waldump's output (`desc: COMMIT 2026-11-29 22:43:45.243366 UTC`).
    static func commitTimes(in output: String) -> [RecoveryTime] {
        output.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "desc: COMMIT ") ?? line.range(of: "desc: COMMIT_PREPARED ") else { return nil }
            let rest = line[range.upperBound...]
            guard let end = rest.range(of: " UTC") else { return nil }
            return RecoveryTime(serverText: rest[..<end.upperBound])
        }
    }
}
