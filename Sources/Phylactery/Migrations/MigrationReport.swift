public import Foundation

/// Where the migrations stand, as the console's migrations page shows them (``Migrator/report()``):
/// who owns which tables, the ledger, pending files and the plan with its hazards. Read-only:
/// applying stays a CLI or runtime decision.
public struct MigrationReport: Sendable, Hashable, Codable {
    /// One owner (`core` or an extension) and the tables recorded for it.
    public struct Owner: Sendable, Hashable, Codable {
        /// `core` or an extension slug.
        public var owner: String
        /// The owner's version when its models were last migrated.
        public var ownerVersion: String
        /// Whether it is part of this federation (false: its tables are orphaned, or dormant).
        public var isRegistered: Bool
        /// Whether it is compiled in but disabled (its tables are kept as they are).
        public var isDormant: Bool
        /// Its tables, by name.
        public var tables: [Table]
    }

    /// One table of an owner.
    public struct Table: Sendable, Hashable, Codable {
        /// `schema.table`.
        public var table: String
        /// The model's Swift name.
        public var model: String
        /// Fingerprint of the shape the model asked for.
        public var revision: String
    }

    /// A migration file not applied yet.
    public struct PendingFile: Sendable, Hashable, Codable {
        /// Its revision.
        public var revision: String
        /// The revision it applies on top of.
        public var parent: String?
        /// What it is for.
        public var message: String
        /// What its statements do, in order.
        public var summaries: [String]
        /// The hazards it needs consent for.
        public var hazards: [Hazard]
    }

    /// One step the database still needs, with its SQL.
    public struct Step: Sendable, Hashable, Codable {
        /// What it does, for people.
        public var summary: String
        /// The owner whose model asked for it.
        public var owner: String
        /// Risks that need consent before it is applied, sorted.
        public var hazards: [Hazard]
        /// Risks of undoing it, sorted.
        public var downHazards: [Hazard]
        /// Its statements (values stay bind parameters, as `$1`…).
        public var statements: [String]
        /// Whether some statement runs outside the migration's transaction (an index built concurrently).
        public var runsOutsideTransaction: Bool
    }

    /// The last applied revision.
    public var head: String?
    /// Owners by name, each with its tables.
    public var owners: [Owner]
    /// Applied migrations, oldest first.
    public var ledger: [Migrator.LedgerEntry]
    /// Files not applied yet, in the order they would apply (empty without a migrations directory).
    public var pending: [PendingFile]
    /// What the database still needs beyond the files, in the order it would apply.
    public var steps: [Step]
    /// Hazards of the whole plan, sorted.
    public var hazards: [Hazard]
    /// What the planner noticed (objects nobody declares, orphaned owners).
    public var notices: [String]
    /// Changes that cannot be planned, with the reason.
    public var refusals: [String]

    /// The database matches the models and no file waits.
    public var isCurrent: Bool { self.pending.isEmpty && self.steps.isEmpty && self.refusals.isEmpty }
}
