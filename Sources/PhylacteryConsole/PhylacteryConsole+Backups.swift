import Foundation
import Hummingbird
import Phylactery
import PhylacteryBackup

/// The backups of the local server: the catalog, the restorable range, the last verification.
struct BackupsData: Codable, Sendable {
    struct Backup: Codable, Sendable {
        var label: String; var kind: String; var parent: String?; var start: String; var stop: String; var size: String; var postgresVersion: String
    }
    struct Verification: Codable, Sendable { var label: String; var at: String; var passed: Bool; var problems: [String] }
    /// Whether backups are configured (`phylactery db archive --to DIR`); the rest is empty otherwise.
    var configured: Bool
    /// Why nothing is shown, with the fix, when backups are not configured or cannot be read.
    var message: String?
    var directory: String?
    var backups: [Backup]
    var walFiles: Int
    var walSize: String
    var restorableFrom: String?
    var restorableUntil: String?
    var gaps: [String]
    var lastVerification: Verification?
}

extension PhylacteryConsole {
    func backupsData() async throws -> BackupsData {
        guard let crypt = self.backups else {
            return BackupsData(configured: false, message: "Backups are not configured for this server: `phylactery db archive --to DIR` sets them up (a local server only).",
                               directory: nil, backups: [], walFiles: 0, walSize: "0 bytes", restorableFrom: nil, restorableUntil: nil, gaps: [], lastVerification: nil)
        }
        let overview: Crypt.Overview
        do {
            overview = try await crypt.overview()
        } catch {
            return BackupsData(configured: true, message: "The backup directory \(crypt.directory) cannot be read: \(error)", directory: crypt.directory,
                               backups: [], walFiles: 0, walSize: "0 bytes", restorableFrom: nil, restorableUntil: nil, gaps: [], lastVerification: nil)
        }
        return BackupsData(
            configured: true, message: nil, directory: crypt.directory,
            backups: overview.backups.reversed().map {
                .init(label: $0.label, kind: "\($0.kind)", parent: $0.parent, start: $0.startTime.description, stop: $0.stopTime.description,
                      size: Self.bytes(Int64(clamping: $0.dataSize)), postgresVersion: $0.postgresVersion)
            },
            walFiles: overview.walFiles, walSize: Self.bytes(Int64(clamping: overview.walBytes)),
            restorableFrom: overview.restorableFrom?.description, restorableUntil: overview.restorableUntil?.description, gaps: overview.gaps,
            lastVerification: overview.lastVerification.map { .init(label: $0.label, at: $0.at.description, passed: $0.passed, problems: $0.problems) })
    }

    func backupsPage(_ request: Request) async throws -> Response {
        self.page("backups", title: "Backups", section: "/backups", try await self.backupsData())
    }
}
