import Foundation
import PhylacteryEmbedded

extension Crypt {
    /// What ``applyRetention(keepFull:progress:)`` removed.
    public struct RetentionOutcome: Sendable {
        /// Labels of the backups removed.
        public var removedBackups: [String]
        /// Archived WAL files removed.
        public var removedWALFiles: Int
        /// Bytes freed.
        public var freedBytes: UInt64
    }

    /// Keeps the newest `keepFull` full backups with the incrementals built on them, and the WAL from
    /// the oldest of them on; removes the rest (see ``RetentionPlan`` for the exact rule — it never
    /// removes what the newest restorable point needs).
    ///
    /// The catalog is rewritten first, then files are removed, so an interruption leaves only files no
    /// catalog entry points to; they go at the next run.
    public func applyRetention(keepFull: Int, lockWait: Duration = .zero, progress: BackupProgress = { _ in }) async throws(BackupError) -> RetentionOutcome {
        guard keepFull >= 1 else {
            throw BackupError(.invalidArgument, "--keep-full must be at least 1: the newest full backup is always kept.")
        }
        return try await withLock("retention", wait: lockWait) { () throws(BackupError) -> RetentionOutcome in
            var catalog = try self.catalog()
            let archive = self.archive()
            let listing = archive.listing()
            let plan = RetentionPlan.make(catalog: catalog, archivedWAL: Array(listing.keys), keepFull: keepFull, segmentSize: archive.segmentSize)
            if !plan.removedBackups.isEmpty {
                progress(.step("Removing \(plan.removedBackups.count) backup(s) older than the newest \(keepFull) full one(s): \(plan.removedBackups.joined(separator: ", "))"))
            }
            catalog.backups.removeAll { plan.removedBackups.contains($0.label) }
            try self.save(catalog)
            var freed: UInt64 = 0
            let kept = Set(catalog.backups.map(\.label))
            for folder in (try? FileManager.default.contentsOfDirectory(atPath: baseDirectory)) ?? [] where !kept.contains(folder) {
                let path = baseDirectory + "/" + folder
                freed += FileSystem.size(of: path)
                try? FileManager.default.removeItem(atPath: path)
            }
            if !plan.removedWAL.isEmpty {
                progress(.step("Removing \(plan.removedWAL.count) archived WAL file(s) older than the oldest backup kept"))
            }
            for name in plan.removedWAL {
                guard let stored = listing[name] else { continue }
                let path = archive.directory + "/" + stored
                freed += BackupFiles.fileSize(path)
                try? FileManager.default.removeItem(atPath: path)
            }
            try DurableFile.syncDirectory(baseDirectory)
            return RetentionOutcome(removedBackups: plan.removedBackups, removedWALFiles: plan.removedWAL.count, freedBytes: freed)
        }
    }
}
