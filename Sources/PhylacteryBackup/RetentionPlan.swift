/// What retention removes from a backup directory, decided from the catalog and the archive listing
/// alone (no I/O), so the rule is tested on its own.
///
/// The rule: keep the newest `keepFull` full backups with every incremental built on them, and the
/// chain of the newest backup whatever else is decided; remove the other backups; remove archived WAL
/// (segments, partial segments, backup histories) older than the start of the oldest backup kept.
/// Timeline history files are always kept (they are tiny, and a restore needs every one of them to
/// follow the history). So the newest restorable point — the newest backup plus all WAL after it —
/// is never touched, and with `keepFull` ≥ 1 neither is any point after the oldest kept full backup.
struct RetentionPlan: Sendable, Equatable {
    /// Labels of the backups to remove, oldest first.
    var removedBackups: [String]
    /// Names of archived WAL files to remove (as PostgreSQL names them).
    var removedWAL: [String]
    /// Labels kept.
    var keptBackups: [String]

    static func make(catalog: BackupCatalog, archivedWAL: [String], keepFull: Int, segmentSize: UInt64) -> RetentionPlan {
        precondition(keepFull >= 1, "retention keeps at least one full backup")
        let fulls = catalog.backups.filter { $0.kind == .full }.sorted { ($0.stopTime, $0.label) > ($1.stopTime, $1.label) }
        var keptRoots = Set(fulls.prefix(keepFull).map(\.label))
        if let newest = catalog.newest, let root = catalog.chain(of: newest)?.first {
            keptRoots.insert(root.label)
        }
        var kept: [BackupRecord] = []
        var removed: [String] = []
        for record in catalog.backups {
            if let root = catalog.chain(of: record)?.first, keptRoots.contains(root.label) {
                kept.append(record)
            } else {
                removed.append(record.label)
            }
        }
        // WAL: everything from the oldest kept backup's start segment on stays.
        let segmentsPerId = (UInt64(1) << 32) / segmentSize
        var removedWAL: [String] = []
        if let oldestStart = kept.map({ $0.startLSN.segment(size: segmentSize) }).min() {
            for name in archivedWAL {
                guard let file = WALFileName(name, segmentsPerId: segmentsPerId), file.kind != .history else { continue }
                if file.segment < oldestStart { removedWAL.append(name) }
            }
        }
        return RetentionPlan(removedBackups: removed, removedWAL: removedWAL.sorted(), keptBackups: kept.map(\.label))
    }
}
