import Foundation
import Hummingbird
import Phylactery

/// The migrations' state, read-only: owners and their tables, the ledger, and the plan the models
/// still need with its hazards (applying stays a CLI/runtime decision).
struct MigrationsData: Codable, Sendable {
    struct Owner: Codable, Sendable { var owner: String; var version: String; var model: String; var table: String; var registered: Bool; var dormant: Bool }
    struct Entry: Codable, Sendable { var revision: String; var message: String; var source: String; var appliedAt: String }
    struct Step: Codable, Sendable { var owner: String; var summary: String; var hazards: [String]; var sql: [String] }
    var head: String?
    var owners: [Owner]
    var ledger: [Entry]
    var plan: [Step]
    var refusals: [String]
    var notices: [String]
    var pendingFiles: [String]
}

struct MigrationsPageView: Sendable { var data: MigrationsData; var upToDate: Bool }

extension PhylacteryConsole {
    func migrationsData() async throws -> MigrationsData {
        let status = try await Migrator(client: self.client, federation: self.federation).status()
        return MigrationsData(
            head: status.head,
            owners: status.owners.map { .init(owner: $0.owner, version: $0.ownerVersion, model: $0.model, table: $0.table, registered: $0.isRegistered, dormant: $0.isDormant) },
            ledger: status.applied.reversed().map { .init(revision: $0.revision, message: $0.message, source: $0.source, appliedAt: ConsoleTime.text($0.appliedAt)) },
            plan: status.plan.steps.map { .init(owner: $0.owner, summary: $0.summary, hazards: $0.hazards.sorted().map(\.rawValue), sql: $0.up.map(\.sql)) },
            refusals: status.plan.refusals, notices: status.plan.notices,
            pendingFiles: status.pending.map(\.revision))
    }

    func migrationsPage(_ request: Request) async throws -> Response {
        let data = try await self.migrationsData()
        return self.page("migrations", title: "Migrations", section: "/migrations",
                         MigrationsPageView(data: data, upToDate: data.plan.isEmpty && data.refusals.isEmpty && data.pendingFiles.isEmpty))
    }
}
