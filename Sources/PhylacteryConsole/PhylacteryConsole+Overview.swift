import Foundation
import Hummingbird
import Phylactery

/// The overview: the server (versions, sizes by chamber, connections, WAL archiving, autovacuum on
/// the busiest tables, the migration head, the last hour's jobs and spans per minute), its health
/// checks and the queue's totals.
struct OverviewData: Codable, Sendable {
    struct Check: Codable, Sendable { var name: String; var status: String; var detail: String; var fix: String? }
    struct StateTotal: Codable, Sendable { var state: String; var count: Int }
    var version: String
    var server: ServerOverview
    var health: [Check]
    var queueTotals: [StateTotal]
    /// The newest base backup, the restorable range and the last verification (the Backups page's
    /// summary); `configured` is false without `db archive` settings.
    var backups: BackupState
}

/// The overview's backup card.
struct BackupState: Codable, Sendable {
    var configured: Bool
    var lastBackup: String?
    var lastBackupAt: String?
    var restorableUntil: String?
    var lastVerification: BackupsData.Verification?
    var message: String?

    init(_ data: BackupsData) {
        self.configured = data.configured
        self.lastBackup = data.backups.first?.label
        self.lastBackupAt = data.backups.first?.stop
        self.restorableUntil = data.restorableUntil
        self.lastVerification = data.lastVerification
        self.message = data.message
    }

    /// A line for the card.
    var text: String {
        guard self.configured else { return "not configured (`phylactery db archive --to DIR`)" }
        if let message { return message }
        guard let lastBackup, let lastBackupAt else { return "no base backup yet (`phylactery db backup`)" }
        var text = "last base backup \(lastBackup), ended \(lastBackupAt)"
        if let restorableUntil { text += "; restorable until \(restorableUntil)" }
        if let verification = self.lastVerification {
            text += verification.passed ? "; verified \(verification.at)" : "; last verification FAILED at \(verification.at)"
        } else {
            text += "; never verified"
        }
        return text
    }

    /// Whether the card shows as a problem.
    var isFailing: Bool { self.configured && (self.message != nil || self.lastVerification?.passed == false) }
}

struct OverviewPageView: Sendable {
    struct Chamber: Sendable { var schema: String; var tables: Int; var size: String }
    struct Table: Sendable { var name: String; var live: Int64; var dead: Int64; var ratio: String; var lastAutovacuum: String; var keepsUp: Bool }
    var server: ServerOverview
    var databaseSize: String
    var chambers: [Chamber]
    var tables: [Table]
    var archiving: String
    var archivingFailing: Bool
    var backup: String
    var backupFailing: Bool
    var health: [OverviewData.Check]
    var queueTotals: [OverviewData.StateTotal]
    var jobsChart: String
    var spansChart: String
}

extension PhylacteryConsole {
    func overviewData() async throws -> OverviewData {
        async let report = self.client.healthReport()
        async let counted = self.jobCounts()
        async let server = self.client.serverOverview()
        async let backups = self.backupsData()
        let (health, counts, overview, backupData) = try await (report, counted, server, backups)
        var totals: [String: Int] = [:]
        for line in counts.counts { totals[line.state, default: 0] += line.count }
        return OverviewData(
            version: PhylacteryVersion.current, server: overview,
            health: health.checks.map { .init(name: $0.name, status: $0.status.rawValue, detail: $0.detail, fix: $0.fix) },
            queueTotals: totals.sorted { $0.key < $1.key }.map { .init(state: $0.key, count: $0.value) },
            backups: BackupState(backupData))
    }

    func overviewPage(_ request: Request) async throws -> Response {
        let data = try await self.overviewData()
        let server = data.server
        let archiving = server.walArchiving
        var archivingText = "archive_mode \(archiving.mode)"
        if archiving.mode != "off" {
            archivingText += "; \(archiving.archivedCount) segment(s) archived"
            if let at = archiving.lastArchivedAt { archivingText += ", last at \(ConsoleTime.text(at))" }
            if archiving.failedCount > 0 { archivingText += "; \(archiving.failedCount) failure(s)" }
        }
        let view = OverviewPageView(
            server: server, databaseSize: Self.bytes(server.databaseBytes),
            chambers: server.chambers.map { .init(schema: $0.schema, tables: $0.tables, size: Self.bytes($0.bytes)) },
            tables: server.busiestTables.map {
                .init(name: "\($0.schema).\($0.table)", live: $0.liveTuples, dead: $0.deadTuples, ratio: String(format: "%.1f%%", $0.deadRatio * 100),
                      lastAutovacuum: $0.lastAutovacuum.map(ConsoleTime.text) ?? "never", keepsUp: $0.keepsUp)
            },
            archiving: archivingText, archivingFailing: archiving.isFailing, backup: data.backups.text, backupFailing: data.backups.isFailing, health: data.health, queueTotals: data.queueTotals,
            jobsChart: SVGChart.bars(server.activity.map { Double($0.jobsCompleted) }, label: "jobs completed per minute over the last hour"),
            spansChart: SVGChart.bars(server.activity.map { Double($0.spansRecorded) }, label: "spans recorded per minute over the last hour"))
        return self.page("overview", title: "Overview", section: "/", view)
    }

    /// `1.5 MiB`.
    static func bytes(_ count: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: count, countStyle: .binary)
    }
}
