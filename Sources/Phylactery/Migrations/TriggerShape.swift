/// A trigger on a table and the function it runs, as the catalog reports them.
package struct TriggerShape: Sendable, Hashable {
    /// `pg_trigger.tgname`.
    package var name: String
    /// `pg_trigger.tgtype`: row/statement, before/after and the events, as bits.
    package var typeBits: Int16
    /// The function the trigger executes.
    package var function: QualifiedName
    /// `pg_proc.prosrc`: the function body exactly as it was created.
    package var body: String
    /// `pg_trigger.tgenabled`: in which sessions the trigger fires, or that it is disabled.
    package var enabled: Enabled

    /// `pg_trigger.tgenabled`.
    package enum Enabled: String, Sendable, Hashable {
        /// `ENABLE TRIGGER`: skipped by sessions with `session_replication_role = replica`.
        case origin = "O"
        /// `ENABLE ALWAYS TRIGGER`: fires in every session.
        case always = "A"
        /// `ENABLE REPLICA TRIGGER`: fires only in sessions with `session_replication_role = replica`.
        case replica = "R"
        /// `DISABLE TRIGGER`: never fires.
        case disabled = "D"

        /// The catalog's letter; an unknown one is taken as disabled, so it shows as a difference.
        init(catalog letter: String) { self = Self(rawValue: letter) ?? .disabled }

        init(_ firing: TriggerDescription.Firing) {
            switch firing {
            case .origin: self = .origin
            case .always: self = .always
            case .replica: self = .replica
            }
        }

        /// One word for plan summaries.
        var word: String {
            switch self {
            case .origin: "origin"
            case .always: "always"
            case .replica: "replica"
            case .disabled: "disabled"
            }
        }

        /// What it means for the protection the trigger gives.
        var meaning: String {
            switch self {
            case .origin: "fires only while session_replication_role is origin or local: a session that sets it to replica skips it"
            case .always: "fires in every session"
            case .replica: "fires only in sessions with session_replication_role = replica"
            case .disabled: "is disabled (ALTER TABLE … DISABLE TRIGGER): it never fires"
            }
        }
    }

    package init(name: String, typeBits: Int16, function: QualifiedName, body: String, enabled: Enabled = .origin) {
        self.name = name
        self.typeBits = typeBits
        self.function = function
        self.body = body
        self.enabled = enabled
    }

    /// The wanted shape of a model's trigger on `table`.
    init(_ trigger: TriggerDescription, table: QualifiedName) {
        self.init(
            name: trigger.name, typeBits: trigger.typeBits,
            function: QualifiedName(table.schema, SQLNaming.constraintName(table: table.name, columns: [trigger.name], suffix: "fn")),
            body: trigger.body, enabled: Enabled(trigger.firing))
    }

    /// Everything but ``enabled`` is the same: switching it is one `ALTER TABLE`, not a rebuild.
    func sameDefinition(as other: TriggerShape) -> Bool {
        var other = other
        other.enabled = self.enabled
        return self == other
    }

    /// How `live` falls short of this (wanted) trigger, for people; empty when it does not.
    /// `nil` for `live` means the trigger is missing.
    func problems(live: TriggerShape?, on table: QualifiedName) -> [String] {
        guard let live else { return ["trigger \(self.name) on \(table) is missing"] }
        var problems: [String] = []
        if live.function != self.function || live.body != self.body {
            problems.append("trigger \(self.name) on \(table) runs \(live.function) with a body that is not the model's")
        }
        if live.typeBits != self.typeBits {
            let (liveClause, wantedClause) = (live.clause, self.clause)
            problems.append("trigger \(self.name) on \(table) fires \(liveClause.timing) \(liveClause.events) FOR EACH \(liveClause.level), not \(wantedClause.timing) \(wantedClause.events) FOR EACH \(wantedClause.level)")
        }
        if live.enabled != self.enabled {
            problems.append("trigger \(self.name) on \(table) \(live.enabled.meaning) (wanted: \(self.enabled.word))")
        }
        return problems
    }

    /// `BEFORE UPDATE OR DELETE … FOR EACH ROW`, rebuilt from the bits.
    var clause: (timing: String, events: String, level: String) {
        let timing = self.typeBits & 64 != 0 ? "INSTEAD OF" : (self.typeBits & 2 != 0 ? "BEFORE" : "AFTER")
        var events: [String] = []
        if self.typeBits & 4 != 0 { events.append("INSERT") }
        if self.typeBits & 16 != 0 { events.append("UPDATE") }
        if self.typeBits & 8 != 0 { events.append("DELETE") }
        if self.typeBits & 32 != 0 { events.append("TRUNCATE") }
        return (timing, events.joined(separator: " OR "), self.typeBits & 1 != 0 ? "ROW" : "STATEMENT")
    }
}

extension DDL {
    /// `CREATE OR REPLACE FUNCTION … RETURNS trigger` with the body dollar-quoted.
    static func createTriggerFunction(_ trigger: TriggerShape) -> String {
        var tag = "$phylactery$"
        while trigger.body.contains(tag) { tag = "$phylactery_\(UInt32.random(in: 0...UInt32.max))$" }
        return "CREATE OR REPLACE FUNCTION \(trigger.function.sql)() RETURNS trigger LANGUAGE plpgsql AS \(tag)\(trigger.body)\(tag)"
    }

    /// `CREATE TRIGGER`, then (unless it is PostgreSQL's default, `origin`) the statement that sets
    /// the sessions it fires in: `CREATE TRIGGER` itself cannot say `ALWAYS`.
    static func createTrigger(_ trigger: TriggerShape, on table: QualifiedName) -> [String] {
        let clause = trigger.clause
        let create = "CREATE TRIGGER \(q(trigger.name)) \(clause.timing) \(clause.events) ON \(table.sql) FOR EACH \(clause.level) EXECUTE FUNCTION \(trigger.function.sql)()"
        return trigger.enabled == .origin ? [create] : [create, setTriggerFiring(trigger.name, trigger.enabled, on: table)]
    }

    /// `ALTER TABLE … ENABLE [ALWAYS | REPLICA] TRIGGER` or `DISABLE TRIGGER`.
    static func setTriggerFiring(_ name: String, _ enabled: TriggerShape.Enabled, on table: QualifiedName) -> String {
        let action = switch enabled {
        case .origin: "ENABLE TRIGGER"
        case .always: "ENABLE ALWAYS TRIGGER"
        case .replica: "ENABLE REPLICA TRIGGER"
        case .disabled: "DISABLE TRIGGER"
        }
        return "ALTER TABLE \(table.sql) \(action) \(q(name))"
    }

    static func dropTrigger(_ name: String, on table: QualifiedName) -> String {
        "DROP TRIGGER IF EXISTS \(q(name)) ON \(table.sql)"
    }

    static func dropTriggerFunction(_ trigger: TriggerShape) -> String {
        "DROP FUNCTION IF EXISTS \(trigger.function.sql)()"
    }
}

extension CatalogReader {
    /// $1: table oids. User triggers (not the ones PostgreSQL makes for foreign keys) with their
    /// function's schema, name and source, and `tgenabled` (the sessions they fire in, or disabled).
    static let triggersSQL = """
        SELECT t.tgrelid::int8, t.tgname::text, t.tgtype::int2,
               CASE WHEN pn.oid = pg_my_temp_schema() THEN 'pg_temp' ELSE pn.nspname::text END,
               p.proname::text, p.prosrc, t.tgenabled::text
        FROM pg_trigger t
        JOIN pg_proc p ON p.oid = t.tgfoid
        JOIN pg_namespace pn ON pn.oid = p.pronamespace
        WHERE t.tgrelid = ANY($1::int8[]::oid[]) AND NOT t.tgisinternal AND t.tgparentid = 0
        ORDER BY t.tgrelid, t.tgname
        """
}

extension MigrationPlanner {
    /// Creates a new table's triggers (after the table, with its constraints).
    mutating func createTriggers(of shape: TableShape, owner: String) {
        for trigger in shape.triggers {
            self.add("create trigger \(trigger.name) on \(shape.name)", owner: owner, Phase.addConstraint,
                     up: [DDL.createTriggerFunction(trigger)] + DDL.createTrigger(trigger, on: shape.name),
                     down: [DDL.dropTrigger(trigger.name, on: shape.name), DDL.dropTriggerFunction(trigger)])
        }
    }

    /// Adds, replaces and drops the triggers of an existing table. A trigger the owner never declared
    /// is reported and left alone.
    mutating func diffTriggers(want: TableShape, live: TableShape, declared: [String]?, owner: String) {
        let name = want.name
        let liveByName = Dictionary(live.triggers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for trigger in want.triggers {
            if let current = liveByName[trigger.name] {
                guard current != trigger else { continue }
                if current.sameDefinition(as: trigger) {
                    // Disabled, or switched to fire in other sessions (session_replication_role): one ALTER puts it back.
                    self.add("enable trigger \(trigger.name) on \(name): \(current.enabled.word) → \(trigger.enabled.word)", owner: owner, Phase.addConstraint,
                             up: [DDL.setTriggerFiring(trigger.name, trigger.enabled, on: name)],
                             down: [DDL.setTriggerFiring(current.name, current.enabled, on: name)])
                    continue
                }
                var up = [DDL.dropTrigger(current.name, on: name)]
                if current.function != trigger.function { up.append(DDL.dropTriggerFunction(current)) }
                up += [DDL.createTriggerFunction(trigger)] + DDL.createTrigger(trigger, on: name)
                var down = [DDL.dropTrigger(trigger.name, on: name)]
                if current.function != trigger.function { down.append(DDL.dropTriggerFunction(trigger)) }
                down += [DDL.createTriggerFunction(current)] + DDL.createTrigger(current, on: name)
                self.add("replace changed trigger \(trigger.name) on \(name)", owner: owner, Phase.addConstraint, up: up, down: down)
            } else {
                self.add("create trigger \(trigger.name) on \(name)", owner: owner, Phase.addConstraint,
                         up: [DDL.createTriggerFunction(trigger)] + DDL.createTrigger(trigger, on: name),
                         down: [DDL.dropTrigger(trigger.name, on: name), DDL.dropTriggerFunction(trigger)])
            }
        }
        let wantedNames = Set(want.triggers.map(\.name))
        for trigger in live.triggers where !wantedNames.contains(trigger.name) {
            if declared?.contains(trigger.name) == true {
                self.add("drop trigger \(trigger.name) on \(name)", owner: owner, Phase.dropIndexOrConstraint,
                         up: [DDL.dropTrigger(trigger.name, on: name), DDL.dropTriggerFunction(trigger)],
                         down: [DDL.createTriggerFunction(trigger)] + DDL.createTrigger(trigger, on: name))
            } else {
                self.notices.append("unknown trigger \(trigger.name) on \(name): not declared by \(owner); left in place")
            }
        }
    }
}
