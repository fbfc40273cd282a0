import Logging
public import Phylactery

/// What the runtime does to the schema at start (`migrations.policy`).
public enum MigrationPolicy: String, Sendable, Hashable, CaseIterable {
    /// Plan and apply when no step carries a hazard (``Migrator/auto(message:)``); a plan with a
    /// hazardous step is refused whole and the runtime does not start (the error names the steps).
    case auto
    /// Apply the pending reviewed files of `migrations.directory` (``Migrator/up(allowing:)``, no
    /// consent for hazards); refuse to start when the models still need anything no file covers.
    case files
    /// Change nothing; refuse to start when the database differs from the models (or, with a
    /// directory, when files are pending).
    case check
    /// Change and check nothing.
    case off

    /// Runs the policy with `migrator`; returns a line for the log, or `nil` when nothing happened.
    ///
    /// - Throws: ``PhylacteryError`` with ``PhylacteryError/Code/migrationRefused`` when the policy
    ///   refuses to start, naming what differs and the command that fixes it.
    func apply(with migrator: Migrator) async throws -> String? {
        switch self {
        case .off:
            return nil
        case .auto:
            guard let applied = try await migrator.auto(message: "applied at start (migrations.policy auto)") else { return nil }
            return "applied migration \(applied.revision) (\(applied.up.count) statements)"
        case .files:
            let applied = try await migrator.up()
            let plan = try await migrator.plan()
            guard plan.isEmpty else {
                throw PhylacteryError(.migrationRefused, "migrations.policy is files, but the models need changes no migration file covers: \(Self.summary(plan)). Generate a file (phylactery migrate generate -m MESSAGE --directory \(migrator.options.directory ?? "DIR")), review it, and start again")
            }
            return applied.isEmpty ? nil : "applied \(applied.count) migration file(s): \(applied.map(\.revision).joined(separator: ", "))"
        case .check:
            let status = try await migrator.status()
            if !status.pending.isEmpty {
                throw PhylacteryError(.migrationRefused, "migrations.policy is check, and \(status.pending.count) migration file(s) are not applied: \(status.pending.map(\.revision).joined(separator: ", ")). Apply them (phylactery migrate up) and start again")
            }
            guard status.plan.isEmpty else {
                throw PhylacteryError(.migrationRefused, "migrations.policy is check, and the database differs from the models: \(Self.summary(status.plan)). Migrate it (phylactery migrate plan, then auto or generate and up) and start again")
            }
            return nil
        }
    }

    /// The steps and refusals of `plan`, for a message: grouped by owner (at most 4 steps each), so an
    /// extension's change is named however many steps the core's own tables need.
    static func summary(_ plan: MigrationPlan) -> String {
        // Per owner, so every owner with a difference is named however many steps the core has.
        var owners: [String] = []
        var steps: [String: [String]] = [:]
        for step in plan.steps {
            if steps[step.owner] == nil { owners.append(step.owner) }
            steps[step.owner, default: []].append(step.summary)
        }
        let parts = owners.map { owner -> String in
            let items = steps[owner]!
            let shown = items.prefix(4).joined(separator: "; ")
            return "[\(owner)] " + (items.count > 4 ? "\(shown); … \(items.count - 4) more" : shown)
        }
        return (parts + plan.refusals.prefix(8)).joined(separator: "; ")
    }
}
