/// A risk a migration step carries; each needs explicit consent before it is applied.
public enum Hazard: String, Sendable, Hashable, CaseIterable, Comparable, Codable {
    /// Rows or values are lost: a dropped table or column, a narrowing type change.
    case dataLoss = "data-loss"
    /// PostgreSQL rewrites the whole table under an exclusive lock (most type changes).
    case tableRewrite = "table-rewrite"
    /// An exclusive lock is held while every row is scanned (SET NOT NULL on a non-empty table).
    case longLock = "long-lock"

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One SQL statement of a migration.
public struct MigrationStatement: Sendable, Hashable {
    /// The statement, without a trailing semicolon.
    public var sql: String
    /// False for statements PostgreSQL refuses inside a transaction block (`CREATE INDEX CONCURRENTLY`)
    /// or that should not hold the migration's locks (`VALIDATE CONSTRAINT`): they run after the
    /// transactional part has committed, each on its own.
    public var transactional: Bool
    /// Text values sent as the bind parameters `$1`, `$2`, … of ``sql``: values (the ownership
    /// registry's names and declarations) never sit in the SQL text, whatever they contain.
    public var parameters: [String]
    /// The index (schema-qualified, quoted) this statement builds `CONCURRENTLY`. When the build
    /// fails, PostgreSQL leaves the index behind marked invalid; the migrator drops it at once, so a
    /// failed build never leaves an invalid index in the database.
    public var buildsIndex: String?

    public init(_ sql: String, transactional: Bool = true, parameters: [String] = [], buildsIndex: String? = nil) {
        self.sql = sql
        self.transactional = transactional
        self.parameters = parameters
        self.buildsIndex = buildsIndex
    }
}

/// One change of a plan, with how to undo it.
public struct MigrationStep: Sendable, Hashable {
    /// What the step does, for people: `add column notebook_pages.title`.
    public var summary: String
    /// The owner whose model asked for it (`core` or an extension slug).
    public var owner: String
    /// Statements that apply the step.
    public var up: [MigrationStatement]
    /// Statements that undo it (run in reverse step order).
    public var down: [MigrationStatement]
    /// Risks that need consent.
    public var hazards: Set<Hazard>
    /// Risks of undoing the step (dropping what was created since, narrowing back what was widened).
    public var downHazards: Set<Hazard>
    /// Ordering class; lower runs first.
    package var phase: Int

    package init(_ summary: String, owner: String, phase: Int, up: [MigrationStatement], down: [MigrationStatement], hazards: Set<Hazard> = [], downHazards: Set<Hazard> = []) {
        self.summary = summary
        self.owner = owner
        self.phase = phase
        self.up = up
        self.down = down
        self.hazards = hazards
        self.downHazards = downHazards
    }
}

/// What the database needs so that it matches the federation, and what was noticed on the way.
public struct MigrationPlan: Sendable {
    /// Steps in the order they apply.
    public var steps: [MigrationStep]
    /// Objects found in a chamber that no registered owner declares (never dropped), and tables of
    /// owners that are no longer registered (orphaned, never dropped).
    public var notices: [String]
    /// Changes that cannot be planned at all, with the reason (e.g. a NOT NULL column without a
    /// default on a table that has rows). A plan with refusals cannot be applied.
    public var refusals: [String]
    /// How many catalog queries reading the live schema took.
    public var catalogQueries: Int

    /// True when the database already matches the federation.
    public var isEmpty: Bool { self.steps.isEmpty && self.refusals.isEmpty }
    /// Every hazard of every step.
    public var hazards: Set<Hazard> { self.steps.reduce(into: []) { $0.formUnion($1.hazards) } }
    /// True when no step carries a hazard and nothing is refused: what `auto` applies unattended.
    /// Hazard-free is not only "adds things": dropping an index or constraint an owner no longer
    /// declares, or DROP NOT NULL, loses no data and takes no long lock, so it counts too.
    public var isAdditive: Bool { self.hazards.isEmpty && self.refusals.isEmpty }

    /// The statements that apply the plan, in order.
    public var upStatements: [MigrationStatement] { self.steps.flatMap(\.up) }
    /// The statements that undo it, in order.
    public var downStatements: [MigrationStatement] { self.steps.reversed().flatMap(\.down) }
}
