/// Where a restore goes: the newest state the WAL holds, a point in time, or one backup as it was taken.
public enum RestoreTarget: Sendable, Hashable, CustomStringConvertible {
    /// Everything committed that the archive (and the old data directory's WAL, when it is still
    /// there) holds.
    case latest
    /// The state at `time`: every transaction whose commit record is at or before it
    /// (`inclusive`, the default) — or strictly before it — and nothing after.
    case time(RecoveryTime, inclusive: Bool)
    /// The state at the end of the backup `label` (its consistency point), no WAL replayed past it.
    case backup(String)

    public var description: String {
        switch self {
        case .latest: "the latest archived state"
        case .time(let time, let inclusive): "\(time)\(inclusive ? "" : " (exclusive)")"
        case .backup(let label): "the end of backup \(label)"
        }
    }
}

/// Which backups a restore combines, chosen from the catalog and the timeline history alone.
struct RestorePlan: Sendable, Equatable {
    /// The full backup and the incrementals on it, in order.
    var chain: [BackupRecord]
    var target: RestoreTarget
    /// Recovery follows the newest timeline (`latest`); a restore to a backup stays on its own (`current`).
    var followsNewestTimeline: Bool

    /// The newest backup that can start the restore, with its chain.
    ///
    /// - A time: the backup that ended last at or before it, on the current history.
    /// - Latest: the newest backup on the current history.
    /// - A label: that backup.
    static func make(catalog: BackupCatalog, history: TimelineHistory, target: RestoreTarget) throws(BackupError) -> RestorePlan {
        guard !catalog.backups.isEmpty else {
            throw BackupError(.notRestorable, "The backup directory holds no backup yet; take one first: phylactery db backup.")
        }
        if case .backup(let label) = target {
            return try plan(restoring: label, in: catalog)
        }
        // Backups of the cluster the newest backup belongs to, lying on the current history, whole.
        let system = catalog.newest?.systemIdentifier
        let usable = catalog.backups.filter { record in
            record.systemIdentifier == system && history.contains(record.stopLSN, onTimeline: record.timeline) && catalog.chain(of: record) != nil
        }
        guard let newest = usable.max(by: { ($0.stopLSN, $0.stopTime) < ($1.stopLSN, $1.stopTime) }) else {
            throw BackupError(.notRestorable, "No backup lies on the cluster's current history (timeline \(history.timeline)): every backup was taken on a branch an earlier restore abandoned, or misses a backup it builds on. Take a new backup (phylactery db backup), or restore one by label (--backup).")
        }
        guard case .time(let time, _) = target else {
            return RestorePlan(chain: catalog.chain(of: newest)!, target: target, followsNewestTimeline: true)
        }
        let before = usable.filter { $0.stopTime <= time }
        guard let chosen = before.max(by: { ($0.stopTime, $0.stopLSN) < ($1.stopTime, $1.stopLSN) }) else {
            let earliest = usable.min { $0.stopTime < $1.stopTime }!
            throw BackupError(.notRestorable, "No backup ends at or before \(time); the earliest time that can be restored is \(earliest.stopTime), when backup \(earliest.label) ended.")
        }
        return RestorePlan(chain: catalog.chain(of: chosen)!, target: target, followsNewestTimeline: true)
    }

    private static func plan(restoring label: String, in catalog: BackupCatalog) throws(BackupError) -> RestorePlan {
        guard let record = catalog[label] else {
            throw BackupError(.notRestorable, "No backup is labelled \(label); `phylactery db backups` lists them.")
        }
        guard let chain = catalog.chain(of: record) else {
            throw BackupError(.notRestorable, "Backup \(label) builds on \(record.parent ?? "?"), which is no longer in the catalog; restore another backup.")
        }
        return RestorePlan(chain: chain, target: .backup(label), followsNewestTimeline: false)
    }
}
