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
public struct TriggerDescription: Sendable, Hashable {
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

    /// Describes a trigger and its function's body.
    public init(name: String, timing: Timing, events: Set<Event>, forEachRow: Bool = true, body: String) {
        self.name = name
        self.timing = timing
        self.events = events
        self.forEachRow = forEachRow
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
}
