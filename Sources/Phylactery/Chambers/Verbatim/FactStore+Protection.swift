extension FactStore {
    /// The table the immutability triggers guard.
    static let table = QualifiedName(Fact.tableLocation.chamber.schema, Fact.tableLocation.table)

    /// How the live `verbatim.facts` (as ``CatalogReader`` reads it) falls short of the protection
    /// ``Fact``'s schema declares: a trigger missing, disabled, switched to fire only in some sessions
    /// (`ENABLE TRIGGER` or `ENABLE REPLICA TRIGGER`, which a session with
    /// `session_replication_role = replica` slips past), firing on other events, or running another
    /// body. Empty when facts are protected. The migration planner compares the same shapes.
    static func protectionProblems(in live: TableShape) -> [String] {
        let found = Dictionary(live.triggers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        return Fact.schema.triggers.flatMap { description in
            TriggerShape(description, table: Self.table).problems(live: found[description.name], on: Self.table)
        }
    }
}
