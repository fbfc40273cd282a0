extension Migrator {
    /// Owners and their tables, the ledger, pending files and the plan with its hazards, in one
    /// value a page or a script can show (``MigrationReport``); what ``status()`` reads, arranged
    /// for display. Applies nothing.
    public func report() async throws -> MigrationReport {
        let status = try await self.status()
        let owners = Dictionary(grouping: status.owners, by: \.owner).map { owner, rows in
            MigrationReport.Owner(
                owner: owner, ownerVersion: rows.map(\.ownerVersion).max() ?? "", isRegistered: rows.contains(where: \.isRegistered),
                isDormant: rows.contains(where: \.isDormant),
                tables: rows.map { MigrationReport.Table(table: $0.table, model: $0.model, revision: $0.revision) }.sorted { $0.table < $1.table })
        }.sorted { $0.owner < $1.owner }
        let pending = status.pending.map { file in
            MigrationReport.PendingFile(
                revision: file.revision, parent: file.parent, message: file.message, summaries: file.up.map(\.summary),
                hazards: file.up.reduce(into: Set<Hazard>()) { $0.formUnion($1.hazards) }.sorted())
        }
        let steps = status.plan.steps.map { step in
            MigrationReport.Step(
                summary: step.summary, owner: step.owner, hazards: step.hazards.sorted(), downHazards: step.downHazards.sorted(),
                statements: step.up.map(\.sql), runsOutsideTransaction: step.up.contains { !$0.transactional })
        }
        return MigrationReport(
            head: status.head, owners: owners, ledger: status.applied, pending: pending, steps: steps,
            hazards: status.plan.hazards.sorted(), notices: status.plan.notices, refusals: status.plan.refusals)
    }
}
