/// A trigger a model's table needs, with the PL/pgSQL function it runs.
///
/// The migration planner creates the function (in the table's schema, named
/// `<table>_<trigger>_fn`) and the trigger, compares both with the catalog (timing, events, level and
/// the function body exactly as written), and drops and recreates them when the model changes them.
/// The verbatim chamber uses one to make facts immutable:
///
/// ```swift
/// TriggerDescription(name: "immutable", timing: .before, events: [.update, .delete],
///                    body: "BEGIN RAISE EXCEPTION 'facts are immutable'; END;")
/// ```
///
/// ``firing`` says in which sessions the trigger fires. PostgreSQL skips ordinary triggers in a
/// session that sets `session_replication_role = replica` (a superuser's right, meant for
/// replication); a trigger that guards data for everyone is declared ``Firing/always``, as the
/// facts' immutability triggers are.
public struct TriggerDescription: Sendable, Hashable {
    /// The sessions a trigger fires in (`pg_trigger.tgenabled`).
    public enum Firing: String, Sendable, Hashable {
        /// PostgreSQL's default (`ENABLE TRIGGER`): every session except those with
        /// `session_replication_role = replica`.
        case origin = "O"
        /// `ENABLE ALWAYS TRIGGER`: every session, whatever its `session_replication_role`.
        case always = "A"
        /// `ENABLE REPLICA TRIGGER`: only sessions with `session_replication_role = replica`.
        case replica = "R"
    }

    /// When the trigger fires relative to the change.
    public enum Timing: String, Sendable, Hashable { case before = "BEFORE", after = "AFTER" }

    /// A statement kind that fires the trigger.
    public enum Event: String, Sendable, Hashable, CaseIterable {
        case insert = "INSERT", update = "UPDATE", delete = "DELETE", truncate = "TRUNCATE"
    }

    /// The trigger's name, unique on its table.
    public var name: String
    /// `BEFORE` or `AFTER`.
    public var timing: Timing
    /// The events that fire it (`TRUNCATE` needs ``forEachRow`` to be false).
    public var events: Set<Event>
    /// `FOR EACH ROW` when true, `FOR EACH STATEMENT` otherwise.
    public var forEachRow: Bool
    /// The PL/pgSQL body of the trigger function, from `BEGIN` (or `DECLARE`) to the final `END;`.
    public var body: String
    /// The sessions it fires in; ``Firing/origin`` (PostgreSQL's default) unless said otherwise.
    public var firing: Firing

    /// Describes a trigger and its function's body.
    public init(name: String, timing: Timing, events: Set<Event>, forEachRow: Bool = true, firing: Firing = .origin, body: String) {
        self.name = name
        self.timing = timing
        self.events = events
        self.forEachRow = forEachRow
        self.firing = firing
        self.body = body
    }

    /// `pg_trigger.tgtype`: the bit set PostgreSQL stores for timing, level and events.
    var typeBits: Int16 {
        var bits: Int16 = 0
        if self.forEachRow { bits |= 1 }
        if self.timing == .before { bits |= 2 }
        if self.events.contains(.insert) { bits |= 4 }
        if self.events.contains(.delete) { bits |= 8 }
        if self.events.contains(.update) { bits |= 16 }
        if self.events.contains(.truncate) { bits |= 32 }
        return bits
    }

    /// The two triggers that make a table append-only for everyone: `<name>` refuses each `UPDATE`
    /// and `DELETE` row by row, `<name>_truncate` refuses `TRUNCATE`; both run `body` and fire
    /// ``Firing/always``, so a `session_replication_role = replica` session cannot slip past them.
    public static func refusingChanges(name: String, body: String) -> [TriggerDescription] {
        [
            TriggerDescription(name: name, timing: .before, events: [.update, .delete], firing: .always, body: body),
            TriggerDescription(name: name + "_truncate", timing: .before, events: [.truncate], forEachRow: false, firing: .always, body: body),
        ]
    }
}
