import Foundation
import PostgresNIO

/// The columns a partial update writes, recorded by key path:
/// ``Transaction/update(_:set:where:file:line:)``.
///
/// ```swift
/// let released = try await tx.update(Run.self, set: {
///     $0.set(\.status, to: .queued)
///     $0.set(\.worker, to: nil)
/// }, where: "status = 'running' AND heartbeat_at < \(cutoff)")
/// ```
///
/// Only the assigned columns are written (plus `updated_at = now()`, and `version = version + 1`
/// for a model with a version column). Values travel as bind parameters; each key path is looked up
/// in the model's ``PersistentModel/columnKeyPaths`` to find its column, whose name is quoted.
public struct ColumnAssignments<Model: PersistentModel> {
    /// One `column = value`: the property the key path names and how to bind its value.
    struct Assignment {
        var keyPath: PartialKeyPath<Model>
        var bind: (inout PostgresBindings, ColumnDescription, JSONBEncoder) throws -> Void
    }

    var assignments: [Assignment] = []

    init() {}

    /// Writes `value` into the column of `keyPath` (a value stored in its own SQL type).
    public mutating func set<Value: ColumnCodable>(_ keyPath: WritableKeyPath<Model, Value>, to value: Value) {
        self.assignments.append(Assignment(keyPath: keyPath) { bindings, column, _ in
            try value.validate(for: column)
            try value.bindColumn(to: &bindings)
        })
    }

    /// Writes `value` into the jsonb column of `keyPath`, through Phylactery's codec.
    @_disfavoredOverload
    public mutating func set<Value: Codable>(_ keyPath: WritableKeyPath<Model, Value>, to value: Value) {
        self.assignments.append(Assignment(keyPath: keyPath) { bindings, _, encoder in
            try bindings.append(JSONB(value, encoder: encoder))
        })
    }

    /// Writes `value` (or NULL) into the nullable jsonb column of `keyPath`.
    @_disfavoredOverload
    public mutating func set<Value: Codable>(_ keyPath: WritableKeyPath<Model, Value?>, to value: Value?) {
        self.assignments.append(Assignment(keyPath: keyPath) { bindings, _, encoder in
            switch value {
            case .some(let value): try bindings.append(JSONB(value, encoder: encoder))
            case .none: bindings.appendNull()
            }
        })
    }

    /// `"column" = $n, …` for every assignment, binding the values after `bindings`' own.
    func sql(into bindings: inout PostgresBindings, operation: String, file: String, line: Int) throws -> String {
        let schema = Model.schema
        let properties = Model.columnKeyPaths
        guard !self.assignments.isEmpty else {
            throw PhylacteryError(.invalidArgument, "\(operation): the set closure assigned no column; assign at least one with $0.set(\\.property, to: value); nothing was sent", file: file, line: line)
        }
        let encoder = JSONBEncoder()
        var sql = ""
        var seen: Set<String> = []
        for assignment in self.assignments {
            guard let property = properties[assignment.keyPath],
                  let column = schema.columns.first(where: { $0.property == property }) else {
                throw PhylacteryError(
                    .invalidArgument,
                    "\(operation): a key path in the set closure is not a column of \(Model.self) (id, createdAt, updatedAt and @Transient properties cannot be set; a hand-written model lists its columns' key paths in columnKeyPaths); nothing was sent",
                    file: file, line: line)
            }
            guard !column.isVersion else {
                throw PhylacteryError(.invalidArgument, "\(operation): \(property) is \(Model.self)'s version column, which Phylactery counts up itself; nothing was sent", file: file, line: line)
            }
            guard seen.insert(column.name).inserted else {
                throw PhylacteryError(.invalidArgument, "\(operation): \(property) is assigned twice in the set closure; nothing was sent", file: file, line: line)
            }
            try assignment.bind(&bindings, column, encoder)
            sql += SQLIdentifier.quote(column.name)
            sql += " = $"
            sql += String(bindings.count)
            sql += ", "
        }
        return sql
    }
}
